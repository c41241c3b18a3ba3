"""Stack settings shared by both Pulumi programs, read from stack configuration and the description.

The description (``tacops.foundation.description``) describes the CT system: services,
their ports and peers, roles with counts and VM types, tiers and public routes. Stack
configuration sets how one platform deploys it: region, environment, per-role overrides,
OMIs, image digests. This module joins the two into plain values; it creates no resource.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tacops.foundation.description import Route, SystemDescription

PROJECT = "tacops-ct"
SYSTEM_TAG = "tousanticovid-ct"
TIERS = ("front", "app", "data", "admin", "backup")
DEFAULT_REGIONS = {"outscale": "cloudgouv-eu-west-1", "flexible-engine": "eu-west-0"}
MANAGEMENT_PURPOSE = "management"


class SettingsError(ValueError):
    """Invalid stack configuration; the message names the configuration key and the fix."""


class ConfigSource(Protocol):
    """The part of ``pulumi.Config`` the settings readers use, so tests can pass a dict."""

    def get(self, key: str) -> str | None: ...

    def get_object(self, key: str) -> Any: ...


@dataclass(frozen=True)
class RoleSettings:
    """One production role as a platform deploys it: description values with overrides applied."""

    name: str
    services: tuple[str, ...]
    count: int
    vm_type: str
    tier: str
    omi: str | None
    stores: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flow:
    """An inbound flow a role accepts: ``port`` of ``service`` from the roles in ``sources``."""

    service: str
    port: int
    purpose: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class StackSettings:
    platform: str
    environment: str
    region: str
    roles: dict[str, RoleSettings]
    placeholders: tuple[str, ...] = field(default=())

    def vm_total(self) -> int:
        return sum(role.count for role in self.roles.values())


def read_stack_settings(description: SystemDescription, platform: str, config: ConfigSource) -> StackSettings:
    """Read region, environment and per-role overrides; raise SettingsError naming the bad key.

    Per-role overrides live under the ``roles`` key: ``{<role>: {count, vmType, omi}}``.
    ``defaultOmi`` applies to every role without its own ``omi``.
    """
    if platform not in DEFAULT_REGIONS:
        raise SettingsError(f"platform {platform!r} is unknown; expected one of {sorted(DEFAULT_REGIONS)}")
    region = config.get("region") or DEFAULT_REGIONS[platform]
    environment = config.get("environment") or "production"
    overrides = config.get_object("roles") or {}
    if not isinstance(overrides, Mapping):
        raise SettingsError("config key 'roles' must be a mapping of role name to {count, vmType, omi}")
    unknown = sorted(set(overrides) - set(description.roles))
    if unknown:
        raise SettingsError(
            f"config key 'roles' names unknown roles {unknown}; expected roles of the description: "
            f"{sorted(description.roles)}"
        )
    default_omi = config.get("defaultOmi")

    roles: dict[str, RoleSettings] = {}
    for name, role in description.roles.items():
        override = overrides.get(name) or {}
        extra = sorted(set(override) - {"count", "vmType", "omi"})
        if extra:
            raise SettingsError(f"config key 'roles.{name}' has unknown keys {extra}; expected count, vmType, omi")
        count = as_count(override.get("count", role.count), f"roles.{name}.count")
        roles[name] = RoleSettings(
            name=name,
            services=tuple(role.services),
            count=count,
            vm_type=str(override.get("vmType", role.vm_type)),
            tier=role.tier,
            omi=override.get("omi", default_omi),
            stores=tuple(role.stores),
        )

    placeholders = tuple(
        f"roles.{role.name}.omi" for role in roles.values() if role.omi and "REPLACE" in role.omi
    )
    return StackSettings(platform, environment, region, roles, placeholders)


def as_count(value: Any, key: str) -> int:
    # Pulumi passes structured config through JSON, so a count may arrive as 3.0.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 0:
        raise SettingsError(f"config key {key!r} must be a whole number >= 0, not {value!r}")
    return int(value)


# Names and tags.


def resource_name(role: str, index: int | None = None) -> str:
    """Return ``ct-<role>`` or ``ct-<role>-<index>`` (index counted from 1), the name of a role's resource."""
    return f"ct-{role}" if index is None else f"ct-{role}-{index}"


def role_tags(settings: StackSettings, role: RoleSettings) -> dict[str, str]:
    """Return the tags every resource of ``role`` carries: role, service, environment and system."""
    return {
        "role": role.name,
        "service": "+".join(role.services) if role.services else "none",
        "environment": settings.environment,
        "system": SYSTEM_TAG,
    }


def shared_tags(settings: StackSettings, role: str, service: str = "none") -> dict[str, str]:
    """Return the tags of a resource that serves no single production role (net, buckets)."""
    return {"role": role, "service": service, "environment": settings.environment, "system": SYSTEM_TAG}


# Flows derived from the description.


def service_roles(description: SystemDescription) -> dict[str, list[str]]:
    """Map each service to the roles that run it."""
    result: dict[str, list[str]] = {name: [] for name in description.services}
    for role_name, role in description.roles.items():
        for service in role.services:
            result[service].append(role_name)
    return result


def callers(description: SystemDescription, service: str) -> list[str]:
    """Return the services whose ``talks_to`` lists ``service``."""
    return sorted(name for name, other in description.services.items() if service in other.talks_to)


def inbound_flows(
    description: SystemDescription, role: str, management_sources: tuple[str, ...] = ()
) -> list[Flow]:
    """Return every port of ``role``'s services with the roles allowed to call it.

    The sources of a port are the roles running a service whose ``talks_to`` names the
    service. Management ports are also open to ``management_sources`` (the monitoring
    role scrapes them). A data store also accepts its own port from its own role, for
    replication between its members.
    """
    runners = service_roles(description)
    flows = []
    for service_name in description.roles[role].services:
        service = description.services[service_name]
        caller_roles = sorted({r for caller in callers(description, service_name) for r in runners[caller]})
        for port in service.ports:
            sources = set(caller_roles)
            if port.purpose == MANAGEMENT_PURPOSE:
                sources.update(management_sources)
            if description.roles[role].tier == "data":
                sources.add(role)
            flows.append(Flow(service_name, port.port, port.purpose, tuple(sorted(sources))))
    return flows


def management_port(description: SystemDescription, service: str) -> int | None:
    """Return the management port of ``service`` if the description lists one, else its first port."""
    ports = description.services[service].ports
    for port in ports:
        if port.purpose == MANAGEMENT_PURPOSE:
            return port.port
    return ports[0].port if ports else None


def public_routes_by_host(description: SystemDescription) -> dict[str, list[Route]]:
    """Group the public routes by host name, in description order."""
    hosts: dict[str, list[Route]] = {}
    for route in description.routes:
        hosts.setdefault(route.host, []).append(route)
    return hosts


def public_services(description: SystemDescription) -> list[str]:
    """Return the services that public routes reach, in description order."""
    seen: list[str] = []
    for route in description.routes:
        if route.service not in seen:
            seen.append(route.service)
    return seen


def tier_subnets(ip_range: str, tiers: tuple[str, ...], prefix: int) -> dict[str, str]:
    """Split ``ip_range`` into one ``/prefix`` subnet per tier, in order; raise SettingsError if too small."""
    try:
        network = ipaddress.IPv4Network(ip_range)
    except ValueError as error:
        raise SettingsError(f"config key 'netIpRange' is not an IPv4 network: {error}") from None
    if prefix < network.prefixlen:
        raise SettingsError(f"subnet prefix /{prefix} is larger than the net {ip_range}")
    subnets = list(network.subnets(new_prefix=prefix))
    if len(subnets) < len(tiers):
        raise SettingsError(
            f"config key 'netIpRange' {ip_range} holds {len(subnets)} /{prefix} subnets but "
            f"{len(tiers)} are needed; use a larger range"
        )
    return {tier: str(subnet) for tier, subnet in zip(tiers, subnets)}
