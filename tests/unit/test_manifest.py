"""Backup set manifests: serialization and consistency checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from tacops.backup.manifest import BackupSetManifest, HostEntry, ReplicaEntry, list_sets, new_set_id, newest_verified
from tacops.foundation.errors import IntegrityError

SNAPSHOTS = ["a" * 64, "b" * 64]


def make_manifest(set_id: str = "20261204T201500Z", **changes) -> BackupSetManifest:
    started = datetime(2026, 12, 4, 20, 15, tzinfo=timezone.utc)
    values = dict(
        set_id=set_id,
        started=started,
        finished=started + timedelta(minutes=7),
        tacops_version="0.1.0",
        restic_version="0.14.0",
        ansible_version="2.19.0",
        hosts={"db-1": HostEntry(os_snapshot=SNAPSHOTS[0], app_snapshot=SNAPSHOTS[1], bytes_read=10, files=3)},
        replicas={
            "a": ReplicaEntry(repository_id="r1", snapshot_ids=SNAPSHOTS, verified=True, verified_at=started),
            "b": ReplicaEntry(repository_id="r1", snapshot_ids=SNAPSHOTS, verified=True, verified_at=started),
        },
        status="complete",
    )
    values.update(changes)
    return BackupSetManifest(**values)


def test_manifest_json_round_trip() -> None:
    manifest = make_manifest()
    assert BackupSetManifest.from_json(manifest.to_json()) == manifest
    manifest.validate()


def test_validate_rejects_different_snapshot_ids() -> None:
    replicas = {
        "a": ReplicaEntry(repository_id="r1", snapshot_ids=SNAPSHOTS),
        "b": ReplicaEntry(repository_id="r1", snapshot_ids=SNAPSHOTS + ["c" * 64]),
    }
    with pytest.raises(IntegrityError, match="different snapshot ids"):
        make_manifest(replicas=replicas).validate()


def test_validate_rejects_host_without_app_snapshot() -> None:
    hosts = {"db-1": HostEntry(os_snapshot=SNAPSHOTS[0])}
    with pytest.raises(IntegrityError, match="db-1 has no application image snapshot"):
        make_manifest(hosts=hosts).validate()


def test_validate_rejects_replica_missing_set_snapshot() -> None:
    replicas = {
        "a": ReplicaEntry(repository_id="r1", snapshot_ids=[SNAPSHOTS[0]]),
        "b": ReplicaEntry(repository_id="r1", snapshot_ids=[SNAPSHOTS[0]]),
    }
    with pytest.raises(IntegrityError, match="lacks snapshot"):
        make_manifest(replicas=replicas).validate()


def test_incomplete_set_may_lack_snapshots() -> None:
    manifest = make_manifest(hosts={"db-1": HostEntry(os_snapshot=SNAPSHOTS[0])}, status="incomplete",
                             finished=None, replicas={})
    manifest.validate()
    assert not manifest.is_verified


def test_from_json_rejects_garbage() -> None:
    with pytest.raises(IntegrityError, match="not a valid backup set manifest"):
        BackupSetManifest.from_json(b'{"set_id": "yesterday"}', source="sets/x.sealed")


def test_set_id_format_enforced() -> None:
    with pytest.raises(ValidationError):
        make_manifest(set_id="2026-12-04")
    assert new_set_id(datetime(2026, 12, 4, 21, 15, tzinfo=timezone(timedelta(hours=1)))) == "20261204T201500Z"


def test_list_sets_oldest_first() -> None:
    sets = [make_manifest("20261205T000000Z"), make_manifest("20261203T000000Z"),
            make_manifest("20261204T000000Z", status="incomplete")]
    assert [manifest.set_id for manifest in list_sets(sets)] == [
        "20261203T000000Z", "20261204T000000Z", "20261205T000000Z"]
    assert newest_verified(sets).set_id == "20261205T000000Z"


def test_host_entry_adds_backup_summary() -> None:
    entry = HostEntry()
    entry.add_backup_summary({"total_bytes_processed": 100, "data_added": 40, "total_files_processed": 2})
    entry.add_backup_summary({"total_bytes_processed": 50, "data_added": 5, "total_files_processed": 1})
    assert (entry.bytes_read, entry.bytes_added, entry.files) == (150, 45, 3)
