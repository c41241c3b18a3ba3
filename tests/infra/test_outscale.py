"""The OUTSCALE program under Pulumi mocks, with the committed ``Pulumi.outscale.yaml``."""

from __future__ import annotations

import json
from collections import Counter

import pulumi
import pytest

import mock_stack
from tacops.foundation.description import load_description
from tacops.infra import common, outscale
from tacops.infra.common import SettingsError

DESCRIPTION = load_description()
VM = "outscale:index/vm:Vm"
RULE = "outscale:index/securityGroupRule:SecurityGroupRule"
GROUP = "outscale:index/securityGroup:SecurityGroup"


class DictConfig:
    """The two ``pulumi.Config`` getters, over a plain dict, for settings checks without mocks."""

    def __init__(self, values):
        self.values = values

    def get(self, key):
        return self.values.get(key)

    def get_object(self, key):
        return self.values.get(key)


def _plain(config: dict) -> dict:
    return {key.split(":", 1)[1]: value for key, value in config.items() if key.startswith("tacops-ct:")}


def _run(check, **overrides):
    config = mock_stack.committed_config("outscale")
    config.update({f"tacops-ct:{key}": value for key, value in overrides.items()})
    mocks = mock_stack.start("outscale", config)
    result = outscale.build()
    return mock_stack.after_all(result, lambda: check(mocks))


def _tags(inputs) -> dict[str, str]:
    return {item["key"]: item["value"] for item in inputs.get("tags", [])}


def _decoded(value):
    """Decode a provider input: nested values and booleans reach the engine as JSON strings."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _group_of(mocks, group_id: str) -> str:
    return group_id.removesuffix("-id")


def _opened(mocks) -> dict[str, dict[int, set[str]]]:
    """Map security group name -> port -> sources (group names or CIDRs)."""
    opened: dict[str, dict[int, set[str]]] = {}
    for rule in mocks.of_type(RULE):
        assert rule.inputs["flow"] == "Inbound"
        group = _group_of(mocks, rule.inputs["securityGroupId"])
        for item in rule.inputs["rules"]:
            assert item["fromPortRange"] == item["toPortRange"], rule.name
            port = int(item["fromPortRange"])
            sources = opened.setdefault(group, {}).setdefault(port, set())
            sources.update(item.get("ipRanges") or [])
            sources.update(_group_of(mocks, m["securityGroupId"]) for m in item.get("securityGroupsMembers") or [])
    return opened


@pulumi.runtime.test
def test_vm_count_per_role_from_description():
    def check(mocks):
        counts = Counter(_tags(vm.inputs)["role"] for vm in mocks.of_type(VM))
        assert counts == {name: role.count for name, role in DESCRIPTION.roles.items()}
        assert sum(counts.values()) == 374

    return _run(check)


@pulumi.runtime.test
def test_role_count_and_type_from_config():
    def check(mocks):
        robert = [vm for vm in mocks.of_type(VM) if _tags(vm.inputs)["role"] == "robert-ws"]
        assert len(robert) == 3
        assert {vm.inputs["vmType"] for vm in robert} == {"tinav6.c2r4p2"}
        assert {vm.inputs["imageId"] for vm in robert} == {"ami-restored1"}
        assert [vm.name for vm in robert] == ["ct-robert-ws-1", "ct-robert-ws-2", "ct-robert-ws-3"]
        assert len(mocks.of_type(VM)) == 374 - 60 + 3

    roles = {"backup": {"omi": "ami-b"}, "robert-ws": {"count": 3, "vmType": "tinav6.c2r4p2", "omi": "ami-restored1"}}
    return _run(check, roles=roles)


@pulumi.runtime.test
def test_ports_per_role_match_description():
    def check(mocks):
        opened = _opened(mocks)
        for name, role in DESCRIPTION.roles.items():
            expected = {port.port for service in role.services for port in DESCRIPTION.services[service].ports}
            ports = set(opened.get(f"ct-{name}", {})) - {22}
            assert ports == expected, name

    return _run(check)


@pulumi.runtime.test
def test_service_ports_open_only_to_callers():
    runners = common.service_roles(DESCRIPTION)

    def check(mocks):
        opened = _opened(mocks)
        for name, role in DESCRIPTION.roles.items():
            for service in role.services:
                callers = {f"ct-{r}" for caller in common.callers(DESCRIPTION, service) for r in runners[caller]}
                for port in DESCRIPTION.services[service].ports:
                    sources = set(opened[f"ct-{name}"][port.port])
                    if port.purpose == "management":
                        sources.discard("ct-monitoring")
                    if role.tier == "data":
                        sources.discard(f"ct-{name}")
                    if name == "load-balancer":
                        callers = {"ct-public-lb"}
                    assert sources == callers, (name, port.port)
        assert opened["ct-robert-crypto"][9090] == {"ct-robert-ws", "ct-robert-batch"}
        assert opened["ct-mongodb"][27017] == {"ct-robert-ws", "ct-robert-batch", "ct-mongodb"}

    return _run(check)


@pulumi.runtime.test
def test_only_public_lb_open_to_world_on_443():
    def check(mocks):
        world = [
            (rule.inputs["securityGroupId"], int(item["fromPortRange"]), int(item["toPortRange"]))
            for rule in mocks.of_type(RULE)
            for item in rule.inputs["rules"]
            if "0.0.0.0/0" in (item.get("ipRanges") or [])
        ]
        assert world == [("ct-public-lb-id", 443, 443)]
        lb = mocks.named("ct-public-api").inputs
        assert lb["securityGroups"] == ["ct-public-lb-id"]
        assert [(int(x["loadBalancerPort"]), int(x["backendPort"])) for x in lb["listeners"]] == [(443, 443)]

    return _run(check)


@pulumi.runtime.test
def test_ssh_only_from_admin_roles_and_to_backup():
    def check(mocks):
        opened = _opened(mocks)
        for group, ports in opened.items():
            if group in ("ct-public-lb", "ct-bastion-admin"):
                assert 22 not in ports
            elif group == "ct-backup":
                others = {f"ct-{r}" for r in DESCRIPTION.roles if r != "backup"}
                assert ports[22] == others
            else:
                assert ports[22] == {"ct-bastion-admin"}, group

    return _run(check)


@pulumi.runtime.test
def test_backup_hosts_dedicated_on_two_subnets():
    def check(mocks):
        backups = [vm for vm in mocks.of_type(VM) if _tags(vm.inputs)["role"] == "backup"]
        assert len(backups) == 2
        assert {vm.inputs["placementTenancy"] for vm in backups} == {"dedicated"}
        assert {vm.inputs["subnetId"] for vm in backups} == {"ct-subnet-backup-a-id", "ct-subnet-backup-b-id"}
        assert {vm.inputs["placementSubregionName"] for vm in backups} == {
            "cloudgouv-eu-west-1a", "cloudgouv-eu-west-1b"}
        others = [vm for vm in mocks.of_type(VM) if _tags(vm.inputs)["role"] != "backup"]
        assert {vm.inputs["placementTenancy"] for vm in others} == {"default"}

    return _run(check)


@pulumi.runtime.test
def test_backup_hosts_in_configured_dedicated_groups():
    def check(mocks):
        backups = [vm for vm in mocks.of_type(VM) if _tags(vm.inputs)["role"] == "backup"]
        assert [vm.inputs["placementTenancy"] for vm in backups] == ["dg-aaaa", "dg-bbbb"]

    return _run(check, backupDedicatedGroups=["dg-aaaa", "dg-bbbb"])


@pulumi.runtime.test
def test_every_resource_tagged_with_role_and_environment():
    tagged_list = (VM, GROUP, "outscale:index/net:Net", "outscale:index/subnet:Subnet",
                   "outscale:index/loadBalancer:LoadBalancer")

    def check(mocks):
        checked = 0
        for item in mocks.registrations:
            if item.type in tagged_list:
                tags = _tags(item.inputs)
            elif item.type == "aws:s3/bucket:Bucket":
                tags = item.inputs["tags"]
            else:
                continue
            checked += 1
            assert tags.get("role"), item.name
            assert tags.get("environment") == "production", item.name
            assert tags.get("system") == "tousanticovid-ct", item.name
        assert checked > 374

    return _run(check)


@pulumi.runtime.test
def test_region_default_and_oos_provider():
    def check(mocks):
        provider = mocks.of_type("pulumi:providers:outscale")[0].inputs
        assert provider["region"] == "cloudgouv-eu-west-1"
        # Provider inputs reach the engine as JSON strings.
        oos = {key: _decoded(value) for key, value in mocks.of_type("pulumi:providers:aws")[0].inputs.items()}
        assert oos["endpoints"] == [{"s3": "https://oos.cloudgouv-eu-west-1.outscale.com"}]
        assert oos["s3UsePathStyle"] is True
        assert oos["skipCredentialsValidation"] is True
        assert oos["skipMetadataApiCheck"] is True
        assert oos["skipRegionValidation"] is True
        names = {b.inputs["bucket"] for b in mocks.of_type("aws:s3/bucket:Bucket")}
        assert names == {"tousanticovid-app", "tousanticovid-app-static", "tousanticovid-clea-clusters",
                         "tousanticovid-ct-image-exports"}
        assert mocks.named("ct-image-exports").inputs["acl"] == "private"
        assert len(mocks.of_type("aws:s3/bucketPolicy:BucketPolicy")) == 3

    return _run(check)


@pulumi.runtime.test
def test_load_balancer_backends_are_lb_role():
    def check(mocks):
        backends = mocks.named("ct-public-api-backends").inputs["backendVmIds"]
        assert backends == [f"ct-load-balancer-{i}-id" for i in range(1, 7)]
        tags = _tags(mocks.named("ct-public-api").inputs)
        assert tags["hosts"] == "api.tousanticovid.gouv.fr,signal-api.tousanticovid.gouv.fr"

    return _run(check)


def _settings(**changes):
    values = _plain(mock_stack.committed_config("outscale"))
    values.update(changes)
    return outscale.OutscaleSettings(DESCRIPTION, DictConfig(values))


def test_settings_reject_unknown_role():
    with pytest.raises(SettingsError, match="unknown roles \\['robert-wss'\\]"):
        _settings(roles={"robert-wss": {"count": 1}})


def test_settings_reject_single_backup_host():
    with pytest.raises(SettingsError, match="at least 2 backup hosts"):
        _settings(roles={"backup": {"count": 1, "omi": "ami-b"}})


def test_settings_reject_missing_omi():
    with pytest.raises(SettingsError, match="no OMI for roles"):
        _settings(defaultOmi=None)


def test_settings_reject_world_ssh():
    with pytest.raises(SettingsError, match="adminCidrs"):
        _settings(adminCidrs=["0.0.0.0/0"])


def test_settings_reject_fractional_count():
    with pytest.raises(SettingsError, match="roles.captcha.count"):
        _settings(roles={"captcha": {"count": 2.5}})


def test_settings_accept_float_count_from_json():
    settings = _settings(roles={"captcha": {"count": 2.0}})
    assert settings.stack.roles["captcha"].count == 2
