"""The Flexible Engine program under Pulumi mocks, with the committed ``Pulumi.flexible-engine.yaml``."""

from __future__ import annotations

import re

import pulumi
import pytest

import mock_stack
from tacops.foundation.description import load_description
from tacops.infra import common, flexible_engine
from tacops.infra.common import SettingsError

DESCRIPTION = load_description()
SECRETS = {
    "tacops-ct:tlsPrivateKey": "test-key-not-a-secret",
    "tacops-ct:hsmPin": "0000",
    "tacops-ct:serviceSecrets": {"robert-ws-rest": {"SPRING_DATA_MONGODB_URI": "mongodb://test"}},
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
CRON_JOB = "kubernetes:batch/v1:CronJob"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
WORKLOADS = ["robert-ws-rest", "robert-crypto-grpc-server", "submission-code-server", "robert-push-notif-server",
             "captcha-server", "clea-ws-rest", "clea-venue-consumer"]
BATCH = ["robert-server-batch", "clea-batch"]


def _run(check, **overrides):
    config = mock_stack.committed_config("flexible-engine")
    config.update({f"tacops-ct:{key}": value for key, value in overrides.items()})
    mocks = mock_stack.start("flexible-engine", config, SECRETS)
    result = flexible_engine.build()
    return mock_stack.after_all(result, lambda: check(mocks))


def _containers(item) -> list[dict]:
    spec = item.inputs["spec"]
    if item.type == CRON_JOB:
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]["containers"]


@pulumi.runtime.test
def test_every_ct_service_deployed():
    def check(mocks):
        assert sorted(d.name for d in mocks.of_type(DEPLOYMENT)) == sorted(WORKLOADS)
        assert sorted(c.name for c in mocks.of_type(CRON_JOB)) == sorted(BATCH)
        assert mocks.of_type(STATEFUL_SET) == []
        placeholders = {p.name for p in mocks.of_type("tacops:flexibleengine:ManagedPlaceholder")}
        assert {"ct-managed-postgresql", "ct-managed-mongodb", "ct-managed-kafka",
                "ct-managed-elasticsearch", "ct-cce-cluster"} <= placeholders

    return _run(check)


@pulumi.runtime.test
def test_statefulsets_when_configured():
    def check(mocks):
        assert sorted(s.name for s in mocks.of_type(STATEFUL_SET)) == ["elasticsearch", "kafka", "mongodb", "postgresql"]
        placeholders = {p.name for p in mocks.of_type("tacops:flexibleengine:ManagedPlaceholder")}
        assert not any(name.startswith("ct-managed-") for name in placeholders)
        postgres = mocks.named("postgresql", STATEFUL_SET).inputs["spec"]
        claim = postgres["volumeClaimTemplates"][0]["spec"]
        assert claim["resources"]["requests"]["storage"] == "200Gi"

    return _run(check, datastores="statefulset")


@pulumi.runtime.test
def test_images_pinned_by_digest():
    def check(mocks):
        images = [c["image"] for kind in (DEPLOYMENT, CRON_JOB, STATEFUL_SET) for item in mocks.of_type(kind)
                  for c in _containers(item)]
        assert len(images) == len(WORKLOADS) + len(BATCH) + 4
        for image in images:
            assert re.search(r"@sha256:[0-9a-f]{64}$", image), image

    return _run(check, datastores="statefulset")


@pulumi.runtime.test
def test_probes_on_management_port():
    def check(mocks):
        for deployment in mocks.of_type(DEPLOYMENT):
            container = _containers(deployment)[0]
            expected = {"clea-venue-consumer": 8081}.get(deployment.name) or common.management_port(
                DESCRIPTION, deployment.name)
            for kind in ("readinessProbe", "livenessProbe"):
                probe = container[kind]
                port = (probe.get("httpGet") or probe.get("tcpSocket"))["port"]
                assert port == expected, (deployment.name, kind)
        ws = _containers(mocks.named("robert-ws-rest", DEPLOYMENT))[0]
        assert ws["readinessProbe"]["httpGet"] == {"path": "/actuator/health/readiness", "port": 8081}
        captcha = _containers(mocks.named("captcha-server", DEPLOYMENT))[0]
        assert captcha["livenessProbe"]["tcpSocket"] == {"port": 8080}

    return _run(check)


@pulumi.runtime.test
def test_pods_non_root_read_only():
    def check(mocks):
        for kind in (DEPLOYMENT, CRON_JOB, STATEFUL_SET):
            for item in mocks.of_type(kind):
                spec = item.inputs["spec"]
                pod = (spec["jobTemplate"]["spec"] if kind == CRON_JOB else spec)["template"]["spec"]
                assert pod["securityContext"]["runAsNonRoot"] is True
                assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
                for container in pod["containers"]:
                    context = container["securityContext"]
                    assert context["readOnlyRootFilesystem"] is True, item.name
                    assert context["allowPrivilegeEscalation"] is False
                    assert context["capabilities"] == {"drop": ["ALL"]}
                    assert container["resources"]["limits"]["memory"] == "1Gi"

    return _run(check, datastores="statefulset")


@pulumi.runtime.test
def test_ingress_exposes_exactly_public_routes():
    def check(mocks):
        ingress = mocks.named("ct-public-api").inputs["spec"]
        exposed = {(rule["host"], path["path"], path["backend"]["service"]["name"])
                   for rule in ingress["rules"] for path in rule["http"]["paths"]}
        expected = {(route.host, flexible_engine.route_path_pattern(route.path), route.service)
                    for route in DESCRIPTION.routes}
        assert exposed == expected
        assert ingress["tls"] == [{"hosts": ["api.tousanticovid.gouv.fr", "signal-api.tousanticovid.gouv.fr"],
                                   "secretName": "ct-public-tls"}]
        tls = mocks.named("ct-public-tls").inputs
        assert tls["type"] == "kubernetes.io/tls"

    return _run(check)


def test_route_pattern_matches_one_segment():
    pattern = re.compile(flexible_engine.route_path_pattern("/api/v6/captcha/{id}/image"))
    assert pattern.match("/api/v6/captcha/abc123/image")
    assert not pattern.match("/api/v6/captcha/a/b/image")
    assert not pattern.match("/api/v6/captcha/abc/image/extra")
    assert flexible_engine.route_path_pattern("/api/clea/v1/wreport") == "^/api/clea/v1/wreport$"


@pulumi.runtime.test
def test_autoscaler_bounds_from_config():
    def check(mocks):
        hpas = {h.name: h.inputs["spec"] for h in mocks.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")}
        assert set(hpas) == {"robert-ws-rest", "clea-ws-rest"}
        assert (hpas["robert-ws-rest"]["minReplicas"], hpas["robert-ws-rest"]["maxReplicas"]) == (4, 80)
        assert hpas["robert-ws-rest"]["scaleTargetRef"]["name"] == "robert-ws-rest"
        assert hpas["robert-ws-rest"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 55
        assert mocks.named("robert-ws-rest", DEPLOYMENT).inputs["spec"]["replicas"] == 4

    autoscaling = {"robert-ws-rest": {"minReplicas": 4, "maxReplicas": 80, "cpuUtilization": 55},
                   "clea-ws-rest": {"minReplicas": 2, "maxReplicas": 30}}
    return _run(check, autoscaling=autoscaling)


@pulumi.runtime.test
def test_network_policies_follow_talks_to():
    def check(mocks):
        policies = {p.name: p.inputs["spec"] for p in mocks.of_type(POLICY)}
        assert policies["ct-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        in_cluster = set(WORKLOADS + BATCH)
        for service in in_cluster:
            spec = policies.get(f"ct-{service}", {})
            from_pods = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                         for rule in spec.get("ingress", []) for peer in rule["from"] if "podSelector" in peer}
            callers = {c for c in common.callers(DESCRIPTION, service) if c in in_cluster}
            assert from_pods == (callers if DESCRIPTION.services[service].ports else set()), service
            to_pods = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                       for rule in spec.get("egress", []) for peer in rule["to"] if "podSelector" in peer}
            peers = {p for p in DESCRIPTION.services[service].talks_to
                     if p in in_cluster and DESCRIPTION.services[p].ports}
            assert to_pods == peers, service
        from_ingress = {name.removeprefix("ct-") for name, spec in policies.items()
                        for rule in spec.get("ingress", []) for peer in rule["from"]
                        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get(
                            "kubernetes.io/metadata.name") == "ingress-nginx"}
        assert from_ingress == {"robert-ws-rest", "clea-ws-rest"}
        crypto_egress = policies["ct-robert-crypto-grpc-server"]["egress"]
        assert crypto_egress == [{"to": [{"ipBlock": {"cidr": "10.60.0.0/20"}}], "ports": [{"protocol": "TCP", "port": 5432}]}]

    return _run(check)


@pulumi.runtime.test
def test_every_object_labelled_with_role_and_environment():
    def check(mocks):
        checked = 0
        for item in mocks.registrations:
            if not item.type.startswith("kubernetes:"):
                continue
            labels = item.inputs["metadata"]["labels"]
            assert labels.get("tacops/role"), item.name
            assert labels.get("tacops/environment") == "production", item.name
            checked += 1
        assert checked > 40

    return _run(check)


@pulumi.runtime.test
def test_hsm_from_config_and_secret():
    def check(mocks):
        pod = mocks.named("robert-crypto-grpc-server", DEPLOYMENT).inputs["spec"]["template"]["spec"]
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
        assert env["PKCS11_MODULE"] == "/usr/lib/softhsm/libsofthsm2.so"
        assert env["PKCS11_PIN_FILE"] == "/var/run/secrets/tacops/hsm/pin"
        assert {"name": "hsm-pin", "secret": {"secretName": "ct-hsm-pin", "defaultMode": 256}} in pod["volumes"]
        assert mocks.named("ct-hsm-pin").inputs["type"] == "Opaque"

    return _run(check)


@pulumi.runtime.test
def test_node_security_group_not_world_open():
    def check(mocks):
        rules = mocks.of_type("openstack:networking/secGroupRule:SecGroupRule")
        world_ingress = [r.name for r in rules
                         if r.inputs["direction"] == "ingress" and r.inputs.get("remoteIpPrefix") == "0.0.0.0/0"]
        assert world_ingress == []
        assert any(r.inputs.get("remoteIpPrefix") == "192.0.2.0/28" and r.inputs["portRangeMin"] == 30000
                   for r in rules)

    return _run(check, elbCidrs=["192.0.2.0/28"])


def _settings(**changes):
    values = {key.split(":", 1)[1]: value for key, value in mock_stack.committed_config("flexible-engine").items()}
    values.update(changes)

    class DictConfig:
        def get(self, key):
            return values.get(key)

        def get_object(self, key):
            return values.get(key)

    return flexible_engine.FlexibleEngineSettings(DESCRIPTION, DictConfig())


def test_settings_reject_tag_without_digest():
    images = dict(mock_stack.committed_config("flexible-engine")["tacops-ct:images"])
    images["clea-ws-rest"] = "registry.example.invalid/clea-ws-rest:latest"
    with pytest.raises(SettingsError, match="pins no digest for \\['clea-ws-rest'\\]"):
        _settings(images=images)


def test_settings_reject_inverted_bounds():
    with pytest.raises(SettingsError, match="minReplicas <= maxReplicas"):
        _settings(autoscaling={"robert-ws-rest": {"minReplicas": 5, "maxReplicas": 2}})


def test_settings_reject_unknown_datastores_mode():
    with pytest.raises(SettingsError, match="'datastores'"):
        _settings(datastores="external")


def test_settings_require_probe_port():
    with pytest.raises(SettingsError, match="probePorts.clea-venue-consumer"):
        _settings(probePorts={})
