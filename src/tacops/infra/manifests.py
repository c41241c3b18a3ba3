"""Kubernetes manifests rendered from an offline plan and validated offline against the API schemas.

A ``kubernetes:<group>/<version>:<Kind>`` registration carries the object's fields as its inputs
(camelCase, as the API spells them), so the manifest is those inputs with apiVersion and kind.
Validation uses ``kubernetes-validate`` in strict mode: unknown fields fail, as they would on a
server with field validation set to Strict.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tacops.foundation.errors import InvalidInputError
from tacops.foundation.i18n import _
from tacops.infra.plan import SECRET_MASK, UNKNOWN_MASK, Plan, PlannedResource

log = logging.getLogger(__name__)

# CCE offered 1.28 to 1.31 when this was written; 1.29 is the middle of that range.
DEFAULT_KUBERNETES_VERSION = "1.29"
# Pulumi resource types under "kubernetes:" that are not API objects.
_NOT_API_GROUPS = {"yaml", "helm.sh", "kustomize"}
# Stand-in for masked Secret data: valid base64, so the schema's "byte" format still holds.
_MASKED_BASE64 = "W3NlY3JldF0="


@dataclass(frozen=True)
class Manifest:
    urn: str
    manifest: dict[str, Any]

    @property
    def file_name(self) -> str:
        kind = self.manifest["kind"].lower()
        namespace = self.manifest["metadata"].get("namespace", "")
        name = self.manifest["metadata"]["name"]
        return "_".join(part for part in (namespace, kind, name) if part) + ".yaml"


@dataclass(frozen=True)
class ValidationFailure:
    urn: str
    kind: str
    name: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.urn}: {self.field or '(root)'}: {self.message}"


def api_version_and_kind(type_token: str) -> tuple[str, str] | None:
    """Return the apiVersion and kind of a Pulumi Kubernetes type, or None for non-API types.

    ``kubernetes:core/v1:Service`` is ("v1", "Service"); ``kubernetes:apps/v1:Deployment`` is
    ("apps/v1", "Deployment").
    """
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group, version = parts[1].rsplit("/", 1)
    if group in _NOT_API_GROUPS or parts[2].endswith("List") or parts[2].endswith("Patch"):
        return None
    api_version = version if group == "core" else f"{group}/{version}"
    return api_version, parts[2]


def _unmask_secret_data(manifest: dict[str, Any]) -> None:
    if manifest.get("data") == SECRET_MASK:
        manifest["data"] = {"masked": _MASKED_BASE64}
    if manifest.get("stringData") == SECRET_MASK:
        manifest["stringData"] = {"masked": SECRET_MASK}


def render_manifest(resource: PlannedResource) -> Manifest | None:
    kinds = api_version_and_kind(resource.type)
    if kinds is None or not resource.custom:
        return None
    api_version, kind = kinds
    body = {key: value for key, value in resource.inputs.items() if key not in ("apiVersion", "kind")}
    manifest: dict[str, Any] = {"apiVersion": api_version, "kind": kind, **body}
    metadata = dict(manifest.get("metadata") or {})
    # NOTE: without metadata.name the engine auto-names the object "<name>-<random suffix>";
    # the manifest uses the resource name, so its name differs from the one the cluster gets.
    metadata.setdefault("name", resource.name)
    manifest["metadata"] = metadata
    if kind == "Secret":
        _unmask_secret_data(manifest)
    return Manifest(urn=resource.urn, manifest=manifest)


def render_manifests(plan: Plan) -> list[Manifest]:
    manifests = [render_manifest(resource) for resource in plan.resources]
    return [manifest for manifest in manifests if manifest is not None]


def _contains_unknown(value: Any) -> bool:
    if value == UNKNOWN_MASK:
        return True
    if isinstance(value, dict):
        return any(_contains_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(item) for item in value)
    return False


def validate_manifests(manifests: list[Manifest], version: str = DEFAULT_KUBERNETES_VERSION,
                       ) -> list[ValidationFailure]:
    """Validate every manifest in strict mode and return all failures, not only the first."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, VersionNotSupportedError

    failures: list[ValidationFailure] = []
    for item in manifests:
        manifest = item.manifest
        kind = manifest["kind"]
        name = manifest["metadata"]["name"]
        if _contains_unknown(manifest):
            log.warning("%s holds a value unknown at preview time; validated as recorded", item.urn)
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            failures.append(ValidationFailure(urn=item.urn, kind=kind, name=name, field=path,
                                              message=error.message))
        except SchemaNotFoundError:
            failures.append(ValidationFailure(
                urn=item.urn, kind=kind, name=name, field="apiVersion",
                message=_("no schema for {kind} {api_version} in Kubernetes {version}").format(
                    kind=kind, api_version=manifest["apiVersion"], version=version)))
        except VersionNotSupportedError as error:
            raise InvalidInputError(
                _("Kubernetes version {version} is not supported by the installed kubernetes-validate.").format(
                    version=version),
                hint=_("choose a version between 1.25 and the newest schema it ships")) from error
    return failures


def write_manifests(manifests: list[Manifest], directory: Path) -> list[Path]:
    """Write one YAML file per object into ``directory`` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for item in manifests:
        path = directory / item.file_name
        path.write_text(f"# {item.urn}\n" + yaml.safe_dump(item.manifest, sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths
