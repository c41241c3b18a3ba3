"""Run a pulumi-policy pack offline against an offline plan, playing the engine's part.

The engine starts a Python pack as a program that serves the Analyzer gRPC service on a
loopback port and prints that port on its first line of output (pulumi-policy 1.21 binds
127.0.0.1:0). The harness does the same, then calls GetAnalyzerInfo, Configure, Analyze once
per resource and AnalyzeStack once, and collects the diagnostics.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tacops.foundation.errors import TacopsError
from tacops.foundation.i18n import _
from tacops.infra.plan import SECRET_MASK, UNKNOWN_MASK, Plan, PlannedResource

log = logging.getLogger(__name__)

_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
STARTUP_TIMEOUT_SECONDS = 60.0
CALL_TIMEOUT_SECONDS = 60.0


class PolicyHarnessError(TacopsError):
    """The policy pack did not start or did not answer as an analyzer must."""


@dataclass(frozen=True)
class PolicyDiagnostic:
    policy: str
    urn: str
    message: str
    enforcement: str

    def __str__(self) -> str:
        return f"{self.enforcement} {self.policy}: {self.message}"


@dataclass
class PolicyReport:
    pack: str
    policies: list[str]
    diagnostics: list[PolicyDiagnostic]

    @property
    def mandatory_violations(self) -> list[PolicyDiagnostic]:
        return [item for item in self.diagnostics if item.enforcement == "mandatory"]

    def for_policy(self, name: str) -> list[PolicyDiagnostic]:
        return [item for item in self.diagnostics if item.policy == name]


def _wire(value: Any) -> Any:
    """Turn plan values back into wire values: masked secrets become secret-wrapped again."""
    if value == SECRET_MASK:
        return {_SIG_KEY: _SECRET_SIG, "value": SECRET_MASK}
    if value == UNKNOWN_MASK:
        return _UNKNOWN
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_wire(item) for item in value]
    return value


def _struct(values: dict[str, Any]):
    from google.protobuf import struct_pb2

    struct = struct_pb2.Struct()
    struct.update(_wire(values))
    return struct


def _default_provider_inputs(plan_config: dict[str, Any], package: str) -> dict[str, Any]:
    """Inputs of a default provider: the stack's "<package>:<key>" configuration, as the engine uses it."""
    inputs = {}
    for key, value in plan_config.items():
        prefix, _sep, name = key.partition(":")
        if prefix == package and name:
            inputs[name] = value
    return inputs


class _Requests:
    """Build analyzer requests from plan resources."""

    def __init__(self, plan: Plan, stack_config: dict[str, Any]) -> None:
        from pulumi.runtime.proto import analyzer_pb2

        self.pb = analyzer_pb2
        self.plan = plan
        self.by_urn = plan.by_urn()
        self.stack_config = stack_config

    def options(self, resource: PlannedResource):
        options = resource.options
        message = self.pb.AnalyzerResourceOptions(
            protect=bool(options.get("protect")),
            ignoreChanges=options.get("ignoreChanges", []),
            additionalSecretOutputs=options.get("additionalSecretOutputs", []),
            aliases=[alias for alias in options.get("aliases", []) if alias.startswith("urn:")],
            parent=resource.parent,
        )
        if "deleteBeforeReplace" in options:
            message.deleteBeforeReplace = bool(options["deleteBeforeReplace"])
            message.deleteBeforeReplaceDefined = True
        return message

    def provider(self, resource: PlannedResource):
        if not resource.provider:
            return None
        explicit = self.by_urn.get(resource.provider)
        if explicit is not None:
            inputs = explicit.inputs
            name = explicit.name
        else:
            name = resource.provider.rsplit("::", 1)[-1]
            inputs = _default_provider_inputs(self.stack_config, resource.type.split(":", 1)[0])
        provider_type = resource.provider.split("::")[2]
        return self.pb.AnalyzerProviderResource(type=provider_type, urn=resource.provider, name=name,
                                                properties=_struct(inputs))

    def analyze(self, resource: PlannedResource):
        request = self.pb.AnalyzeRequest(type=resource.type, urn=resource.urn, name=resource.name,
                                         properties=_struct(resource.inputs), options=self.options(resource))
        provider = self.provider(resource)
        if provider is not None:
            request.provider.CopyFrom(provider)
        return request

    def stack_resource(self, resource: PlannedResource):
        message = self.pb.AnalyzerResource(type=resource.type, urn=resource.urn, name=resource.name,
                                           properties=_struct(resource.inputs), options=self.options(resource),
                                           parent=resource.parent,
                                           dependencies=resource.options.get("dependsOn", []))
        provider = self.provider(resource)
        if provider is not None:
            message.provider.CopyFrom(provider)
        return message


def _pack_environment(plan: Plan, stack_config: dict[str, Any], secret_keys: list[str]) -> dict[str, str]:
    """Environment the engine gives a pack: project, stack, preview flag and stack configuration."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    as_text = {key: value if isinstance(value, str) else json.dumps(value) for key, value in stack_config.items()}
    environment.update({
        "PULUMI_PROJECT": plan.project,
        "PULUMI_STACK": plan.stack,
        "PULUMI_DRY_RUN": "true",
        "PULUMI_CONFIG": json.dumps(as_text),
        "PULUMI_CONFIG_SECRET_KEYS": json.dumps(sorted(secret_keys)),
        "PYTHONUNBUFFERED": "1",
    })
    return environment


def _read_port(process: subprocess.Popen, pack_dir: Path) -> int:
    """Wait for the pack's first output line, its port; raise with its stderr if it fails first."""
    result: dict[str, str] = {}

    def read_first_line() -> None:
        assert process.stdout is not None
        result["line"] = process.stdout.readline()

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(STARTUP_TIMEOUT_SECONDS)
    line = result.get("line", "").strip()
    if line.isdigit():
        return int(line)
    process.kill()
    _stdout, stderr = process.communicate(timeout=10)
    raise PolicyHarnessError(
        _("The policy pack in {path} did not print its port within {seconds} s: {output}").format(
            path=pack_dir, seconds=int(STARTUP_TIMEOUT_SECONDS), output=(line or stderr or "").strip()[-2000:]),
        hint=_("run the pack by hand with python __main__.py to see its error"))


def run_policy_pack(plan: Plan, pack_dir: Path, *, stack_config: dict[str, Any] | None = None,
                    secret_keys: list[str] | None = None, policy_config: dict[str, dict[str, Any]] | None = None,
                    python: str = sys.executable) -> PolicyReport:
    """Start the pack, send it every resource of ``plan``, stop it, and return its diagnostics.

    ``policy_config`` maps a policy name to its configuration, as ``--policy-pack-config`` does.
    """
    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

    pack_dir = Path(pack_dir).resolve()
    if not (pack_dir / "__main__.py").is_file():
        raise PolicyHarnessError(_("No policy pack in {path}: __main__.py is missing.").format(path=pack_dir))
    stack_config = stack_config or {}
    requests = _Requests(plan, stack_config)

    process = subprocess.Popen([python, "-u", str(pack_dir / "__main__.py")], cwd=pack_dir,
                               env=_pack_environment(plan, stack_config, secret_keys or []),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = _read_port(process, pack_dir)
        log.debug("policy pack %s serves on 127.0.0.1:%d (pid %d)", pack_dir, port, process.pid)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=STARTUP_TIMEOUT_SECONDS)
            analyzer = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=CALL_TIMEOUT_SECONDS)
            enforcement = {policy.name: policy.enforcementLevel for policy in info.policies}

            configure = analyzer_pb2.ConfigureAnalyzerRequest()
            for policy in info.policies:
                entry = configure.policyConfig[policy.name]
                entry.enforcementLevel = enforcement[policy.name]
                entry.properties.update((policy_config or {}).get(policy.name, {}))
            analyzer.Configure(configure, timeout=CALL_TIMEOUT_SECONDS)

            diagnostics = []
            for resource in plan.resources:
                response = analyzer.Analyze(requests.analyze(resource), timeout=CALL_TIMEOUT_SECONDS)
                diagnostics += response.diagnostics
            stack_request = analyzer_pb2.AnalyzeStackRequest(
                resources=[requests.stack_resource(resource) for resource in plan.resources])
            diagnostics += analyzer.AnalyzeStack(stack_request, timeout=CALL_TIMEOUT_SECONDS).diagnostics
    except grpc.RpcError as error:
        raise PolicyHarnessError(_("The policy pack in {path} failed a call: {error}").format(
            path=pack_dir, error=f"{error.code()}: {error.details()}")) from error
    finally:
        process.kill()
        process.communicate(timeout=10)

    level_names = {value: name.lower() for name, value in analyzer_pb2.EnforcementLevel.items()}
    report = PolicyReport(
        pack=info.name, policies=[policy.name for policy in info.policies],
        diagnostics=[PolicyDiagnostic(policy=item.policyName, urn=item.urn, message=item.message,
                                      enforcement=level_names.get(item.enforcementLevel, "unknown"))
                     for item in diagnostics])
    log.info("policy pack %s: %d diagnostics over %d resources", info.name, len(report.diagnostics),
             len(plan.resources))
    return report
