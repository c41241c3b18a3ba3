"""Offline plan: run a Pulumi program under the SDK's mocks and record every registration.

No provider is called and no real ID exists: a plan shows what the program declares (URNs,
inputs with secrets masked, options), not what a provider would change. The diff against a
committed snapshot lives in ``plan_diff``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from tacops.foundation.errors import InvalidInputError, TacopsError
from tacops.foundation.i18n import _

log = logging.getLogger(__name__)

SECRET_MASK = "[secret]"
UNKNOWN_MASK = "[unknown]"
STACK_TYPE = "pulumi:pulumi:Stack"
PLAN_FORMAT = 1

# Signatures of the Pulumi wire format (sdk/python/lib/pulumi/runtime/rpc.py).
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_ASSET_SIG = "c44067f5952c0a294b673a41bacd8c17"
_ARCHIVE_SIG = "0def7320c3a5731c473e5ecbe6d01bc7"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

Program = Callable[[], Any]


class DuplicateURNError(InvalidInputError):
    """Two registrations of one program produced the same URN; the engine would reject the update."""

    def __init__(self, urns: list[str]) -> None:
        super().__init__(_("The program declares the same resource twice: {urns}").format(urns=", ".join(urns)),
                         hint=_("give each resource a unique name within its parent and type"))
        self.urns = urns


class ProgramError(TacopsError):
    """The Pulumi program raised while it ran under mocks."""


@dataclass(frozen=True)
class PlannedResource:
    urn: str
    type: str
    name: str
    parent: str
    provider: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    project: str
    stack: str
    resources: list[PlannedResource]

    def to_dict(self) -> dict[str, Any]:
        return {"format": PLAN_FORMAT, "project": self.project, "stack": self.stack,
                "resources": [asdict(resource) for resource in self.resources]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plan":
        if data.get("format") != PLAN_FORMAT:
            raise InvalidInputError(_("Unsupported plan format {found!r}; expected {expected}.").format(
                found=data.get("format"), expected=PLAN_FORMAT),
                hint=_("rewrite the snapshot with tacops preview --update"))
        resources = [PlannedResource(**item) for item in data["resources"]]
        return cls(project=data["project"], stack=data["stack"], resources=resources)

    def by_urn(self) -> dict[str, PlannedResource]:
        return {resource.urn: resource for resource in self.resources}

    def stack_urn(self) -> str:
        return engine_urn(self.stack, self.project, "", STACK_TYPE, f"{self.project}-{self.stack}")


def save_plan(plan: Plan, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(plan.to_json(), encoding="utf-8")
    temporary.replace(path)


def load_plan(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InvalidInputError(_("The plan snapshot {path} is not valid JSON: {error}").format(
            path=path, error=error), hint=_("rewrite the snapshot with tacops preview --update")) from error
    return Plan.from_dict(data)


def engine_urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    """Build a URN as the engine does: the parent's whole type chain, the root stack left out.

    The SDK's stock mock keeps only the parent's last type, so a grandchild's URN differs from
    the one ``pulumi preview`` shows; the engine (``resource.NewURN``) keeps the chain.
    """
    qualified = type_
    if parent_urn:
        parent_type = parent_urn.split("::")[2]
        if parent_type != STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _plain(value: Any) -> Any:
    """Turn a wire value (from ``MessageToDict``) into plan JSON with secrets and unknowns masked."""
    if isinstance(value, float) and value.is_integer():
        # Protobuf carries every number as a double; integral values are ints in the program.
        return int(value)
    if value == _UNKNOWN:
        return UNKNOWN_MASK
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        signature = value.get(_SIG_KEY)
        if signature == _SECRET_SIG:
            return SECRET_MASK
        if signature == _RESOURCE_SIG:
            return value.get("urn", "")
        if signature == _OUTPUT_SIG:
            if value.get("secret"):
                return SECRET_MASK
            return _plain(value["value"]) if "value" in value else UNKNOWN_MASK
        if signature in (_ASSET_SIG, _ARCHIVE_SIG):
            return {key: _plain(item) for key, item in value.items() if key != _SIG_KEY}
        return {key: _plain(item) for key, item in sorted(value.items()) if not key.startswith("__")}
    return value


def _provider_urn(reference: str, type_: str, version: str, stack: str, project: str) -> str:
    if reference:
        # A provider reference is "<urn>::<id>"; the URN alone names the provider across runs.
        return reference.rsplit("::", 1)[0]
    package = type_.split(":", 1)[0]
    name = "default_" + version.replace(".", "_") if version else "default"
    return f"urn:pulumi:{stack}::{project}::pulumi:providers:{package}::{name}"


def _alias_text(alias: Any) -> str:
    if alias.urn:
        return alias.urn
    spec = alias.spec
    parts = [f"{key}={getattr(spec, key)}" for key in ("name", "type", "stack", "project", "parentUrn")
             if getattr(spec, key)]
    if spec.noParent:
        parts.append("noParent")
    return "{" + ", ".join(parts) + "}"


def _options(request: Any) -> dict[str, Any]:
    """Keep the options that differ from their defaults, under their ResourceOptions names."""
    options: dict[str, Any] = {}
    if request.protect:
        options["protect"] = True
    if request.deleteBeforeReplaceDefined:
        options["deleteBeforeReplace"] = request.deleteBeforeReplace
    if request.retainOnDelete:
        options["retainOnDelete"] = True
    for name in ("ignoreChanges", "replaceOnChanges", "additionalSecretOutputs"):
        values = sorted(getattr(request, name))
        if values:
            options[name] = values

    # The request lists every dependency; the ones no input carries came from dependsOn.
    implicit = {urn for deps in request.propertyDependencies.values() for urn in deps.urns}
    explicit = sorted(set(request.dependencies) - implicit)
    if explicit:
        options["dependsOn"] = explicit

    aliases = [_alias_text(alias) for alias in request.aliases] + list(request.aliasURNs)
    if aliases:
        options["aliases"] = sorted(aliases)
    if request.deletedWith:
        options["deletedWith"] = request.deletedWith
    timeouts = request.customTimeouts
    if timeouts.create or timeouts.update or timeouts.delete:
        options["customTimeouts"] = {"create": timeouts.create, "update": timeouts.update,
                                     "delete": timeouts.delete}
    return options


def _make_recording_monitor_class():
    # Imported here so that tacops without the infra extra still imports this module.
    from google.protobuf import json_format
    from pulumi.runtime.mocks import MockMonitor

    class RecordingMonitor(MockMonitor):
        """A MockMonitor that records every registration as a ``PlannedResource``.

        URNs follow the engine, not the stock mock; a second registration of one URN is
        recorded as a duplicate and fails the plan once the program has finished.
        """

        def __init__(self, mocks: Any, *, stack: str, project: str) -> None:
            super().__init__(mocks)
            self.stack = stack
            self.project = project
            self.recorded: dict[str, PlannedResource] = {}
            self.duplicates: list[str] = []
            self._claimed: set[str] = set()
            self._lock = threading.Lock()

        def make_urn(self, parent: str, type_: str, name: str) -> str:
            return engine_urn(self.stack, self.project, parent, type_, name)

        def RegisterResource(self, request):  # noqa: N802 - gRPC method name
            if request.type != STACK_TYPE:
                self._record(request)
            return super().RegisterResource(request)

        def ReadResource(self, request):  # noqa: N802 - gRPC method name
            # A read (Resource.get) declares nothing, but its URN still takes a slot.
            self._check_unique(self.make_urn(request.parent, request.type, request.name))
            return super().ReadResource(request)

        def _check_unique(self, urn: str) -> bool:
            # Registrations arrive on several threads, so the URN is claimed under the lock.
            with self._lock:
                if urn in self._claimed:
                    self.duplicates.append(urn)
                    return False
                self._claimed.add(urn)
            return True

        def _record(self, request: Any) -> None:
            urn = self.make_urn(request.parent, request.type, request.name)
            if not self._check_unique(urn):
                return
            wire = json_format.MessageToDict(request.object) if request.HasField("object") else {}
            inputs = {key: _plain(value) for key, value in sorted(wire.items()) if not key.startswith("__")}
            for key in request.additionalSecretOutputs:
                if key in inputs:
                    inputs[key] = SECRET_MASK
            is_provider = request.type.startswith("pulumi:providers:")
            provider = ""
            if request.custom and not is_provider:
                provider = _provider_urn(request.provider, request.type, request.version, self.stack, self.project)
            resource = PlannedResource(urn=urn, type=request.type, name=request.name, parent=request.parent,
                                       provider=provider, custom=bool(request.custom), inputs=inputs,
                                       options=_options(request))
            with self._lock:
                self.recorded[urn] = resource

    return RecordingMonitor


class _EchoMocks:
    """Mocks whose resources return their inputs as outputs and whose invokes return nothing."""

    def new_resource(self, args):
        return f"{args.name}_id", dict(args.inputs)

    def call(self, args):
        return {}, []


def set_stack_config(config: dict[str, Any], secret_keys: Iterable[str] = ()) -> None:
    """Give the program its stack configuration as ``pulumi.Config`` reads it ("project:key" = text)."""
    import pulumi.runtime

    as_text = {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    pulumi.runtime.set_all_config(as_text, list(secret_keys))


def run_plan(program: Program, *, project: str, stack: str, config: dict[str, Any] | None = None,
             secret_keys: Iterable[str] = (), mocks: Any = None) -> Plan:
    """Run ``program`` under Pulumi mocks in preview mode and return what it registered.

    ``config`` maps "project:key" (or "package:key") to values, as in ``Pulumi.<stack>.yaml``.
    Raises ``DuplicateURNError`` when two registrations share a URN and ``ProgramError`` when
    the program fails.
    """
    import pulumi.runtime
    from pulumi.runtime.mocks import Mocks
    from pulumi.runtime.settings import ROOT, SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    if mocks is None:
        mocks = type("EchoMocks", (_EchoMocks, Mocks), {})()
    monitor = _make_recording_monitor_class()(mocks, stack=stack, project=project)
    set_stack_config(config or {}, secret_keys)
    # set_mocks creates a root Stack only when none exists, so a second plan in one process
    # would parent its resources to the previous stack's root. Drop the old root first.
    ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=True, monitor=monitor)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()

    log.debug("running program %s for stack %s under mocks", getattr(program, "__name__", program), stack)
    try:
        _sync_await(run_pulumi_func(program))
    except TacopsError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure of user code is reported with its type
        raise ProgramError(_("The Pulumi program of stack {stack} failed under mocks: {error}").format(
            stack=stack, error=f"{type(error).__name__}: {error}"),
            hint=_("run with -vv for the traceback")) from error

    if monitor.duplicates:
        raise DuplicateURNError(sorted(set(monitor.duplicates)))
    resources = sorted(monitor.recorded.values(), key=lambda resource: resource.urn)
    log.info("planned %d resources for stack %s", len(resources), stack)
    return Plan(project=project, stack=stack, resources=resources)
