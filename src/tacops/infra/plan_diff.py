"""Diff of two offline plans: what a new program run creates, updates and deletes.

Secret inputs are masked in both plans, so a changed secret value is invisible here; only a
secret that appears, disappears or replaces a plain value shows as a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tacops.foundation.i18n import _
from tacops.infra.plan import SECRET_MASK, Plan, PlannedResource

_MISSING = object()


@dataclass(frozen=True)
class InputChange:
    """One changed leaf, named by its path ("spec.replicas", "options.protect")."""

    path: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": _shown(self.old), "new": _shown(self.new)}


@dataclass(frozen=True)
class ResourceChange:
    action: str  # "create", "update" or "delete"
    urn: str
    type: str
    changes: list[InputChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "urn": self.urn, "type": self.type,
                "changes": [change.to_dict() for change in self.changes]}


@dataclass
class PlanDiff:
    changes: list[ResourceChange]
    unchanged: int

    def count(self, action: str) -> int:
        return sum(1 for change in self.changes if change.action == action)

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        return _("{create} to create, {update} to update, {delete} to delete, {unchanged} unchanged").format(
            create=self.count("create"), update=self.count("update"), delete=self.count("delete"),
            unchanged=self.unchanged)

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [change.to_dict() for change in self.changes],
                "summary": {"create": self.count("create"), "update": self.count("update"),
                            "delete": self.count("delete"), "unchanged": self.unchanged}}


def _shown(value: Any) -> Any:
    """Show a value in a diff; ``_MISSING`` means the key is absent on that side."""
    return None if value is _MISSING else value


def _leaf_changes(old: Any, new: Any, path: str) -> list[InputChange]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[InputChange] = []
        for key in sorted(set(old) | set(new)):
            changes += _leaf_changes(old.get(key, _MISSING), new.get(key, _MISSING),
                                     f"{path}.{key}" if path else key)
        return changes
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changes = []
        for index, (old_item, new_item) in enumerate(zip(old, new)):
            changes += _leaf_changes(old_item, new_item, f"{path}[{index}]")
        return changes
    if SECRET_MASK in (old, new):
        # Never show the plain side of a value that is secret on the other side.
        old = SECRET_MASK if old is not _MISSING else old
        new = SECRET_MASK if new is not _MISSING else new
    return [InputChange(path=path, old=old, new=new)]


def _resource_changes(old: PlannedResource, new: PlannedResource) -> list[InputChange]:
    changes = _leaf_changes(old.inputs, new.inputs, "")
    changes += _leaf_changes(old.options, new.options, "options")
    if old.provider != new.provider:
        changes.append(InputChange(path="provider", old=old.provider, new=new.provider))
    return changes


def diff_plans(old: Plan, new: Plan) -> PlanDiff:
    """Compare two plans resource by resource (by URN, as the engine does)."""
    old_resources = old.by_urn()
    new_resources = new.by_urn()
    changes: list[ResourceChange] = []
    unchanged = 0
    for urn in sorted(set(old_resources) | set(new_resources)):
        before = old_resources.get(urn)
        after = new_resources.get(urn)
        if before is None:
            changes.append(ResourceChange(action="create", urn=urn, type=after.type))
        elif after is None:
            changes.append(ResourceChange(action="delete", urn=urn, type=before.type))
        else:
            leaf_changes = _resource_changes(before, after)
            if leaf_changes:
                changes.append(ResourceChange(action="update", urn=urn, type=after.type, changes=leaf_changes))
            else:
                unchanged += 1
    return PlanDiff(changes=changes, unchanged=unchanged)
