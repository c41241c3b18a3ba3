"""Sync, front and verify against real servers: Apache, SeaweedFS, nginx."""

from __future__ import annotations

import json


def test_sync_to_two_targets_then_verify_identical(zones):
    result = zones.sync("oos", "obs", "--json" if False else "oos")
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout, result.stderr)
    for target in ("oos", "obs"):
        zones.front(target)
        checked = zones.verify(target)
        report = json.loads(checked.stdout)
        assert checked.returncode == 0, json.dumps(report["differences"][:20], indent=1) + checked.stderr
        assert report["identical"] is True
