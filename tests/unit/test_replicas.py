"""Replicas on real restic repositories in temporary folders, reached through LocalTransport."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tacops.backup import restic
from tacops.backup.replicas import Replica, ReplicaSet, list_files, mirror, snapshot_ids, verify
from tacops.foundation.errors import AuthenticationError, IntegrityError
from tacops.foundation.transport import LocalTransport

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(not Path("/usr/bin/restic").exists(), reason="restic is not installed")


def restic_backup(repository: Path, tree: Path, tag: str) -> str:
    """Back up ``tree`` with real restic; the password is only in this child's environment."""
    environment = dict(os.environ, RESTIC_PASSWORD=PASSWORD)
    completed = subprocess.run(
        ["restic", "--no-cache", "-r", str(repository), "backup", "--json", "--tag", "tacops", "--tag", tag,
         "--host", "ct-host", str(tree)],
        env=environment, capture_output=True, check=True,
    )
    return completed.stdout.decode().strip().splitlines()[-1]


def make_tree(root: Path, seed: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "small.txt").write_text(f"seed {seed}\n")
    (root / "random.bin").write_bytes(os.urandom(300_000))
    (root / "lines.txt").write_text("".join(f"{seed} line {i}\n" for i in range(20_000)))
    return root


def file_hashes(repository: Path) -> dict[str, str]:
    """Return {relative path: SHA-256} of every file, to prove a repository did not change."""
    hashes = {}
    for path in sorted(repository.rglob("*")):
        if path.is_file():
            hashes[str(path.relative_to(repository))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def flip_byte(path: Path, offset: int = 40) -> None:
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def first_data_file(repository: Path) -> Path:
    return sorted(path for path in (repository / "data").rglob("*") if path.is_file())[0]


@pytest.fixture
def replica_set(tmp_path: Path) -> ReplicaSet:
    """Two replicas on this machine: A initialised and backed up twice, B mirrored from A."""
    transport = LocalTransport("backup-a")
    replicas = ReplicaSet([
        Replica("a", transport, str(tmp_path / "a" / "repository")),
        Replica("b", LocalTransport("backup-b"), str(tmp_path / "b" / "repository")),
    ])
    replicas.init_replicas(PASSWORD)
    restic_backup(Path(replicas.primary.path), make_tree(tmp_path / "tree1", 1), "set:20261204T201500Z")
    restic_backup(Path(replicas.primary.path), make_tree(tmp_path / "tree2", 2), "set:20261205T201500Z")
    replicas.mirror_all()
    return replicas


def test_init_replicas_shares_repository_id(tmp_path: Path) -> None:
    replicas = ReplicaSet([
        Replica("a", LocalTransport(), str(tmp_path / "a")),
        Replica("b", LocalTransport(), str(tmp_path / "b")),
    ])
    replicas.init_replicas(PASSWORD)
    config_a = restic.cat_config(replicas.primary.repository, PASSWORD)
    config_b = restic.cat_config(replicas.others[0].repository, PASSWORD)
    assert config_a["id"] == config_b["id"]
    assert config_a["version"] == 2
    assert list_files(replicas.primary) == list_files(replicas.others[0])

    # A second run finds the repository and changes nothing.
    before = file_hashes(tmp_path / "a")
    results = replicas.init_replicas(PASSWORD)
    assert results["b"].files_copied == 0
    assert file_hashes(tmp_path / "a") == before


def test_mirror_gives_same_snapshot_ids(replica_set: ReplicaSet) -> None:
    a, b = replica_set.replicas
    ids_a = snapshot_ids(a, PASSWORD)
    assert len(ids_a) == 2
    assert snapshot_ids(b, PASSWORD) == ids_a
    assert {k: v for k, v in file_hashes(Path(a.path)).items() if not k.startswith("locks/")} == \
        {k: v for k, v in file_hashes(Path(b.path)).items() if not k.startswith("locks/")}
    assert restic.check(b.repository, PASSWORD).ok


def test_mirror_copies_only_missing_files(replica_set: ReplicaSet, tmp_path: Path) -> None:
    a, b = replica_set.replicas
    assert mirror(a, b).files_copied == 0

    restic_backup(Path(a.path), make_tree(tmp_path / "tree3", 3), "set:20261206T201500Z")
    result = mirror(a, b)
    assert result.files_copied > 0
    assert result.bytes_copied > 300_000
    assert snapshot_ids(b, PASSWORD) == snapshot_ids(a, PASSWORD)


def test_verify_names_corrupt_file_in_b(replica_set: ReplicaSet) -> None:
    a, b = replica_set.replicas
    damaged = first_data_file(Path(b.path))
    flip_byte(damaged)

    outcome_b = verify(b, PASSWORD)
    assert not outcome_b.ok
    assert outcome_b.reachable
    assert [bad.path for bad in outcome_b.bad_files] == [str(damaged.relative_to(b.path))]
    assert outcome_b.bad_files[0].expected == damaged.name
    assert outcome_b.bad_files[0].found == hashlib.sha256(damaged.read_bytes()).hexdigest()

    outcome_a = verify(a, PASSWORD)
    assert outcome_a.ok
    assert outcome_a.check_ok
    assert outcome_a.files_checked == outcome_b.files_checked
    assert outcome_a.bytes_checked > 0

    healthy, verifications = replica_set.first_healthy(PASSWORD)
    assert healthy.name == "a"
    assert [v.replica for v in verifications] == ["a"]


def test_first_healthy_skips_corrupt_primary(replica_set: ReplicaSet) -> None:
    a, b = replica_set.replicas
    flip_byte(first_data_file(Path(a.path)))

    healthy, verifications = replica_set.first_healthy(PASSWORD)
    assert healthy.name == "b"
    assert [v.replica for v in verifications] == ["a", "b"]
    assert not verifications[0].ok
    assert verifications[1].ok


def test_first_healthy_rejects_when_all_corrupt(replica_set: ReplicaSet) -> None:
    a, b = replica_set.replicas
    flip_byte(first_data_file(Path(a.path)))
    index_b = sorted((Path(b.path) / "index").iterdir())[0]
    flip_byte(index_b, offset=10)
    before_a = file_hashes(Path(a.path))
    before_b = file_hashes(Path(b.path))

    with pytest.raises(IntegrityError) as raised:
        replica_set.first_healthy(PASSWORD)
    message = raised.value.message
    assert "a:" in message
    assert "b:" in message
    assert str(index_b.relative_to(b.path)) in message

    # restic check may leave nothing behind: both replicas are byte-for-byte unchanged.
    assert file_hashes(Path(a.path)) == before_a
    assert file_hashes(Path(b.path)) == before_b


def test_verify_reports_missing_pack(replica_set: ReplicaSet) -> None:
    b = replica_set.others[0]
    first_data_file(Path(b.path)).unlink()
    outcome = verify(b, PASSWORD)
    assert not outcome.ok
    assert outcome.bad_files == []
    assert not outcome.check_ok


def test_mirror_does_not_propagate_corrupt_primary(replica_set: ReplicaSet, tmp_path: Path) -> None:
    a, b = replica_set.replicas
    restic_backup(Path(a.path), make_tree(tmp_path / "tree3", 3), "set:20261206T201500Z")
    new_files = sorted(set(list_files(a)) - set(list_files(b)))
    new_data = [path for path in new_files if path.startswith("data/")]
    assert new_data
    flip_byte(Path(a.path) / new_data[0])
    before_b = file_hashes(Path(b.path))

    with pytest.raises(IntegrityError) as raised:
        mirror(a, b)
    assert new_data[0] in raised.value.message
    assert "a (" in raised.value.message

    after_b = file_hashes(Path(b.path))
    assert new_data[0] not in after_b
    assert {path: digest for path, digest in after_b.items() if path in before_b} == before_b
    assert not any(path.startswith(".tacops-incoming/") for path in after_b)


def test_mirror_rejects_other_repository(replica_set: ReplicaSet, tmp_path: Path) -> None:
    a = replica_set.primary
    other = Replica("other", LocalTransport(), str(tmp_path / "other"))
    restic.init(other.repository, PASSWORD)
    before = file_hashes(tmp_path / "other")
    with pytest.raises(IntegrityError, match="another repository"):
        mirror(a, other)
    assert file_hashes(tmp_path / "other") == before


def test_wrong_password_raises_authentication_error(replica_set: ReplicaSet) -> None:
    b = replica_set.others[0]
    with pytest.raises(AuthenticationError) as raised:
        snapshot_ids(b, "not the password")
    assert "b (" in raised.value.message

    with pytest.raises(AuthenticationError):
        replica_set.first_healthy("not the password")


def test_missing_repository_raises_integrity_error(tmp_path: Path) -> None:
    missing = Replica("c", LocalTransport(), str(tmp_path / "nothing"))
    with pytest.raises(IntegrityError, match="No restic repository"):
        snapshot_ids(missing, PASSWORD)
    outcome = verify(missing, PASSWORD)
    assert not outcome.ok
    assert "config is missing" in outcome.error


def test_password_not_in_command_line(tmp_path: Path) -> None:
    repository = restic.Repository(LocalTransport(), str(tmp_path / "r"), "r")
    argv = restic.command_line(repository, ["snapshots", "--json"])
    assert PASSWORD not in " ".join(argv)
    assert argv[:3] == ["sh", "-c", restic.PASSWORD_WRAPPER]
