"""``tacops preview``: the real ``pulumi preview --diff`` when the CLI exists, else the offline plan.

The offline plan runs the stack's program under Pulumi mocks and diffs it against the snapshot
committed under ``infra/plans/<stack>.json``. It proves what the program declares, not what a
provider would do: no provider diff, no real IDs, no refresh.
"""

from __future__ import annotations

import importlib
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from tacops.foundation.errors import ExitCode, InvalidInputError, TacopsError
from tacops.foundation.i18n import _
from tacops.infra.plan import Plan, load_plan, run_plan, save_plan
from tacops.infra.plan_diff import PlanDiff, diff_plans

log = logging.getLogger(__name__)

# Stack name -> "module:function" of the program that declares the stack's resources.
STACK_PROGRAMS = {
    "outscale": "tacops.infra.outscale:build",
    "flexible-engine": "tacops.infra.flexible_engine:build",
}
OFFLINE_LABEL = "OFFLINE PLAN (Pulumi mocks; no provider was called)"
# Stand-in for a "secure:" configuration value, which only the operators' backend can decrypt.
OFFLINE_SECRET_PLACEHOLDER = "offline-placeholder"
# "Resources:" block of the pulumi CLI output, e.g. "    + 3 to create" or "    ~ 1 to update".
_CHANGE_LINE = re.compile(r"^\s*[-+~]*\s*(\d+) to (create|update|delete|replace)\b")


@dataclass
class StackConfig:
    project: str
    stack: str
    root: Path
    config: dict[str, Any]
    secret_keys: list[str]

    @property
    def snapshot_path(self) -> Path:
        return self.root / "infra" / "plans" / f"{self.stack}.json"


@dataclass
class OfflinePreview:
    plan: Plan
    diff: PlanDiff
    snapshot_path: Path
    snapshot_found: bool
    updated: bool

    @property
    def exit_code(self) -> ExitCode:
        if self.updated or not self.diff.has_changes:
            return ExitCode.OK
        return ExitCode.DIFFERENCES


def find_project_root(start: Path) -> Path:
    """Return the nearest directory at or above ``start`` holding ``Pulumi.yaml``."""
    for directory in (start, *start.parents):
        if (directory / "Pulumi.yaml").is_file():
            return directory
    raise InvalidInputError(_("No Pulumi.yaml found in {path} or above it.").format(path=start),
                            hint=_("run tacops preview from the repository that holds the Pulumi project"))


def _check_stack(stack: str) -> None:
    if stack not in STACK_PROGRAMS:
        raise InvalidInputError(_("Unknown stack {stack!r}; valid stacks: {stacks}.").format(
            stack=stack, stacks=", ".join(sorted(STACK_PROGRAMS))))


def load_stack_config(root: Path, stack: str) -> StackConfig:
    """Read the project name and the stack's configuration; "secure:" values become placeholders."""
    _check_stack(stack)
    project_file = yaml.safe_load((root / "Pulumi.yaml").read_text(encoding="utf-8")) or {}
    project = project_file.get("name")
    if not project:
        raise InvalidInputError(_("{path} has no project name.").format(path=root / "Pulumi.yaml"))

    stack_path = root / f"Pulumi.{stack}.yaml"
    stack_file = yaml.safe_load(stack_path.read_text(encoding="utf-8")) if stack_path.is_file() else None
    raw = (stack_file or {}).get("config") or {}
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full_key] = OFFLINE_SECRET_PLACEHOLDER
            secret_keys.append(full_key)
        else:
            config[full_key] = value
    return StackConfig(project=project, stack=stack, root=root, config=config, secret_keys=secret_keys)


def load_program(stack: str) -> Callable[[], Any]:
    _check_stack(stack)
    module_name, function_name = STACK_PROGRAMS[stack].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise TacopsError(_("The program of stack {stack} ({module}) cannot be imported: {error}").format(
            stack=stack, module=module_name, error=error),
            hint=_("install tacops with the infra extra: pip install 'tacops[infra]'")) from error
    return getattr(module, function_name)


def offline_preview(stack_config: StackConfig, *, update: bool = False,
                    program: Callable[[], Any] | None = None) -> OfflinePreview:
    """Plan the stack under mocks, diff it against the snapshot, and rewrite the snapshot on ``update``."""
    program = program or load_program(stack_config.stack)
    plan = run_plan(program, project=stack_config.project, stack=stack_config.stack,
                    config=stack_config.config, secret_keys=stack_config.secret_keys)

    snapshot_path = stack_config.snapshot_path
    snapshot_found = snapshot_path.is_file()
    previous = load_plan(snapshot_path) if snapshot_found else Plan(plan.project, plan.stack, [])
    diff = diff_plans(previous, plan)

    if update:
        save_plan(plan, snapshot_path)
        log.info("snapshot %s rewritten (%d resources)", snapshot_path, len(plan.resources))
    return OfflinePreview(plan=plan, diff=diff, snapshot_path=snapshot_path, snapshot_found=snapshot_found,
                          updated=update)


def pulumi_cli() -> str | None:
    return shutil.which("pulumi")


def real_preview(pulumi: str, stack: str, root: Path, *, on_line: Callable[[str], None],
                 policy_pack: Path | None = None) -> ExitCode:
    """Run ``pulumi preview --diff`` and map its result to tacops exit codes.

    Pulumi exits 0 whether or not changes are proposed, so the "Resources:" summary it prints
    tells changes apart; any other exit code (a failed program, a mandatory policy violation)
    maps to ``ExitCode.UNEXPECTED``. Every line of output goes to ``on_line``.
    """
    _check_stack(stack)
    command = [pulumi, "preview", "--diff", "--non-interactive", "--suppress-progress", "--stack", stack]
    if policy_pack is not None:
        command += ["--policy-pack", str(policy_pack)]
    log.info("running %s in %s", " ".join(command), root)

    changes = 0
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            on_line(line.rstrip("\n"))
            match = _CHANGE_LINE.match(line)
            if match:
                changes += int(match.group(1))
        returncode = process.wait()

    if returncode != 0:
        log.warning("pulumi preview exited with %d", returncode)
        return ExitCode.UNEXPECTED
    return ExitCode.DIFFERENCES if changes else ExitCode.OK
