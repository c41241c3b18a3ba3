"""Ansible inventory generated from the description, so no host list is kept twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tacops.foundation.description import SystemDescription


def group_name(role: str) -> str:
    """Return the Ansible group of a role (Ansible group names take no dashes)."""
    return role.replace("-", "_")


def build_inventory(description: SystemDescription, *, profile: str = "lab",
                    ssh_config: Path | None = None, description_path: Path | None = None) -> dict[str, Any]:
    """Build an inventory with one group per role, `ct` for CT hosts and `backup` for backup hosts."""
    hosts = description.profile(profile).hosts
    groups: dict[str, dict[str, Any]] = {"ct": {"hosts": {}}, "backup": {"hosts": {}}}
    for name, host in hosts.items():
        variables = {
            "tacops_address": str(host.address),
            "tacops_role": host.role,
            "tacops_units": list(host.units),
            "tacops_ports": list(host.ports),
            "tacops_trees": list(host.trees),
            "tacops_databases": host.databases(),
            "tacops_state": [item.model_dump() for item in host.state],
        }
        groups.setdefault(group_name(host.role), {"hosts": {}})["hosts"][name] = variables
        if not host.is_backup_host:
            groups["ct"]["hosts"][name] = None
    common: dict[str, Any] = {
        "ansible_user": "root",
        "ansible_python_interpreter": "/usr/bin/python3",
        "tacops_backup_hosts": [name for name, host in hosts.items() if host.is_backup_host],
        "tacops_backup_addresses": {name: str(host.address) for name, host in hosts.items() if host.is_backup_host},
        "tacops_os_image_exclude": list(description.os_image.exclude),
        "tacops_profile": profile,
        "tacops_description": str(description_path) if description_path else "",
    }
    if ssh_config is not None:
        common["ansible_ssh_common_args"] = f"-F {ssh_config}"
        common["tacops_ssh_config"] = str(ssh_config)
    return {"all": {"vars": common, "children": groups}}


def write_inventory(description: SystemDescription, path: Path, *, profile: str = "lab",
                    ssh_config: Path | None = None, description_path: Path | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    inventory = build_inventory(description, profile=profile, ssh_config=ssh_config,
                                description_path=description_path)
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path
