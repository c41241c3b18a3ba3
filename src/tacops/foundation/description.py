"""The one description of the CT system, validated on load.

Every layer reads a :class:`SystemDescription`: the lab builds its hosts from the lab
profile, the backup engine selects trees and databases from it, the identity checks
take their ignore list from it and the Pulumi programs read the production roles.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tacops.foundation.errors import DescriptionError
from tacops.foundation.i18n import _

SCHEMA_VERSION = 1
StateKind = Literal["postgresql", "mongodb", "hsm", "data-directory", "elasticsearch"]
HttpMethod = Literal["GET", "POST", "PUT", "DELETE"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Port(_Strict):
    port: int = Field(ge=1, le=65535)
    purpose: str


class StateItem(_Strict):
    """A piece of state that a service or a host owns and a backup must bring back."""

    kind: StateKind
    name: str
    path: str | None = None


class Service(_Strict):
    summary: str
    ports: list[Port] = []
    state: list[StateItem] = []
    talks_to: list[str] = []


class Role(_Strict):
    services: list[str]
    count: int = Field(ge=0)
    vm_type: str
    tier: Literal["front", "app", "data", "admin", "backup"]
    stores: list[StateKind] = []


class Route(_Strict):
    """A public route the mobile apps call; it must respond the same way on any platform."""

    name: str
    host: str
    method: HttpMethod
    path: str = Field(pattern=r"^/")
    service: str
    statuses: list[int]


class IgnoredField(_Strict):
    route: str
    field: str
    reason: str


class IdentityIgnore(_Strict):
    paths: list[str]
    path_reasons: dict[str, str] = {}
    fields: list[IgnoredField] = []
    journal: str
    units: list[str] = []


class Identity(_Strict):
    ignore: IdentityIgnore
    system_trees: list[str]

    def path_is_ignored(self, path: str) -> bool:
        """Return True when ``path`` is, or lies under, an ignored path or pattern."""
        for pattern in self.ignore.paths:
            if path == pattern or path.startswith(pattern.rstrip("/") + "/"):
                return True
            if any(ch in pattern for ch in "*?[") and fnmatch.fnmatch(path, pattern):
                return True
        return False


class OsImage(_Strict):
    exclude: list[str] = []


class LabNetwork(_Strict):
    bridge: str = Field(pattern=r"^[a-z][a-z0-9-]{1,14}$")
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address

    @model_validator(mode="after")
    def _gateway_in_subnet(self) -> "LabNetwork":
        if self.gateway not in self.subnet:
            raise ValueError(f"gateway {self.gateway} is not in subnet {self.subnet}")
        if not self.subnet.is_private:
            raise ValueError(f"subnet {self.subnet} is not a private range; the lab never uses public addresses")
        return self


class LabHost(_Strict):
    """A host of the lab profile: a CT host (any role but ``backup``) or a backup host."""

    role: str
    address: ipaddress.IPv4Address
    units: list[str] = []
    ports: list[int] = []
    routes: list[str] = []
    trees: list[str] = []
    state: list[StateItem] = []

    @property
    def is_backup_host(self) -> bool:
        return self.role == "backup"

    def databases(self) -> list[str]:
        return [item.name for item in self.state if item.kind == "postgresql"]


class Omission(_Strict):
    what: str
    reason: str


class Profile(_Strict):
    summary: str
    roles: Literal["all"] | list[str] | None = None
    omitted: list[Omission] = []
    network: LabNetwork | None = None
    base_packages: list[str] = []
    hosts: dict[str, LabHost] = {}

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, hosts: dict[str, LabHost]) -> dict[str, LabHost]:
        for name in hosts:
            if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", name):
                raise ValueError(
                    f"host name {name!r} is invalid: use at most 31 lower-case letters, digits or dashes, "
                    "starting with a letter (it is a host name and names a network namespace)"
                )
        return hosts


class SystemDescription(_Strict):
    schema_version: int
    system: str
    services: dict[str, Service]
    roles: dict[str, Role]
    routes: list[Route]
    os_image: OsImage = OsImage()
    identity: Identity
    profiles: dict[str, Profile]

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, version: int) -> int:
        if version != SCHEMA_VERSION:
            raise ValueError(f"schema_version {version} is not supported; expected {SCHEMA_VERSION}")
        return version

    @model_validator(mode="after")
    def _cross_references(self) -> "SystemDescription":
        errors: list[str] = []
        for role_name, role in self.roles.items():
            for service in role.services:
                if service not in self.services:
                    errors.append(f"roles.{role_name}.services: unknown service {service!r}")
        for service_name, service in self.services.items():
            for peer in service.talks_to:
                if peer not in self.services:
                    errors.append(f"services.{service_name}.talks_to: unknown service {peer!r}")
        route_names = [route.name for route in self.routes]
        for index, route in enumerate(self.routes):
            if route.service not in self.services:
                errors.append(f"routes.{index}.service: unknown service {route.service!r}")
            if route_names.count(route.name) > 1:
                errors.append(f"routes.{index}.name: duplicate route name {route.name!r}")
        for profile_name, profile in self.profiles.items():
            if isinstance(profile.roles, list):
                for role in profile.roles:
                    if role not in self.roles:
                        errors.append(f"profiles.{profile_name}.roles: unknown role {role!r}")
            addresses: dict[ipaddress.IPv4Address, str] = {}
            for host_name, host in profile.hosts.items():
                where = f"profiles.{profile_name}.hosts.{host_name}"
                if host.role != "backup" and host.role not in self.roles:
                    errors.append(f"{where}.role: unknown role {host.role!r}; expected one of {sorted(self.roles)}")
                for route in host.routes:
                    if route not in route_names:
                        errors.append(f"{where}.routes: unknown route {route!r}")
                if host.address in addresses:
                    errors.append(f"{where}.address: {host.address} is already used by {addresses[host.address]}")
                addresses[host.address] = host_name
                if profile.network is not None:
                    if host.address not in profile.network.subnet:
                        errors.append(f"{where}.address: {host.address} is not in subnet {profile.network.subnet}")
                    if host.address == profile.network.gateway:
                        errors.append(f"{where}.address: {host.address} is the gateway of the lab bridge")
        if errors:
            raise ValueError("; ".join(errors))
        return self

    # Queries used by every layer.

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            raise DescriptionError(
                _("Profile {name!r} not found in the description; expected one of: {known}.").format(
                    name=name, known=", ".join(sorted(self.profiles))
                )
            ) from None

    def lab_hosts(self, profile: str = "lab") -> dict[str, LabHost]:
        return dict(self.profile(profile).hosts)

    def ct_hosts(self, profile: str = "lab") -> dict[str, LabHost]:
        return {name: host for name, host in self.profile(profile).hosts.items() if not host.is_backup_host}

    def backup_hosts(self, profile: str = "lab") -> dict[str, LabHost]:
        return {name: host for name, host in self.profile(profile).hosts.items() if host.is_backup_host}

    def route(self, name: str) -> Route:
        for route in self.routes:
            if route.name == name:
                return route
        raise DescriptionError(_("Route {name!r} not found in the description.").format(name=name))

    def production_vm_count(self) -> int:
        return sum(role.count for role in self.roles.values())

    def ignore_list(self) -> list[str]:
        """Return the human-readable list of what "identical" ignores, for reports."""
        ignore = self.identity.ignore
        items = []
        for path in ignore.paths:
            reason = ignore.path_reasons.get(path)
            items.append(f"{path}" + (f" ({reason})" if reason else ""))
        for item in ignore.fields:
            items.append(f"route {item.route}: field {item.field} ({item.reason})")
        items.append(ignore.journal)
        for unit in ignore.units:
            items.append(f"unit {unit}")
        return items


def default_description_path() -> Path:
    return Path(str(resources.files("tacops") / "data" / "ct-system.yaml"))


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = [_("Description {path} is invalid:").format(path=path)]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = _("unknown key; remove it or check its spelling")
        elif item["type"] == "missing":
            message = _("missing key")
        elif item["type"] == "literal_error":
            message = _("invalid value {value!r}; {expected}").format(value=item.get("input"), expected=item["msg"])
        else:
            message = f"{message} (value: {item.get('input')!r})" if not isinstance(item.get("input"), dict) else message
        lines.append(f"  - {key}: {message}")
    return "\n".join(lines)


def load_description(path: str | Path | None = None) -> SystemDescription:
    """Load and validate the description; raise DescriptionError naming each bad key."""
    path = Path(path) if path is not None else default_description_path()
    try:
        with path.open(encoding="utf-8") as stream:
            raw = yaml.safe_load(stream)
    except FileNotFoundError:
        raise DescriptionError(
            _("Description file {path} not found; pass an existing file with --description.").format(path=path)
        ) from None
    except yaml.YAMLError as error:
        raise DescriptionError(
            _("Description {path} is not valid YAML: {error}").format(path=path, error=error)
        ) from None
    if not isinstance(raw, dict):
        raise DescriptionError(_("Description {path} must be a mapping at its top level.").format(path=path))
    try:
        return SystemDescription.model_validate(raw)
    except ValidationError as error:
        raise DescriptionError(_format_validation_error(path, error)) from None
