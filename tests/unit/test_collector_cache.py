"""The collector's hash cache: reused for unchanged files, never for changed ones."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tacops.backup.fingerprint import collect
from tacops.foundation.transport import LocalTransport


def _collect(root: Path, cache: Path) -> dict:
    params = {"host": "local", "families": ["trees"], "system_trees": [], "application_trees": [str(root)],
              "ignore": [], "hash_cache": str(cache)}
    return collect(LocalTransport(), params)["trees"][str(root)]["items"]


def test_cache_written_and_reused(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a.json").write_text('{"a": 1}')
    cache = tmp_path / "cache" / "hashes.json"

    first = _collect(root, cache)
    cached = json.loads(cache.read_text())
    assert first["a.json"]["sha256"] in cached.values()

    # A forged cache entry for the unchanged key is returned as is: proof the cache is read.
    key = next(key for key, value in cached.items() if value == first["a.json"]["sha256"])
    cache.write_text(json.dumps({key: "0" * 64}))
    assert _collect(root, cache)["a.json"]["sha256"] == "0" * 64


def test_changed_content_same_mtime_rehashed(tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    target = root / "a.json"
    target.write_text('{"a": 1}')
    cache = tmp_path / "hashes.json"
    first = _collect(root, cache)

    stat = target.stat()
    target.write_text('{"a": 2}')
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = _collect(root, cache)

    assert second["a.json"]["mtime_ns"] == first["a.json"]["mtime_ns"]
    assert second["a.json"]["sha256"] != first["a.json"]["sha256"]
