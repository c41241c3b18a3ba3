"""The manifest of one backup set: which snapshots, on which replicas, verified when.

A backup set is one OS image and one application image per CT host, taken in one run.
Its manifest is sealed into custody on every backup host (see ``custody``). A restore
reads it to find the snapshots and to check that its replica still contains them.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tacops.foundation.errors import IntegrityError
from tacops.foundation.i18n import _

SCHEMA_VERSION = 1
SET_ID_FORMAT = "%Y%m%dT%H%M%SZ"
SET_ID_PATTERN = r"^\d{8}T\d{6}Z$"


def new_set_id(now: datetime | None = None) -> str:
    """Return the set id for ``now`` (UTC), such as ``20261204T201500Z``."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).strftime(SET_ID_FORMAT)


def set_time(set_id: str) -> datetime:
    """Return the UTC time a set id encodes."""
    return datetime.strptime(set_id, SET_ID_FORMAT).replace(tzinfo=timezone.utc)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostEntry(_Model):
    """What one CT host contributed to the set; byte counts come from ``restic backup --json``."""

    os_snapshot: str | None = None
    app_snapshot: str | None = None
    fingerprint_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    bytes_read: int = Field(default=0, ge=0, description="sum of total_bytes_processed of both images")
    bytes_added: int = Field(default=0, ge=0, description="sum of data_added of both images")
    files: int = Field(default=0, ge=0, description="sum of total_files_processed of both images")

    def add_backup_summary(self, summary: dict) -> None:
        """Add the counts of one ``restic backup --json`` summary message to this entry."""
        self.bytes_read += int(summary.get("total_bytes_processed", 0))
        self.bytes_added += int(summary.get("data_added", 0))
        self.files += int(summary.get("total_files_processed", 0))


class ReplicaEntry(_Model):
    """The state of one replica after the set was mirrored to it and verified."""

    repository_id: str
    snapshot_ids: list[str] = []
    files: int = Field(default=0, ge=0)
    bytes: int = Field(default=0, ge=0)
    verified: bool = False
    verified_at: datetime | None = None
    mirror_bytes: int = Field(default=0, ge=0)


class RetentionPolicy(_Model):
    keep_last: int = Field(ge=0)
    keep_within_days: int = Field(ge=0)


class BackupSetManifest(_Model):
    schema_version: int = SCHEMA_VERSION
    set_id: str = Field(pattern=SET_ID_PATTERN)
    started: datetime
    finished: datetime | None = None
    tacops_version: str
    restic_version: str
    ansible_version: str | None = None
    hosts: dict[str, HostEntry] = {}
    replicas: dict[str, ReplicaEntry] = {}
    retention: RetentionPolicy | None = None
    status: Literal["complete", "incomplete"] = "incomplete"

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != SCHEMA_VERSION:
            raise ValueError(f"manifest schema_version {version} is not supported; expected {SCHEMA_VERSION}")
        return version

    @property
    def time(self) -> datetime:
        return set_time(self.set_id)

    @property
    def is_complete(self) -> bool:
        return self.status == "complete"

    @property
    def is_verified(self) -> bool:
        """True when the set is complete and every replica was verified after holding it."""
        return self.is_complete and bool(self.replicas) and all(entry.verified for entry in self.replicas.values())

    def host_snapshot_ids(self) -> list[str]:
        """Return the ids of every OS and application snapshot of the set."""
        ids = []
        for entry in self.hosts.values():
            ids += [snapshot for snapshot in (entry.os_snapshot, entry.app_snapshot) if snapshot]
        return ids

    def problems(self) -> list[str]:
        """Return every inconsistency of the content, one sentence each (empty when consistent)."""
        problems: list[str] = []
        if self.finished is not None and self.finished < self.started:
            problems.append(_("finished ({finished}) is before started ({started})").format(
                finished=self.finished.isoformat(), started=self.started.isoformat()))

        snapshot_sets = {name: sorted(entry.snapshot_ids) for name, entry in self.replicas.items()}
        if len({tuple(ids) for ids in snapshot_sets.values()}) > 1:
            listing = "; ".join(f"{name}: {len(ids)} snapshot(s)" for name, ids in snapshot_sets.items())
            problems.append(_("the replicas hold different snapshot ids ({listing})").format(listing=listing))
        repository_ids = {entry.repository_id for entry in self.replicas.values()}
        if len(repository_ids) > 1:
            problems.append(_("the replicas have different repository ids: {ids}").format(
                ids=", ".join(sorted(repository_ids))))

        for name, entry in self.replicas.items():
            missing = sorted(set(self.host_snapshot_ids()) - set(entry.snapshot_ids))
            if missing:
                problems.append(_("replica {replica} lacks snapshot(s) of the set: {ids}").format(
                    replica=name, ids=", ".join(missing)))

        if self.is_complete:
            problems += self._completeness_problems()
        return problems

    def _completeness_problems(self) -> list[str]:
        problems: list[str] = []
        if self.finished is None:
            problems.append(_("the set is marked complete but has no finish time"))
        if not self.hosts:
            problems.append(_("the set is marked complete but names no host"))
        if not self.replicas:
            problems.append(_("the set is marked complete but names no replica"))
        for host, entry in self.hosts.items():
            if not entry.os_snapshot:
                problems.append(_("host {host} has no OS image snapshot").format(host=host))
            if not entry.app_snapshot:
                problems.append(_("host {host} has no application image snapshot").format(host=host))
        return problems

    def validate_content(self) -> None:
        """Raise IntegrityError listing every inconsistency of the content."""
        problems = self.problems()
        if problems:
            raise IntegrityError(
                _("Manifest of backup set {set_id} is inconsistent:\n{lines}").format(
                    set_id=self.set_id, lines="\n".join(f"  - {problem}" for problem in problems)),
                hint=_("Do not restore from this set without checking its replicas; run a new backup."),
            )

    # ``validate`` is the name callers use; pydantic's own classmethod of that name is
    # deprecated in pydantic 2, so the instance method takes its place.
    def validate(self) -> None:  # type: ignore[override]
        self.validate_content()

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "manifest") -> "BackupSetManifest":
        """Parse a manifest; raise IntegrityError naming ``source`` when it is not a valid one."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as error:
            raise IntegrityError(
                _("{source} is not a valid backup set manifest: {error}").format(source=source, error=error),
            ) from None


def is_set_id(value: str) -> bool:
    return re.fullmatch(SET_ID_PATTERN, value) is not None


def list_sets(manifests: Iterable[BackupSetManifest]) -> list[BackupSetManifest]:
    """Return the manifests oldest first (set ids are UTC timestamps, so they sort by time)."""
    return sorted(manifests, key=lambda manifest: manifest.set_id)


def newest_verified(manifests: Iterable[BackupSetManifest]) -> BackupSetManifest | None:
    verified = [manifest for manifest in list_sets(manifests) if manifest.is_verified]
    return verified[-1] if verified else None
