"""Route guard, SSH files and base image spec: no root and no running lab needed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tacops.lab import guard, image, sshconf


def test_guard_rejects_address_off_bridge():
    # 192.0.2.55 (TEST-NET-1) is never a lab address; only the kernel's route table is read.
    with pytest.raises(guard.RouteRejected, match="not directly through the lab bridge tacops0"):
        guard.verify_route("192.0.2.55", "tacops0")


def test_guard_rejects_host_name():
    with pytest.raises(guard.RouteRejected, match="not an IPv4 address"):
        guard.verify_route("backup-a", "tacops0")


def test_guard_command_exits_1_with_message():
    completed = subprocess.run(
        [sys.executable, guard.__file__, "192.0.2.55", "22", "--bridge", "tacops0"],
        capture_output=True, text=True, timeout=30,
    )
    assert completed.returncode == 1
    assert "connection rejected" in completed.stderr
    assert completed.stdout == ""


def test_guard_imports_only_stdlib():
    code = (
        "import sys, runpy; sys.argv=['guard', '--help'];\n"
        "try:\n runpy.run_path(%r, run_name='__main__')\nexcept SystemExit: pass\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tacops', 'pydantic', 'yaml')]\n"
        "print('heavy modules:', ','.join(bad))" % guard.__file__
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "heavy modules:"


def test_relay_copies_both_ways_and_half_closes():
    server, client = socket.socketpair()
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()

    def echo_upper() -> None:
        received = b""
        while chunk := server.recv(4096):
            received += chunk
        server.sendall(received.upper())
        server.close()

    peer = threading.Thread(target=echo_upper)
    peer.start()
    os.write(stdin_write, b"hello lab")
    os.close(stdin_write)
    guard.relay(client, stdin_read, stdout_write)
    os.close(stdout_write)
    peer.join(timeout=5)
    assert os.read(stdout_read, 4096) == b"HELLO LAB"


def test_ssh_config_routes_through_guard(tmp_path: Path):
    config = tmp_path / "ssh_config"
    sshconf.write_ssh_config(config, hosts={"backup-a": "10.213.77.21"}, bridge="tacops0",
                             identity=tmp_path / "id", known_hosts=tmp_path / "known_hosts",
                             control_path_dir=Path("/run/tacops-ssh-test"))
    text = config.read_text()
    assert "Host backup-a\n  HostName 10.213.77.21\n  User root\n" in text
    assert f"ProxyCommand {sys.executable} {guard.__file__} %h %p --bridge tacops0" in text
    assert "StrictHostKeyChecking yes" in text
    assert "ControlPersist 120" in text


def test_ssh_config_resolves_with_user_override(tmp_path: Path):
    config = tmp_path / "ssh_config"
    sshconf.write_ssh_config(config, hosts={"backup-a": "10.213.77.21"}, bridge="tacops0",
                             identity=tmp_path / "id", known_hosts=tmp_path / "known_hosts",
                             control_path_dir=Path("/run/tacops-ssh-test"))
    resolved = subprocess.run(["ssh", "-F", str(config), "-G", "tacops-backup@backup-a"],
                              capture_output=True, text=True, timeout=30).stdout
    assert "user tacops-backup" in resolved.splitlines()
    assert "hostname 10.213.77.21" in resolved.splitlines()


def test_known_hosts_lists_name_and_address(tmp_path: Path):
    path = tmp_path / "known_hosts"
    sshconf.write_known_hosts(path, {"backup-a": ("10.213.77.21", ["ssh-ed25519 AAAAkey"])})
    assert path.read_text() == "backup-a,10.213.77.21 ssh-ed25519 AAAAkey\n"


def test_find_mirror_reads_deb822_and_list(tmp_path: Path):
    (tmp_path / "a.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/node\nSuites: nodistro\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert image.find_mirror("bookworm", (tmp_path,)) == "http://mirror.invalid/debian"
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.list").write_text("deb [arch=amd64] http://mirror.invalid/list bookworm main\n")
    assert image.find_mirror("bookworm", (other,)) == "http://mirror.invalid/list"


def test_image_key_ignores_package_order():
    first = image.BaseImageSpec("bookworm", "minbase", ("a", "b"), "http://m.invalid")
    second = image.BaseImageSpec("bookworm", "minbase", ("b", "a"), "http://m.invalid")
    third = image.BaseImageSpec("bookworm", "minbase", ("a", "c"), "http://m.invalid")
    assert first.key == second.key
    assert first.key != third.key
