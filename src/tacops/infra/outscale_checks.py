"""Post-creation check that the backup hosts sit on different physical servers at OUTSCALE.

``pulumi_outscale`` 0.0.1 has no dedicated-group resource, and a VM created with
``placement_tenancy = "dedicated"`` gets single-tenant hardware but not necessarily a
server of its own: two such VMs may share one. OAPI does not show which physical server
runs a VM. What it does show is dedicated-group membership, and each dedicated group gets
its own physical server. So the check passes only when every backup host is dedicated,
is in a dedicated group, no two share a group, and no two share a subnet.

The runbooks call :func:`check_backup_separation` after ``pulumi up`` with an
``osc_sdk_python.Gateway``.

NOTE: tested only against a double built from the published OAPI response shapes (ReadVms:
``Vms[].Placement.Tenancy``, ``SubnetId``. ReadDedicatedGroups: ``DedicatedGroups[].VmIds``,
``NextPageToken``), never against the real API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

SHARED_TENANCIES = ("default", "")
PLAIN_DEDICATED = "dedicated"


class OapiGateway(Protocol):
    """The two calls of ``osc_sdk_python.Gateway`` this check makes."""

    def ReadVms(self, **parameters: Any) -> dict[str, Any]: ...  # noqa: N802 - OAPI action name

    def ReadDedicatedGroups(self, **parameters: Any) -> dict[str, Any]: ...  # noqa: N802 - OAPI action name


@dataclass(frozen=True)
class BackupHostPlacement:
    vm_id: str
    tenancy: str
    subnet_id: str | None
    dedicated_group_id: str | None


@dataclass
class SeparationReport:
    """Placement of every backup host and each reason they may share a physical server."""

    placements: list[BackupHostPlacement] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_backup_separation(gateway: OapiGateway, vm_ids: list[str]) -> SeparationReport:
    """Read the backup VMs and the dedicated groups; report every way two hosts may share a server."""
    if len(set(vm_ids)) < 2:
        raise ValueError(f"at least two distinct backup VM ids are needed, got {vm_ids!r}")

    vms = {vm["VmId"]: vm for vm in gateway.ReadVms(Filters={"VmIds": list(vm_ids)}).get("Vms", [])}
    group_of_vm = _dedicated_group_members(gateway)

    report = SeparationReport()
    for vm_id in vm_ids:
        vm = vms.get(vm_id)
        if vm is None:
            report.problems.append(f"{vm_id}: not found by ReadVms; check the id and the region")
            continue
        tenancy = (vm.get("Placement") or {}).get("Tenancy", "")
        # Placement.Tenancy is "default", "dedicated" or the id of a dedicated group.
        group = group_of_vm.get(vm_id)
        if group is None and tenancy not in (*SHARED_TENANCIES, PLAIN_DEDICATED):
            group = tenancy
        report.placements.append(BackupHostPlacement(vm_id, tenancy, vm.get("SubnetId"), group))

    for placement in report.placements:
        if placement.tenancy in SHARED_TENANCIES:
            report.problems.append(f"{placement.vm_id}: tenancy is {placement.tenancy or 'unset'}, not dedicated")
        elif placement.dedicated_group_id is None:
            report.problems.append(
                f"{placement.vm_id}: dedicated but in no dedicated group, so OAPI cannot show that it has a "
                "physical server of its own; create one dedicated group per backup host and recreate the VM in it"
            )
    _report_shared(report, "dedicated_group_id", "dedicated group (one physical server)")
    _report_shared(report, "subnet_id", "subnet")
    return report


def _dedicated_group_members(gateway: OapiGateway) -> dict[str, str]:
    members: dict[str, str] = {}
    token = None
    while True:
        parameters = {"NextPageToken": token} if token else {}
        response = gateway.ReadDedicatedGroups(**parameters)
        for group in response.get("DedicatedGroups", []):
            for vm_id in group.get("VmIds", []):
                members[vm_id] = group["DedicatedGroupId"]
        token = response.get("NextPageToken")
        if not token:
            return members


def _report_shared(report: SeparationReport, attribute: str, what: str) -> None:
    holders: dict[str, list[str]] = {}
    for placement in report.placements:
        value = getattr(placement, attribute)
        if value is not None:
            holders.setdefault(value, []).append(placement.vm_id)
    for value, vm_ids in sorted(holders.items()):
        if len(vm_ids) > 1:
            report.problems.append(f"{', '.join(vm_ids)} share the {what} {value}")
