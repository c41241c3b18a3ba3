"""Offline plan: engine URNs, masked secrets, duplicate rejection and snapshot diffs."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest

from tacops.infra.plan import DuplicateURNError, Plan, engine_urn, load_plan, run_plan, save_plan
from tacops.infra.plan_diff import diff_plans
import plan_example

PROJECT = "tacops-ct"
STACK = "outscale"


def plan_of(**kwargs) -> Plan:
    return run_plan(lambda: plan_example.build(**kwargs), project=PROJECT, stack=STACK)


def test_urn_carries_parent_type_chain():
    plan = plan_of()
    urns = {resource.name: resource.urn for resource in plan.resources}
    assert urns["api"] == "urn:pulumi:outscale::tacops-ct::tacops:example:Service::api"
    assert urns["api-workload"] == (
        "urn:pulumi:outscale::tacops-ct::tacops:example:Service$tacops:example:Workload::api-workload")
    deployment = next(r for r in plan.resources if r.type == "kubernetes:apps/v1:Deployment")
    assert deployment.urn == ("urn:pulumi:outscale::tacops-ct::tacops:example:Service$tacops:example:Workload"
                              "$kubernetes:apps/v1:Deployment::api-workload")
    assert deployment.parent == urns["api-workload"]


def test_urn_of_stack_child_has_no_stack_type():
    stack_urn = "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"
    assert engine_urn("s", "p", stack_urn, "aws:s3/bucket:Bucket", "b") == "urn:pulumi:s::p::aws:s3/bucket:Bucket::b"


def test_plan_records_options_provider_and_kind():
    plan = plan_of()
    by_name = {resource.name: resource for resource in plan.resources}
    deployment = next(r for r in plan.resources if r.type == "kubernetes:apps/v1:Deployment")
    assert deployment.options["protect"] is True
    assert deployment.custom is True
    assert deployment.provider.startswith("urn:pulumi:outscale::tacops-ct::pulumi:providers:kubernetes::default_")
    assert by_name["api"].custom is False
    assert by_name["api"].provider == ""
    assert deployment.inputs["spec"]["replicas"] == 2
    assert isinstance(deployment.inputs["spec"]["replicas"], int)


def test_plan_masks_secrets():
    plan = plan_of(db_password="do-not-show-me")
    secret = next(r for r in plan.resources if r.type == "kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == "[secret]"
    assert "do-not-show-me" not in plan.to_json()


def test_plan_rejects_duplicate_urn():
    def program():
        aws.s3.Bucket("same", bucket="one")
        aws.s3.Bucket("same", bucket="two")

    with pytest.raises(DuplicateURNError) as raised:
        run_plan(program, project=PROJECT, stack=STACK)
    assert raised.value.urns == ["urn:pulumi:outscale::tacops-ct::aws:s3/bucket:Bucket::same"]
    assert "aws:s3/bucket:Bucket::same" in raised.value.message


def test_same_name_under_other_parent_is_no_duplicate():
    def program():
        first = pulumi.ComponentResource("tacops:example:Group", "first")
        second = pulumi.ComponentResource("tacops:example:Other", "second")
        aws.s3.Bucket("same", bucket="one", opts=pulumi.ResourceOptions(parent=first))
        aws.s3.Bucket("same", bucket="two", opts=pulumi.ResourceOptions(parent=second))

    plan = run_plan(program, project=PROJECT, stack=STACK)
    assert len([r for r in plan.resources if r.name == "same"]) == 2


def test_snapshot_round_trip_has_no_changes(tmp_path):
    path = tmp_path / "plans" / "outscale.json"
    save_plan(plan_of(), path)
    diff = diff_plans(load_plan(path), plan_of())
    assert not diff.has_changes
    assert diff.summary() == f"0 to create, 0 to update, 0 to delete, {diff.unchanged} unchanged"
    assert json.loads(path.read_text())["stack"] == STACK


def test_changed_input_is_update_of_that_resource_only():
    diff = diff_plans(plan_of(replicas=2), plan_of(replicas=5))
    assert [(change.action, change.type) for change in diff.changes] == [
        ("update", "kubernetes:apps/v1:Deployment")]
    [change] = diff.changes[0].changes
    assert (change.path, change.old, change.new) == ("spec.replicas", 2, 5)
    assert diff.count("update") == 1
    assert diff.summary().startswith("0 to create, 1 to update, 0 to delete")


def test_added_resource_is_create():
    diff = diff_plans(plan_of(), plan_of(extra_bucket=True))
    assert [(change.action, change.urn) for change in diff.changes] == [
        ("create", "urn:pulumi:outscale::tacops-ct::aws:s3/bucket:Bucket::archive")]


def test_removed_resource_is_delete():
    diff = diff_plans(plan_of(extra_bucket=True), plan_of())
    assert [change.action for change in diff.changes] == ["delete"]


def test_changed_secret_is_never_shown():
    diff = diff_plans(plan_of(db_password="old-value"), plan_of(db_password="new-value"))
    text = json.dumps(diff.to_dict())
    assert "old-value" not in text
    assert "new-value" not in text


def test_second_plan_parents_to_own_stack():
    run_plan(lambda: plan_example.build(), project=PROJECT, stack="stack-a")
    plan = run_plan(lambda: plan_example.build(), project=PROJECT, stack="stack-b")
    parents = {resource.parent for resource in plan.resources}
    assert f"urn:pulumi:stack-b::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-stack-b" in parents
    assert [parent for parent in parents if not parent.startswith("urn:pulumi:stack-b::")] == []
