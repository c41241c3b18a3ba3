"""Policy pack run offline through the harness: a clean stack passes, each planted violation is caught."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

import plan_example
from tacops.infra.plan import run_plan
from tacops.infra.policy_harness import PolicyReport, run_policy_pack

PACK = Path(__file__).resolve().parents[2] / "policy"
PROJECT = "tacops-ct"
STACK = "flexible-engine"
CLEAN_CONFIG = {"aws:region": "eu-west-0", "tacops-ct:environment": "test", "tacops-ct:tlsKey": "[secret]"}
LABELS = plan_example.LABELS


def check(*extra, config: dict | None = None, secret_keys=("tacops-ct:tlsKey",)) -> PolicyReport:
    """Plan the clean example plus ``extra`` declarations and run the pack over the plan."""
    def program():
        plan_example.build()
        for declare in extra:
            declare()

    stack_config = {**CLEAN_CONFIG, **(config or {})}
    plan = run_plan(program, project=PROJECT, stack=STACK, config=stack_config, secret_keys=secret_keys)
    return run_policy_pack(plan, PACK, stack_config=stack_config, secret_keys=list(secret_keys))


def violations(report: PolicyReport, rule: str) -> list[str]:
    """Return the violation lines tagged with ``rule``."""
    return [diagnostic.message.splitlines()[-1] for diagnostic in report.diagnostics
            if diagnostic.message.splitlines()[-1].startswith(f"[{rule}]")]


def test_clean_stack_passes():
    report = check()
    assert report.pack == "tacops-secnumcloud"
    assert report.diagnostics == []


def test_every_rule_is_mandatory():
    report = check(lambda: aws.s3.Bucket("untagged", bucket="untagged"))
    assert report.diagnostics
    assert all(diagnostic.enforcement == "mandatory" for diagnostic in report.diagnostics)


def test_region_outside_configuration_is_caught():
    report = check(config={"aws:region": "us-east-1"})
    [line] = violations(report, "region-and-endpoints-from-configuration")
    assert "pulumi:providers:aws::default_" in line
    assert "'us-east-1'" in line


def test_foreign_endpoint_on_explicit_provider_is_caught():
    def declare():
        aws.Provider("oos", region="eu-west-0", endpoints=[{"s3": "https://s3.attacker.example"}])

    [line] = violations(check(declare), "region-and-endpoints-from-configuration")
    assert "urn:pulumi:flexible-engine::tacops-ct::pulumi:providers:aws::oos" in line
    assert "s3.attacker.example" in line


def test_world_open_ingress_on_ssh_is_caught():
    def declare():
        aws.ec2.SecurityGroup("admin", tags=LABELS, ingress=[
            {"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": ["0.0.0.0/0"]}])

    [line] = violations(check(declare), "no-public-exposure")
    assert "aws:ec2/securityGroup:SecurityGroup::admin" in line
    assert "22-22" in line


def test_world_open_ingress_on_443_for_public_role_passes():
    def declare():
        aws.ec2.SecurityGroup("lb", tags={"role": "public-load-balancer", "environment": "test"}, ingress=[
            {"protocol": "tcp", "fromPort": 443, "toPort": 443, "cidrBlocks": ["0.0.0.0/0"]}])

    assert violations(check(declare), "no-public-exposure") == []


def test_load_balancer_service_of_private_role_is_caught():
    def declare():
        k8s.core.v1.Service("api-public", metadata={"labels": LABELS},
                            spec={"type": "LoadBalancer", "ports": [{"port": 443}], "selector": {"app": "api"}})

    [line] = violations(check(declare), "no-public-exposure")
    assert "kubernetes:core/v1:Service::api-public" in line


def test_unencrypted_volume_is_caught():
    def declare():
        aws.ebs.Volume("data", availability_zone="eu-west-0a", size=10, tags=LABELS)

    [line] = violations(check(declare), "storage-encrypted")
    assert "aws:ebs/volume:Volume::data" in line


def test_bucket_without_encryption_is_caught():
    [line] = violations(check(lambda: aws.s3.Bucket("raw", bucket="ct-raw", tags=LABELS)), "storage-encrypted")
    assert "aws:s3/bucket:Bucket::raw" in line


def test_public_read_bucket_outside_static_zones_is_caught():
    def declare():
        bucket = aws.s3.Bucket("dumps", bucket="ct-dumps", tags=LABELS)
        aws.s3.BucketServerSideEncryptionConfiguration(
            "dumps-encryption", bucket=bucket.bucket,
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            opts=pulumi.ResourceOptions(parent=bucket))
        aws.s3.BucketPolicy("dumps-public", bucket=bucket.id, opts=pulumi.ResourceOptions(parent=bucket),
                            policy='{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}')

    [line] = violations(check(declare), "no-public-read-bucket")
    assert "aws:s3/bucketPolicy:BucketPolicy::dumps-public" in line
    assert "'ct-dumps'" in line


def test_public_read_static_zone_bucket_passes():
    def declare():
        bucket = aws.s3.Bucket("zone", bucket="ct-zone", tags={"role": "static-zone", "environment": "test"})
        aws.s3.BucketServerSideEncryptionConfiguration(
            "zone-encryption", bucket=bucket.bucket,
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            opts=pulumi.ResourceOptions(parent=bucket))
        aws.s3.BucketPolicy("zone-public", bucket=bucket.id, opts=pulumi.ResourceOptions(parent=bucket),
                            policy='{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}')

    assert violations(check(declare), "no-public-read-bucket") == []


def test_missing_environment_tag_is_caught():
    def declare():
        bucket = aws.s3.Bucket("notag", bucket="ct-notag", tags={"role": "api"})
        aws.s3.BucketServerSideEncryptionConfiguration(
            "notag-encryption", bucket=bucket.bucket,
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
            opts=pulumi.ResourceOptions(parent=bucket))

    [line] = violations(check(declare), "tagged-with-role-and-environment")
    assert "aws:s3/bucket:Bucket::notag" in line
    assert "environment" in line


def test_backup_host_on_shared_tenancy_is_caught():
    def declare():
        aws.ec2.Instance("backup-1", ami="ami-1", instance_type="t3.large", tenancy="default",
                         tags={"role": "backup", "environment": "test"},
                         root_block_device={"encrypted": True})

    [line] = violations(check(declare), "backup-hosts-dedicated-tenancy")
    assert "aws:ec2/instance:Instance::backup-1" in line


def test_image_by_tag_is_caught():
    def declare():
        plan_example.Service("web", "registry.example/web:1.0", 1)

    [line] = violations(check(declare), "images-pinned-by-digest")
    assert "kubernetes:apps/v1:Deployment::web-workload" in line
    assert "registry.example/web:1.0" in line


def test_plain_password_in_env_is_caught():
    def declare():
        k8s.core.v1.ConfigMap("settings", metadata={"labels": LABELS}, data={"API_TOKEN": "plain-token"})

    [line] = violations(check(declare), "no-plain-secrets")
    assert "kubernetes:core/v1:ConfigMap::settings" in line
    assert "plain-token" not in line


def test_secret_input_passes():
    def declare():
        k8s.core.v1.ConfigMap("settings", metadata={"labels": LABELS},
                              data={"API_TOKEN": pulumi.Output.secret("hidden")})

    assert violations(check(declare), "no-plain-secrets") == []


def test_plain_secret_configuration_is_caught():
    report = check(config={"tacops-ct:hsmPin": "1234"})
    [line] = violations(report, "no-plain-secret-config")
    assert "urn:pulumi:flexible-engine::tacops-ct::pulumi:pulumi:Stack::tacops-ct-flexible-engine" in line
    assert "tacops-ct:hsmPin" in line
    assert "1234" not in line


@pytest.mark.parametrize("name, expected", [
    ("password", True), ("dbPassword", True), ("HSM_SO_PIN", True), ("apiToken", True),
    ("privateKey", True), ("secretName", False), ("keyName", False), ("pinned", False)])
def test_secret_name_heuristic(name, expected):
    import importlib.util

    spec = importlib.util.spec_from_file_location("secnumcloud", PACK / "secnumcloud.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.looks_like_secret_name(name) is expected


@pytest.mark.parametrize("stack", ["outscale", "flexible-engine"])
def test_shipped_stack_passes_pack(stack):
    from tacops.infra import preview

    stack_config = preview.load_stack_config(PACK.parent, stack)
    result = preview.offline_preview(stack_config, update=False)
    report = run_policy_pack(result.plan, PACK, stack_config=stack_config.config,
                             secret_keys=stack_config.secret_keys)
    assert [diagnostic.message for diagnostic in report.diagnostics] == []
    assert report.mandatory_violations == []
