"""The backup-host separation check against a double of the OAPI gateway.

The double returns the shapes of the published OAPI responses (ReadVms, ReadDedicatedGroups);
the check has not been run against the real API.
"""

import pytest

from tacops.infra.outscale_checks import check_backup_separation


class GatewayDouble:
    def __init__(self, vms, groups, page_size=100):
        self.vms = vms
        self.groups = groups
        self.page_size = page_size
        self.calls = []

    def ReadVms(self, **parameters):  # noqa: N802 - OAPI action name
        self.calls.append(("ReadVms", parameters))
        wanted = set(parameters.get("Filters", {}).get("VmIds", []))
        return {"Vms": [vm for vm in self.vms if vm["VmId"] in wanted], "ResponseContext": {"RequestId": "r"}}

    def ReadDedicatedGroups(self, **parameters):  # noqa: N802 - OAPI action name
        self.calls.append(("ReadDedicatedGroups", parameters))
        start = int(parameters.get("NextPageToken") or 0)
        page = self.groups[start:start + self.page_size]
        response = {"DedicatedGroups": page, "ResponseContext": {"RequestId": "r"}}
        if start + self.page_size < len(self.groups):
            response["NextPageToken"] = str(start + self.page_size)
        return response


def _vm(vm_id, subnet, tenancy="dedicated"):
    return {"VmId": vm_id, "SubnetId": subnet, "State": "running",
            "Placement": {"SubregionName": "cloudgouv-eu-west-1a", "Tenancy": tenancy}}


def _group(group_id, vm_ids):
    return {"DedicatedGroupId": group_id, "Name": group_id, "CpuGeneration": 6,
            "SubregionName": "cloudgouv-eu-west-1a", "VmIds": vm_ids, "NetIds": []}


def test_separation_ok_in_two_groups():
    gateway = GatewayDouble([_vm("i-a", "subnet-a"), _vm("i-b", "subnet-b")],
                            [_group("dg-1", ["i-a"]), _group("dg-2", ["i-b"])])
    report = check_backup_separation(gateway, ["i-a", "i-b"])
    assert report.problems == []
    assert report.ok
    assert [p.dedicated_group_id for p in report.placements] == ["dg-1", "dg-2"]


def test_same_group_reported():
    gateway = GatewayDouble([_vm("i-a", "subnet-a"), _vm("i-b", "subnet-b")], [_group("dg-1", ["i-a", "i-b"])])
    report = check_backup_separation(gateway, ["i-a", "i-b"])
    assert not report.ok
    assert report.problems == ["i-a, i-b share the dedicated group (one physical server) dg-1"]


def test_dedicated_without_group_cannot_be_proven():
    gateway = GatewayDouble([_vm("i-a", "subnet-a"), _vm("i-b", "subnet-b")], [])
    report = check_backup_separation(gateway, ["i-a", "i-b"])
    assert len(report.problems) == 2
    assert all("in no dedicated group" in problem for problem in report.problems)


def test_default_tenancy_and_shared_subnet_reported():
    gateway = GatewayDouble([_vm("i-a", "subnet-a", "default"), _vm("i-b", "subnet-a")],
                            [_group("dg-2", ["i-b"])])
    report = check_backup_separation(gateway, ["i-a", "i-b"])
    assert "i-a: tenancy is default, not dedicated" in report.problems
    assert "i-a, i-b share the subnet subnet-a" in report.problems


def test_group_id_in_tenancy_counts_as_group():
    gateway = GatewayDouble([_vm("i-a", "subnet-a", "dg-1"), _vm("i-b", "subnet-b", "dg-2")], [])
    assert check_backup_separation(gateway, ["i-a", "i-b"]).ok


def test_missing_vm_reported():
    gateway = GatewayDouble([_vm("i-a", "subnet-a")], [_group("dg-1", ["i-a"])])
    report = check_backup_separation(gateway, ["i-a", "i-gone"])
    assert "i-gone: not found by ReadVms; check the id and the region" in report.problems


def test_group_pages_followed():
    groups = [_group(f"dg-{n}", [f"i-x{n}"]) for n in range(5)] + [_group("dg-a", ["i-a"]), _group("dg-b", ["i-b"])]
    gateway = GatewayDouble([_vm("i-a", "subnet-a"), _vm("i-b", "subnet-b")], groups, page_size=2)
    assert check_backup_separation(gateway, ["i-a", "i-b"]).ok
    assert sum(1 for name, _ in gateway.calls if name == "ReadDedicatedGroups") == 4


def test_single_vm_rejected_before_any_call():
    gateway = GatewayDouble([], [])
    with pytest.raises(ValueError, match="two distinct backup VM ids"):
        check_backup_separation(gateway, ["i-a", "i-a"])
    assert gateway.calls == []
