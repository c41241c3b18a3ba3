"""The committed plan snapshots (infra/plans/*.json) match what the programs declare today.

A program change committed without ``tacops preview --stack <stack> --update`` fails here, so
the merge request that changes a program also shows its plan diff.
"""

from __future__ import annotations

import copy
import json

import pytest

from mock_stack import ROOT
from tacops.infra import preview
from tacops.infra.plan import load_plan
from tacops.infra.plan_diff import diff_plans

VM_TYPE = "outscale:index/vm:Vm"


def role_tag(resource) -> str | None:
    for tag in resource.inputs.get("tags", []):
        if tag.get("key") == "role":
            return tag.get("value")
    return None


@pytest.mark.parametrize("stack", sorted(preview.STACK_PROGRAMS))
def test_committed_snapshot_matches_program(stack):
    stack_config = preview.load_stack_config(ROOT, stack)
    result = preview.offline_preview(stack_config, update=False)

    assert result.snapshot_found, f"no snapshot at {result.snapshot_path}"
    changed = [f"{change.action} {change.urn}" for change in result.diff.changes[:10]]
    assert not result.diff.has_changes, (
        f"{result.diff.summary()}; run tacops preview --stack {stack} --update and commit the snapshot. "
        f"First changes: {changed}")
    assert result.snapshot_path.read_text(encoding="utf-8") == result.plan.to_json()


def test_vm_type_change_updates_only_role_vms():
    role, new_type = "clea-ws", "tinav6.c8r32p1"
    stack_config = preview.load_stack_config(ROOT, "outscale")
    snapshot = load_plan(stack_config.snapshot_path)
    role_vms = {resource.urn for resource in snapshot.resources
                if resource.type == VM_TYPE and role_tag(resource) == role}
    assert role_vms, f"the snapshot has no VM of role {role}"

    changed_config = copy.deepcopy(stack_config)
    roles_key = f"{stack_config.project}:roles"
    roles = changed_config.config.get(roles_key) or {}
    if isinstance(roles, str):
        roles = json.loads(roles)
    roles.setdefault(role, {})["vmType"] = new_type
    changed_config.config[roles_key] = roles

    result = preview.offline_preview(changed_config, update=False)
    diff = diff_plans(snapshot, result.plan)

    assert diff.count("create") == 0
    assert diff.count("delete") == 0
    assert diff.count("update") == len(role_vms)
    assert {change.urn for change in diff.changes} == role_vms
    for change in diff.changes:
        assert change.type == VM_TYPE
        assert [item.path for item in change.changes] == ["vmType"]
        assert change.changes[0].new == new_type
    assert diff.unchanged == len(snapshot.resources) - len(role_vms)
