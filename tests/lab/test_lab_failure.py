"""Failures of the lab: a busy subnet, and an up that fails midway and must clean up after itself."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess

import pytest

from tacops.foundation.description import load_description
from tacops.foundation.errors import LabError
from tacops.lab import Lab, hostfs, network


def test_subnet_check_rejects_routed_subnet():
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show"], capture_output=True, text=True,
                                       check=True).stdout or "[]")
    routed = [route for route in routes
              if route.get("dst") not in (None, "default") and not route.get("dev", "").startswith("tacops")]
    if not routed:
        pytest.skip("this machine has no IPv4 route other than the default one")
    subnet = ipaddress.IPv4Network(routed[0]["dst"], strict=False)
    with pytest.raises(LabError, match="already routed"):
        network.check_subnet_free(subnet, "tacops0")


@pytest.mark.lab
@pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")
@pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="systemd-nspawn is not installed")
def test_failed_up_removes_what_it_created(tmp_path, monkeypatch: pytest.MonkeyPatch):
    lab = Lab(load_description(), root=tmp_path / "lab")

    def fail_to_start(host, root):
        raise KeyboardInterrupt  # as if Ctrl-C came while the first host was starting

    monkeypatch.setattr(lab, "_start", fail_to_start)
    with pytest.raises(KeyboardInterrupt):
        lab.up()
    assert network.lab_namespaces() == []
    assert network.lab_links(lab.network.bridge) == []
    assert hostfs.mounts_under(lab.root) == []
    assert not lab.state_file.exists()
    assert not (lab.root / "hosts").exists()
