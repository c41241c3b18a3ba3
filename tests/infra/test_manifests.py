"""Kubernetes manifests rendered from the offline plan and validated in strict mode."""

from __future__ import annotations

import pulumi_kubernetes as k8s
import yaml

import plan_example
from tacops.infra.manifests import api_version_and_kind, render_manifests, validate_manifests, write_manifests
from tacops.infra.plan import run_plan


def manifests_of(program):
    return render_manifests(run_plan(program, project="tacops-ct", stack="flexible-engine"))


def test_type_token_gives_api_version_and_kind():
    assert api_version_and_kind("kubernetes:core/v1:Service") == ("v1", "Service")
    assert api_version_and_kind("kubernetes:apps/v1:Deployment") == ("apps/v1", "Deployment")
    assert api_version_and_kind("kubernetes:networking.k8s.io/v1:Ingress") == ("networking.k8s.io/v1", "Ingress")
    assert api_version_and_kind("kubernetes:yaml:ConfigFile") is None
    assert api_version_and_kind("aws:s3/bucket:Bucket") is None


def test_valid_deployment_passes():
    manifests = manifests_of(plan_example.build)
    kinds = sorted(item.manifest["kind"] for item in manifests)
    assert kinds == ["Deployment", "Secret"]
    assert validate_manifests(manifests, "1.29") == []


def test_secret_data_stays_masked():
    [secret] = [item for item in manifests_of(plan_example.build) if item.manifest["kind"] == "Secret"]
    assert "s3cr3t-value" not in yaml.safe_dump(secret.manifest)


def test_unknown_field_fails_naming_it():
    def program():
        k8s.core.v1.Service("api", metadata={"name": "api"},
                            spec={"ports": [{"port": 443, "tragetPort": 8080}], "selector": {"app": "api"}})

    [failure] = validate_manifests(manifests_of(program), "1.29")
    assert failure.urn == "urn:pulumi:flexible-engine::tacops-ct::kubernetes:core/v1:Service::api"
    assert failure.field == "spec.ports.0"
    assert "tragetPort" in failure.message


def test_wrong_type_fails_naming_field():
    def program():
        k8s.apps.v1.Deployment("api", metadata={"name": "api"}, spec={
            "replicas": "two",
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                         "spec": {"containers": [{"name": "app", "image": "app" + plan_example.DIGEST}]}}})

    [failure] = validate_manifests(manifests_of(program), "1.29")
    assert failure.field == "spec.replicas"
    assert failure.kind == "Deployment"
    assert "'two'" in failure.message


def test_every_invalid_resource_is_reported():
    def program():
        k8s.core.v1.ConfigMap("one", metadata={"name": "one", "colour": "blue"})
        k8s.core.v1.ConfigMap("two", metadata={"name": "two", "colour": "red"})

    failures = validate_manifests(manifests_of(program), "1.29")
    assert sorted(failure.name for failure in failures) == ["one", "two"]


def test_manifests_written_one_file_per_object(tmp_path):
    paths = write_manifests(manifests_of(plan_example.build), tmp_path)
    assert sorted(path.name for path in paths) == ["deployment_api-workload.yaml", "secret_db.yaml"]
    loaded = yaml.safe_load((tmp_path / "deployment_api-workload.yaml").read_text())
    assert loaded["apiVersion"] == "apps/v1"
    assert loaded["spec"]["replicas"] == 2
