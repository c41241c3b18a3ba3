"""Restore drills on the real lab: systemd-nspawn hosts, SSH, Ansible, restic, PostgreSQL.

The tests share one lab and run in the order written: each one leaves the CT system
running (or puts it back) for the next. They plant real faults: a changed file on a
restored host, a dead backup host, bytes flipped in repository files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tacops.foundation.description import load_description
from tacops.foundation.transport import SSHTransport
from tacops.lab import Lab

pytestmark = pytest.mark.lab

REPOSITORY = "/srv/tacops/repository"
STATIC_ROOT = "/var/www/static"
CONFIG_JSON = f"{STATIC_ROOT}/json/version-35/Config/config.json"
# Faults that one test plants and the next one uses, then repairs.
planted: dict[str, tuple[str, str]] = {}


def tacops(*args: str, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "tacops", *args], capture_output=True, text=True,
                            env=dict(os.environ, COLUMNS="200"), timeout=1800)
    if check_rc is not None:
        assert result.returncode == check_rc, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    lab = Lab(load_description())
    tacops("lab", "up")
    yield lab
    tacops("lab", "down")


def ssh(lab: Lab, host: str, command: str, *, input: bytes | None = None) -> str:
    return SSHTransport(host, lab.ssh_config).run(["sh", "-c", command], input=input).text


FLIP_SCRIPT = r"""
import os, sys
path = sys.argv[1]
with open(path, "r+b") as handle:
    handle.seek(200)
    byte = handle.read(1)
    handle.seek(200)
    handle.write(bytes([byte[0] ^ 0xFF]))
print(byte.hex())
"""


def flip_pack(lab: Lab, backup_host: str) -> tuple[str, str]:
    """Flip one byte of the largest data file of a replica; return (path, original byte in hex)."""
    path = ssh(lab, backup_host, f"find {REPOSITORY}/data -type f -printf '%s %p\\n' | sort -n | tail -1 | cut -d' ' -f2").strip()
    assert path, f"no data file on {backup_host}"
    ssh(lab, backup_host, f"chmod u+w {path}")
    original = ssh(lab, backup_host, f"python3 - {path}", input=FLIP_SCRIPT.encode()).strip()
    return path, original


def repair_pack(lab: Lab, backup_host: str, flipped: tuple[str, str]) -> None:
    """Flip the byte back: the file matches its SHA-256 name again."""
    path, _original = flipped
    ssh(lab, backup_host, f"python3 - {path}", input=FLIP_SCRIPT.encode())
    name = path.rsplit("/", 1)[1]
    assert ssh(lab, backup_host, f"sha256sum {path}").split()[0] == name


def repository_listing(lab: Lab, backup_host: str) -> str:
    return ssh(lab, backup_host, f"cd {REPOSITORY} && find . -type f ! -path './locks/*' -exec sha256sum {{}} + | sort")


def backup_set_ids() -> list[str]:
    listed = json.loads(tacops("backups", "list", "--json").stdout)
    return sorted(item["set_id"] for item in listed)


def snapshot_ids(lab: Lab, backup_host: str) -> list[str]:
    return sorted(ssh(lab, backup_host, f"ls {REPOSITORY}/snapshots").split())


class TestDrillOnLab:
    def test_full_drill_passes(self, lab, tmp_path_factory):
        report_dir = tmp_path_factory.mktemp("drill")
        result = tacops("drill", "--report-dir", str(report_dir))
        report = json.loads((report_dir / "report.json").read_text())
        assert report["result"] == "identical"
        assert report["replica_used"] == "backup-a"
        assert report["difference_count"] == 0
        assert {stage["name"] for stage in report["stages"]} >= {
            "backup", "sleep", "restore", "verify (sleep mode)", "wake", "verify (operation mode)"}
        assert all(stage["status"] in ("passed", "skipped") for stage in report["stages"])
        assert report["recovery_seconds"] > 0
        families = {check["family"] for check in report["checks"]}
        assert families >= {"packages", "units", "sockets", "users", "trees", "databases", "hsm", "routes"}
        for host in ("robert-ws", "robert-crypto", "submission-code", "static-zone"):
            assert report["hosts"][host]["bytes_read"] > 0
            assert report["hosts"][host]["bytes_restored"] > 0
        junit = (report_dir / "report.xml").read_text()
        assert "identity.robert-crypto" in junit
        assert "<failure" not in junit
        assert "/var/log" in (report_dir / "summary.txt").read_text()
        assert "IDENTICAL" in result.stdout

    def test_static_zone_read_over_ssh(self, lab, tmp_path):
        """static-zones reads the lab's docroot over SSH and its Apache through the route guard."""
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from staticzones.services import SeaweedFS, new_keys, public_dir

        origin = "http://10.213.77.14/"
        store_dir = public_dir("tacops-lab-static-")
        store = SeaweedFS(store_dir / "store", *new_keys("lab"), ["lab-static"])
        try:
            store.start()
            config = tmp_path / "static-zones.yaml"
            config.write_text(yaml.safe_dump({"targets": {"lab": {
                "endpoint": store.endpoint, "region": "eu-west-2", "bucket": "lab-static",
                "credentials": {"env": {"access_key_id": "LAB_KEY", "secret_access_key": "LAB_SECRET"}}}}}))
            environment = dict(os.environ, LAB_KEY=store.access_key, LAB_SECRET=store.secret_key)

            def zones(*args: str) -> subprocess.CompletedProcess:
                return subprocess.run([sys.executable, "-m", "tacops", "static-zones", "--config", str(config), *args],
                                      capture_output=True, text=True, env=environment, timeout=600)

            checked = zones("--json", "verify", "--origin", origin, "--front", origin,
                            "--from", f"static-zone:{STATIC_ROOT}", "--report", str(tmp_path / "verify.json"))
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert json.loads(checked.stdout)["urls_checked"] > 300

            # The lab's Apache types .pb.gz files application/octet-stream, which SeaweedFS
            # replaces by a guess from the extension: the read-back stops the index.
            synced = zones("--json", "sync", "--from", f"static-zone:{STATIC_ROOT}", "--origin", origin, "--to", "lab")
            assert synced.returncode == 5, synced.stdout + synced.stderr
            assert ".pb.gz" in synced.stderr
            assert "application/octet-stream" in synced.stderr
            remote = set(ssh(lab, "static-zone", f"cd {STATIC_ROOT} && find . -type f -printf '%P\\n'").split("\n"))
            remote.discard("")
            client = store.client()
            stored = {item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="lab-static")
                      for item in page.get("Contents", [])}
            indexes = {path for path in remote if path.endswith(("clusterIndex.json", "Config/config.json"))}
            assert indexes
            assert not (indexes & stored)
            assert remote - indexes == stored
        finally:
            store.stop()
            import shutil

            shutil.rmtree(store_dir, ignore_errors=True)

    def test_changed_file_fails_verify(self, lab):
        original = ssh(lab, "static-zone", f"stat -c %Y {CONFIG_JSON} && sha256sum {CONFIG_JSON}")
        ssh(lab, "static-zone", f"chattr -i {CONFIG_JSON} 2>/dev/null; printf ' ' >> {CONFIG_JSON}")
        result = tacops("verify", "--host", "static-zone", check_rc=3)
        assert CONFIG_JSON in result.stderr
        assert "sha256" in result.stderr
        ssh(lab, "static-zone", f"truncate -s -1 {CONFIG_JSON} && touch -d @{original.split()[0]} {CONFIG_JSON}")
        tacops("verify", "--host", "static-zone")

    def test_unreachable_host_named(self, lab):
        sets_before = backup_set_ids()
        lab.stop_host("submission-code")
        try:
            result = tacops("verify", "--host", "submission-code", check_rc=4)
            assert "submission-code" in result.stderr
            result = tacops("backup", check_rc=4)
            assert "submission-code" in result.stderr
            assert backup_set_ids() == sets_before
        finally:
            lab.boot_host("submission-code")

    def test_restore_dry_run_refuses_running_host(self, lab):
        running = tacops("restore", "--dry-run", "--role", "static-zone", check_rc=2)
        assert "static-zone is running" in running.stderr
        unknown = tacops("restore", "--dry-run", "--role", "no-such-role", check_rc=2)
        assert "no-such-role" in unknown.stderr

    def test_corrupt_replica_blocks_sleep(self, lab):
        flipped = flip_pack(lab, "backup-b")
        try:
            result = tacops("sleep", check_rc=5)
            assert "backup-b" in result.stderr
            assert flipped[0].rsplit("/", 1)[1][:12] in result.stderr.replace("\n", "")
            status = tacops("lab", "status").stdout
            for host in ("robert-ws", "robert-crypto", "submission-code", "static-zone"):
                line = next(line for line in status.splitlines() if line.startswith(host))
                assert "running" in line
            assert ssh(lab, "robert-crypto", "systemctl is-active postgresql").strip() == "active"
        finally:
            repair_pack(lab, "backup-b", flipped)

    def test_retention_twice_keeps_replicas_equal(self, lab):
        tacops("backup", "--keep-last", "1", "--keep-within-days", "0")
        tacops("backup", "--keep-last", "1", "--keep-within-days", "0")
        ids_a = snapshot_ids(lab, "backup-a")
        ids_b = snapshot_ids(lab, "backup-b")
        assert ids_a == ids_b
        assert len(ids_a) == 8  # one set: an OS and an application image of four hosts
        assert repository_listing(lab, "backup-a") == repository_listing(lab, "backup-b")
        assert len(backup_set_ids()) == 1

    def test_both_replicas_corrupt_restore_refuses(self, lab):
        tacops("sleep")
        listed = tacops("backups", "list", "--json").stdout
        set_ids = sorted(item["set_id"] for item in json.loads(listed))
        result = tacops("restore", "--dry-run", "--set", set_ids[0], "--role", "static-zone")
        plan = json.loads(result.stdout[result.stdout.index("{"):])
        assert plan["set_id"] == set_ids[0]
        assert plan["mode"] == "operation"
        assert list(plan["hosts"]) == ["static-zone"]
        assert plan["replica_order"] == ["backup-a", "backup-b"]

        flipped_a = flip_pack(lab, "backup-a")
        flipped_b = flip_pack(lab, "backup-b")
        before = (repository_listing(lab, "backup-a"), repository_listing(lab, "backup-b"))
        result = tacops("restore", check_rc=5)
        assert "backup-a" in result.stderr
        assert "backup-b" in result.stderr
        assert (repository_listing(lab, "backup-a"), repository_listing(lab, "backup-b")) == before
        assert all(item.root == "absent" for name, item in lab.status().items() if name.startswith(("robert", "sub", "static")))
        repair_pack(lab, "backup-b", flipped_b)
        # backup-a stays corrupt for the next test.
        planted["backup-a"] = flipped_a

    def test_corrupt_primary_restores_from_second(self, lab):
        flipped_a = planted.pop("backup-a")
        try:
            result = tacops("restore", "--mode", "operation")
            assert "backup-b" in result.stderr
            tacops("verify")
        finally:
            repair_pack(lab, "backup-a", flipped_a)

    def test_dead_backup_host_restores_from_second(self, lab):
        tacops("sleep")
        lab.stop_host("backup-a")
        try:
            result = tacops("restore", "--mode", "operation")
            assert "from backup-b" in result.stderr
            tacops("verify")
        finally:
            lab.boot_host("backup-a")

    def test_wrong_operator_secret_exits_6(self, lab, tmp_path):
        secret = tmp_path / "operator-secret"
        secret.write_text("not-the-operator-secret\n")
        secret.chmod(0o600)
        result = tacops("--operator-secret-file", str(secret), "backups", "list", check_rc=6)
        assert "TACOPS_OPERATOR_SECRET_FILE" in result.stderr

    def test_wrong_repository_password_plain_ansible(self, lab, tmp_path):
        inventory = tmp_path / "inventory.yml"
        secrets = tmp_path / "secrets.yml"
        tacops("inventory", "--output", str(inventory))
        tacops("custody", "export", "--to", str(secrets))
        values = yaml.safe_load(secrets.read_text())
        values["tacops_repository_password"] = "a-wrong-repository-password"
        secrets.write_text(yaml.safe_dump(values))
        sets_before = backup_set_ids()
        playbook = Path(__file__).resolve().parents[2] / "runbooks" / "backup.yml"
        result = subprocess.run(
            [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook),
             "-e", "tacops_set_id=20300101T000000Z", "-e", f"tacops_secrets_file={secrets}"],
            capture_output=True, text=True, timeout=600)
        assert result.returncode != 0
        assert "backup-a" in result.stdout
        assert "password" in result.stdout
        assert "a-wrong-repository-password" not in result.stdout + result.stderr
        assert backup_set_ids() == sets_before
