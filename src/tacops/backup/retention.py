"""Retention of backup sets: which sets to keep, and forgetting the others on every replica.

restic forgets and prunes on the primary only. The other replicas are then mirrored from
the primary with deletion of the files it no longer has, so forgetting never makes the
replicas drift apart: they end with the same files and the same snapshot ids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Sequence

from tacops.backup import restic
from tacops.backup.manifest import BackupSetManifest, list_sets, newest_verified
from tacops.backup.replicas import MirrorResult, ReplicaSet, ReplicaVerification, mirror, snapshot_ids
from tacops.foundation.errors import IntegrityError, InvalidInputError, UnreachableError
from tacops.foundation.i18n import _

log = logging.getLogger(__name__)


class RetentionPlan(NamedTuple):
    keep: list[BackupSetManifest]
    forget: list[BackupSetManifest]


@dataclass
class RetentionResult:
    forgotten_sets: list[str] = field(default_factory=list)
    forgotten_snapshots: list[str] = field(default_factory=list)
    mirrors: dict[str, MirrorResult] = field(default_factory=dict)
    verifications: list[ReplicaVerification] = field(default_factory=list)


def plan_retention(manifests: Sequence[BackupSetManifest], keep_last: int, keep_within_days: int,
                   now: datetime) -> RetentionPlan:
    """Split the backup sets into those to keep and those to forget, both oldest first.

    A set is kept when it is among the ``keep_last`` newest complete sets, or when it
    started less than ``keep_within_days`` days before ``now``. The newest verified set
    is always kept, whatever the policy.
    """
    if keep_last < 0 or keep_within_days < 0:
        raise InvalidInputError(
            _("Invalid retention policy: keep_last={keep_last}, keep_within_days={days}; both must be 0 or "
              "more.").format(keep_last=keep_last, days=keep_within_days))
    if now.tzinfo is None:
        raise InvalidInputError(_("The retention time must carry a time zone (use UTC)."))

    ordered = list_sets(manifests)
    complete = [manifest for manifest in ordered if manifest.is_complete]
    kept_ids = {manifest.set_id for manifest in complete[len(complete) - keep_last:]} if keep_last else set()
    horizon = now - timedelta(days=keep_within_days)
    kept_ids |= {manifest.set_id for manifest in ordered if manifest.time > horizon}
    newest = newest_verified(ordered)
    if newest is not None:
        kept_ids.add(newest.set_id)

    keep = [manifest for manifest in ordered if manifest.set_id in kept_ids]
    forget = [manifest for manifest in ordered if manifest.set_id not in kept_ids]
    return RetentionPlan(keep, forget)


def _check_replicas_before(replica_set: ReplicaSet, password: str) -> tuple[list[ReplicaVerification], list[str]]:
    """Verify every replica; raise, before any change, when one is unreachable, unhealthy or ahead of the primary."""
    verifications = replica_set.verify_all(password)
    unreachable = [outcome for outcome in verifications if not outcome.reachable]
    if unreachable:
        raise UnreachableError(
            _("Retention not started: replica(s) unreachable: {names}. Nothing was changed.").format(
                names=", ".join(f"{outcome.replica} ({outcome.error})" for outcome in unreachable)),
            host=unreachable[0].replica,
            hint=_("Bring every backup host back, then apply retention again."),
        )
    unhealthy = [outcome for outcome in verifications if not outcome.ok]
    if unhealthy:
        raise IntegrityError(
            _("Retention not started: replica(s) failed verification. Nothing was changed.\n{lines}").format(
                lines="\n".join(f"  - {outcome.replica}: {outcome.reason()}" for outcome in unhealthy)),
            hint=_("Repair the replicas from a healthy one first."),
        )

    # A replica holding snapshots the primary lacks would lose them in the mirror that
    # follows the prune, so such drift stops retention instead.
    primary_ids = snapshot_ids(replica_set.primary, password)
    for other in replica_set.others:
        extra = sorted(set(snapshot_ids(other, password)) - set(primary_ids))
        if extra:
            raise IntegrityError(
                _("Retention not started: replica {replica} contains snapshot(s) the primary does not have: {ids}. "
                  "Nothing was changed.").format(replica=other, ids=", ".join(extra)),
                hint=_("Find out why the replicas drifted apart before deleting anything."),
            )
    return verifications, primary_ids


def _snapshots_to_forget(replica_set: ReplicaSet, password: str, plan: RetentionPlan) -> list[str]:
    """Return the primary's snapshot ids of the forgotten sets: by manifest and by ``set:`` tag."""
    forgotten_tags = {f"set:{manifest.set_id}" for manifest in plan.forget}
    kept_tags = {f"set:{manifest.set_id}" for manifest in plan.keep}
    kept_ids = {snapshot for manifest in plan.keep for snapshot in manifest.host_snapshot_ids()}
    wanted = {snapshot for manifest in plan.forget for snapshot in manifest.host_snapshot_ids()}

    selected: set[str] = set()
    for snapshot in restic.snapshots(replica_set.primary.repository, password):
        tags = set(snapshot.get("tags") or [])
        matches = snapshot["id"] in wanted or snapshot.get("short_id") in wanted or tags & forgotten_tags
        if not matches:
            continue
        if snapshot["id"] in kept_ids or snapshot.get("short_id") in kept_ids or tags & kept_tags:
            raise IntegrityError(
                _("Snapshot {id} belongs both to a kept set and to a forgotten set; retention stopped before "
                  "any change.").format(id=snapshot["id"]),
            )
        selected.add(snapshot["id"])
    return sorted(selected)


def apply_retention(replica_set: ReplicaSet, password: str, plan: RetentionPlan) -> RetentionResult:
    """Forget the snapshots of the plan's forgotten sets on every replica.

    Phases: verify every replica (nothing changes if one fails), ``restic forget`` and
    ``restic prune`` on the primary, then mirror the primary to every other replica with
    deletion of extra files, and compare the snapshot ids of all replicas. The sealed
    manifests of the forgotten sets stay in custody; the caller deletes them.
    """
    result = RetentionResult(forgotten_sets=[manifest.set_id for manifest in plan.forget])
    if not plan.forget:
        log.info("retention: no backup set to forget")
        return result

    result.verifications, _unused = _check_replicas_before(replica_set, password)
    to_forget = _snapshots_to_forget(replica_set, password, plan)

    primary = replica_set.primary
    if to_forget:
        result.forgotten_snapshots = restic.forget(primary.repository, password, snapshot_ids=to_forget)
        log.info("retention: forgot %d snapshot(s) of %d set(s) on %s", len(result.forgotten_snapshots),
                 len(plan.forget), primary.name)
    restic.prune(primary.repository, password)

    for other in replica_set.others:
        result.mirrors[other.name] = mirror(primary, other, delete_extra=True)

    expected = snapshot_ids(primary, password)
    for other in replica_set.others:
        found = snapshot_ids(other, password)
        if found != expected:
            raise IntegrityError(
                _("After retention, replica {replica} contains other snapshots than the primary ({found} against "
                  "{expected}).").format(replica=other, found=len(found), expected=len(expected)),
                hint=_("Run the mirror again, then verify the replicas."),
            )
    return result
