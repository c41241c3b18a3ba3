"""The real lab: boot every host of the lab profile, restore a host into a blank root, tear down.

The tests share one lab and run in file order: each builds on the state the one before
left. Only lab addresses on the lab bridge are contacted; 192.0.2.55 is only looked up
in the route table.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tacops.foundation.description import load_description
from tacops.foundation.errors import LabError, RouteGuardError
from tacops.foundation.transport import SSHTransport
from tacops.lab import Lab, hostfs, network

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
    pytest.mark.skipif(shutil.which("systemd-nspawn") is None, reason="systemd-nspawn is not installed"),
]

RESTORE_HOST = "backup-b"


def _ssh_lines(lab: Lab, host: str, command: str) -> str:
    return lab.transport(host).run(command, timeout=60).text.strip()


def _lab_processes(lab: Lab) -> list[int]:
    return lab._stray_nspawn_pids()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lab")
    lab = Lab(load_description(), root=root)
    started = time.monotonic()
    lab.up()
    print(f"lab up took {time.monotonic() - started:.1f} s")
    yield lab
    lab.down()


def test_up_boots_every_host(lab: Lab):
    statuses = lab.status()
    assert set(statuses) == set(lab.hosts)
    for name, status in statuses.items():
        assert status.running, name
        assert status.ssh_ok, name
        assert status.root == "overlay", name
        assert status.pid is not None, name
        assert _ssh_lines(lab, name, "hostname") == name
        system_state = lab.transport(name).run("systemctl is-system-running; systemctl --failed --no-legend",
                                               accept=(0, 1), timeout=60).text.strip()
        assert system_state == "running", f"{name}: {system_state}"
    assert lab.is_up()


def test_hosts_have_distinct_identity(lab: Lab):
    machine_ids = {_ssh_lines(lab, name, "cat /etc/machine-id") for name in lab.hosts}
    host_keys = {_ssh_lines(lab, name, "cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub") for name in lab.hosts}
    assert len(machine_ids) == len(lab.hosts)
    assert len(host_keys) == len(lab.hosts)
    assert "" not in machine_ids


def test_hosts_resolve_each_other(lab: Lab):
    hosts_file = _ssh_lines(lab, "backup-a", "cat /etc/hosts")
    for name, host in lab.hosts.items():
        assert f"{host.address}\t{name}" in hosts_file


def test_no_default_route_in_lab(lab: Lab):
    for name in lab.hosts:
        assert network.default_route(name) == "", name
        assert _ssh_lines(lab, name, "ip -4 route show default") == "", name


def test_check_route_rejects_outside_address(lab: Lab):
    with pytest.raises(RouteGuardError, match="192.0.2.55"):
        lab.check_route("192.0.2.55")
    lab.check_route(str(lab.hosts["backup-a"].address))


def test_user_on_command_line(lab: Lab):
    public_key = lab.controller_key.with_name(lab.controller_key.name + ".pub").read_text()
    lab.transport("backup-a").run(
        "id labtester >/dev/null 2>&1 || useradd -m labtester; install -d -m 700 -o labtester ~labtester/.ssh; "
        "cat > ~labtester/.ssh/authorized_keys; chown labtester ~labtester/.ssh/authorized_keys",
        input=public_key.encode(), timeout=60,
    )
    as_user = SSHTransport("backup-a", lab.ssh_config, user="labtester")
    assert as_user.run("whoami", timeout=60).text.strip() == "labtester"


def test_stop_and_boot_overlay_host(lab: Lab):
    marker = "/var/lib/lab-test-marker"
    lab.transport("robert-ws").run(f"echo kept > {marker}", timeout=60)
    lab.stop_host("robert-ws")
    assert not lab.status()["robert-ws"].running
    lab.boot_host("robert-ws")
    assert _ssh_lines(lab, "robert-ws", f"cat {marker}") == "kept"


def test_guest_reboot_restarts_host(lab: Lab):
    boot_id = _ssh_lines(lab, "robert-crypto", "cat /proc/sys/kernel/random/boot_id")
    lab.transport("robert-crypto").run("systemctl reboot", accept=(0, 255), timeout=60)
    lab._close_ssh_master("robert-crypto")
    deadline = time.monotonic() + 120
    new_boot_id = boot_id
    while time.monotonic() < deadline:
        time.sleep(2)
        result = lab.transport("robert-crypto").run(
            "systemctl is-system-running --wait >/dev/null; cat /proc/sys/kernel/random/boot_id",
            accept=(0, 1, 255), timeout=60)
        if result.returncode == 0 and result.text.strip() != boot_id:
            new_boot_id = result.text.strip()
            break
    assert new_boot_id != boot_id
    assert lab.status()["robert-crypto"].running


def test_restore_into_blank_root(lab: Lab, tmp_path: Path):
    host = RESTORE_HOST
    machine_id = _ssh_lines(lab, host, "cat /etc/machine-id")
    archive = tmp_path / "root.tar"
    with archive.open("wb") as output:
        ssh = subprocess.run(
            ["ssh", "-F", str(lab.ssh_config), host,
             "tar --one-file-system --numeric-owner --xattrs --xattrs-include='*' --acls -C / -cf - ."],
            stdout=output, stderr=subprocess.PIPE, timeout=600,
        )
    assert ssh.returncode in (0, 1), ssh.stderr.decode()  # 1: a file changed while it was read

    lab.destroy_host(host)
    assert lab.status()[host].root == "absent"
    assert not lab.status()[host].running
    assert lab.host_root(host) is None
    with pytest.raises(LabError, match="no root file system"):
        lab.boot_host(host)

    blank = lab.prepare_blank_host(host)
    assert blank.is_dir()
    assert list(blank.iterdir()) == []
    assert lab.host_root(host) == blank
    assert blank != lab._overlay_root(host)
    subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "-C", str(blank),
                    "-xpf", str(archive)], check=True, timeout=600)
    # The restore must not depend on the key the lab wrote: boot_host installs it again.
    (blank / "root/.ssh/authorized_keys").write_text("")

    lab.boot_host(host)
    status = lab.status()[host]
    assert status.running
    assert status.ssh_ok
    assert status.root == "restored"
    assert _ssh_lines(lab, host, "hostname") == host
    assert _ssh_lines(lab, host, "cat /etc/machine-id") == machine_id
    assert _ssh_lines(lab, host, "findmnt -no FSTYPE /") != "overlay"


def test_up_cleans_stale_lab(lab: Lab):
    state = lab._load_state()
    for entry in state["hosts"].values():
        os.kill(entry["supervisor_pid"], signal.SIGKILL)
    time.sleep(0.5)
    assert not lab.is_up()
    started = time.monotonic()
    lab.up()
    print(f"lab up over a stale lab took {time.monotonic() - started:.1f} s")
    statuses = lab.status()
    assert all(status.running and status.ssh_ok for status in statuses.values())
    assert len(_lab_processes(lab)) == len(lab.hosts)
    assert statuses[RESTORE_HOST].root == "overlay"


def test_down_without_state_leaves_nothing(lab: Lab):
    lab.state_file.unlink()
    lab.down()
    assert network.lab_namespaces() == []
    assert network.lab_links(lab.network.bridge) == []
    assert hostfs.mounts_under(lab.root) == []
    assert _lab_processes(lab) == []
    assert not lab.state_file.exists()
    assert not (lab.root / "hosts").exists()
    assert not lab.is_up()
    with pytest.raises(RouteGuardError):
        lab.check_route(str(lab.hosts["backup-a"].address))
