"""Retention: the pure plan, and forgetting on real restic replicas kept identical."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tacops.backup.manifest import BackupSetManifest, HostEntry, ReplicaEntry
from tacops.backup.replicas import Replica, ReplicaSet, list_files, snapshot_ids
from tacops.backup.retention import RetentionPlan, apply_retention, plan_retention
from tacops.foundation.errors import IntegrityError, InvalidInputError
from tacops.foundation.transport import LocalTransport

PASSWORD = "retention test password"
NOW = datetime(2026, 12, 20, 12, 0, tzinfo=timezone.utc)


def make_set(set_id: str, *, status: str = "complete", verified: bool = True,
             snapshots: tuple[str, str] = ("", "")) -> BackupSetManifest:
    started = datetime.strptime(set_id, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return BackupSetManifest(
        set_id=set_id, started=started, finished=started + timedelta(minutes=5), tacops_version="0.1.0",
        restic_version="0.14.0", status=status,
        hosts={"ct-host": HostEntry(os_snapshot=snapshots[0] or None, app_snapshot=snapshots[1] or None)},
        replicas={"a": ReplicaEntry(repository_id="r", verified=verified)},
    )


def ids(manifests: list[BackupSetManifest]) -> list[str]:
    return [manifest.set_id for manifest in manifests]


def test_plan_keeps_last_complete_sets() -> None:
    sets = [make_set(f"202612{day:02d}T020000Z") for day in (1, 2, 3, 4, 5)]
    keep, forget = plan_retention(sets, keep_last=2, keep_within_days=0, now=NOW)
    assert ids(keep) == ["20261204T020000Z", "20261205T020000Z"]
    assert ids(forget) == ["20261201T020000Z", "20261202T020000Z", "20261203T020000Z"]


def test_plan_keeps_young_sets() -> None:
    sets = [make_set(f"202612{day:02d}T020000Z") for day in (1, 10, 18, 19)]
    keep, forget = plan_retention(sets, keep_last=1, keep_within_days=5, now=NOW)
    assert ids(keep) == ["20261218T020000Z", "20261219T020000Z"]
    assert ids(forget) == ["20261201T020000Z", "20261210T020000Z"]


def test_plan_never_forgets_newest_verified() -> None:
    sets = [
        make_set("20261201T020000Z", verified=True),
        make_set("20261202T020000Z", verified=False),
        make_set("20261203T020000Z", status="incomplete", verified=False),
    ]
    keep, forget = plan_retention(sets, keep_last=1, keep_within_days=0, now=NOW)
    assert ids(keep) == ["20261201T020000Z", "20261202T020000Z"]
    assert ids(forget) == ["20261203T020000Z"]


def test_plan_incomplete_sets_do_not_count() -> None:
    sets = [make_set("20261201T020000Z"), make_set("20261202T020000Z", status="incomplete")]
    keep, forget = plan_retention(sets, keep_last=1, keep_within_days=0, now=NOW)
    assert ids(keep) == ["20261201T020000Z"]
    assert ids(forget) == ["20261202T020000Z"]


def test_plan_rejects_invalid_policy() -> None:
    with pytest.raises(InvalidInputError):
        plan_retention([], keep_last=-1, keep_within_days=0, now=NOW)
    with pytest.raises(InvalidInputError):
        plan_retention([], keep_last=1, keep_within_days=0, now=NOW.replace(tzinfo=None))


# Retention on real restic repositories.

def backup(repository: Path, tree: Path, set_id: str, kind: str) -> str:
    """Back up ``tree`` with real restic; the password is only in this child's environment."""
    completed = subprocess.run(
        ["restic", "--no-cache", "-r", str(repository), "backup", "--json", "--host", "ct-host",
         "--tag", "tacops", "--tag", f"set:{set_id}", "--tag", f"kind:{kind}", str(tree)],
        env=dict(os.environ, RESTIC_PASSWORD=PASSWORD), capture_output=True, check=True,
    )
    summary = json.loads(completed.stdout.decode().strip().splitlines()[-1])
    return summary["snapshot_id"]


def repository_files(replica: Replica) -> dict[str, int]:
    return {path: size for path, size in list_files(replica).items() if not path.startswith("locks/")}


@pytest.fixture
def replicas_with_sets(tmp_path: Path) -> tuple[ReplicaSet, list[BackupSetManifest]]:
    replica_set = ReplicaSet([
        Replica("a", LocalTransport("backup-a"), str(tmp_path / "a")),
        Replica("b", LocalTransport("backup-b"), str(tmp_path / "b")),
    ])
    replica_set.init_replicas(PASSWORD)
    manifests = []
    for day in (1, 2, 3, 4):
        set_id = f"202612{day:02d}T020000Z"
        tree = tmp_path / f"tree{day}"
        tree.mkdir()
        (tree / "unique.bin").write_bytes(os.urandom(200_000))
        snapshots = (backup(Path(replica_set.primary.path), tree, set_id, "os"),
                     backup(Path(replica_set.primary.path), tree, set_id, "app"))
        manifests.append(make_set(set_id, snapshots=snapshots))
    replica_set.mirror_all()
    return replica_set, manifests


@pytest.mark.skipif(not Path("/usr/bin/restic").exists(), reason="restic is not installed")
def test_retention_twice_leaves_identical_replicas(replicas_with_sets) -> None:
    replica_set, manifests = replicas_with_sets
    a, b = replica_set.replicas
    assert len(snapshot_ids(a, PASSWORD)) == 8
    size_before = sum(repository_files(b).values())

    plan = plan_retention(manifests, keep_last=2, keep_within_days=0, now=NOW)
    result = apply_retention(replica_set, PASSWORD, plan)
    assert result.forgotten_sets == ["20261201T020000Z", "20261202T020000Z"]
    assert len(result.forgotten_snapshots) == 4
    assert result.mirrors["b"].files_deleted > 0
    assert snapshot_ids(a, PASSWORD) == snapshot_ids(b, PASSWORD)
    assert len(snapshot_ids(b, PASSWORD)) == 4
    assert repository_files(a) == repository_files(b)
    assert sum(repository_files(b).values()) < size_before

    # A second run over the kept sets removes nothing more and keeps the replicas equal.
    plan = plan_retention(plan.keep, keep_last=2, keep_within_days=0, now=NOW)
    assert plan.forget == []
    apply_retention(replica_set, PASSWORD, plan)
    plan = plan_retention(plan.keep, keep_last=1, keep_within_days=0, now=NOW)
    result = apply_retention(replica_set, PASSWORD, plan)
    assert result.forgotten_sets == ["20261203T020000Z"]
    assert snapshot_ids(a, PASSWORD) == snapshot_ids(b, PASSWORD)
    assert len(snapshot_ids(a, PASSWORD)) == 2
    assert repository_files(a) == repository_files(b)
    assert all(verification.ok for verification in replica_set.verify_all(PASSWORD))


@pytest.mark.skipif(not Path("/usr/bin/restic").exists(), reason="restic is not installed")
def test_retention_rejects_corrupt_replica(replicas_with_sets) -> None:
    replica_set, manifests = replicas_with_sets
    a, b = replica_set.replicas
    damaged = sorted(path for path in (Path(b.path) / "data").rglob("*") if path.is_file())[0]
    damaged.chmod(0o600)
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    files_a = repository_files(a)
    files_b = repository_files(b)

    plan = plan_retention(manifests, keep_last=1, keep_within_days=0, now=NOW)
    with pytest.raises(IntegrityError, match="Nothing was changed"):
        apply_retention(replica_set, PASSWORD, plan)
    assert repository_files(a) == files_a
    assert repository_files(b) == files_b
    assert len(snapshot_ids(a, PASSWORD)) == 8


@pytest.mark.skipif(not Path("/usr/bin/restic").exists(), reason="restic is not installed")
def test_retention_rejects_replica_ahead_of_primary(replicas_with_sets, tmp_path: Path) -> None:
    replica_set, manifests = replicas_with_sets
    a, b = replica_set.replicas
    tree = tmp_path / "tree-extra"
    tree.mkdir()
    (tree / "file").write_text("only on b\n")
    backup(Path(b.path), tree, "20261210T020000Z", "os")

    plan = RetentionPlan(keep=manifests[1:], forget=manifests[:1])
    with pytest.raises(IntegrityError, match="does not have"):
        apply_retention(replica_set, PASSWORD, plan)
    assert len(snapshot_ids(a, PASSWORD)) == 8
