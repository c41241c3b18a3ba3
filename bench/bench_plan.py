"""Benchmark: the offline plan of the OUTSCALE program against the raw mock run, at 374 to 3,000 VMs.

Run from the repository root with the infra extra installed:

    /opt/tacops/venv/bin/python bench/bench_plan.py --output /tmp/plan.md   # then paste it into docs/benchmarks.md

Every measurement runs in a child process of its own, so that peak memory (getrusage
``ru_maxrss`` of the child, imports included) belongs to one run. Two modes run the same
program with the same stack configuration and the same echo mocks:

- ``recording``: ``tacops.infra.plan.run_plan``, the offline plan of ``tacops preview``
  (engine URNs, inputs with secrets masked, options, duplicate check);
- ``raw``: ``pulumi.runtime.set_mocks`` with the SDK's stock ``MockMonitor``, nothing recorded.

Sizes other than 374 scale every role's count from the production profile by the same
factor (the two backup hosts stay two) and put the rounding difference on the largest role.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZES = (374, 1000, 3000)
MODES = ("raw", "recording")
TARGET_SECONDS = {374: 3.0, 3000: 20.0}
TARGET_PEAK_MB = 500
TARGET_RATIO = 1.3
FIXED_ROLES = {"backup": 2}


def scaled_config(vms: int) -> tuple[dict[str, Any], list[str], str]:
    """Return the OUTSCALE stack configuration with role counts scaled to ``vms`` VMs in all."""
    from tacops.foundation.description import load_description
    from tacops.infra import common
    from tacops.infra.preview import load_stack_config

    stack_config = load_stack_config(ROOT, "outscale")
    config = copy.deepcopy(stack_config.config)
    roles_key = f"{stack_config.project}:roles"
    overrides = config.get(roles_key) or {}

    description = load_description()
    base = {role.name: role.count for role in common.read_stack_settings(
        description, "outscale", _DictConfig(config, stack_config.project)).roles.values()}
    total = sum(base.values())
    if vms != total:
        fixed = sum(FIXED_ROLES.get(name, 0) for name in base)
        factor = (vms - fixed) / (total - fixed)
        counts = {name: FIXED_ROLES.get(name, max(1, round(count * factor)) if count else 0)
                  for name, count in base.items()}
        largest = max(counts, key=counts.get)
        counts[largest] += vms - sum(counts.values())
        for name, count in counts.items():
            overrides.setdefault(name, {})["count"] = count
        config[roles_key] = overrides
    return config, stack_config.secret_keys, stack_config.project


class _DictConfig:
    """The part of ``pulumi.Config`` that ``common.read_stack_settings`` reads, over a plain dict."""

    def __init__(self, config: dict[str, Any], project: str) -> None:
        self.config = config
        self.project = project

    def get(self, key: str) -> Any:
        value = self.config.get(f"{self.project}:{key}")
        return value if value is None or isinstance(value, str) else json.dumps(value)

    def get_object(self, key: str) -> Any:
        return self.config.get(f"{self.project}:{key}")


def run_child(mode: str, vms: int) -> dict[str, Any]:
    """Plan the OUTSCALE program once in this process; return time, resource count and peak memory."""
    import resource

    config, secret_keys, project = scaled_config(vms)
    from tacops.infra import outscale
    from tacops.infra.plan import run_plan

    started = time.perf_counter()
    if mode == "recording":
        plan = run_plan(outscale.build, project=project, stack="outscale", config=config, secret_keys=secret_keys)
        resources = len(plan.resources)
        vm_count = sum(1 for item in plan.resources if item.type == "outscale:index/vm:Vm")
    else:
        resources, vm_count = _raw_run(outscale.build, project, config, secret_keys)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "vms": vm_count, "resources": resources, "seconds": seconds, "peak_mb": peak_kib / 1024}


def _raw_run(program, project: str, config: dict[str, Any], secret_keys: list[str]) -> tuple[int, int]:
    """Run ``program`` under the stock MockMonitor, driven as ``run_plan`` drives it, and count registrations."""
    import pulumi.runtime
    from pulumi.runtime.settings import ROOT as ROOT_RESOURCE
    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from tacops.infra.plan import set_stack_config

    class EchoMocks(pulumi.runtime.Mocks):
        # Behave as the offline plan's mocks do: inputs back as outputs, empty invokes.
        registered: list[str] = []

        def new_resource(self, args):
            self.registered.append(args.typ)
            return f"{args.name}_id", dict(args.inputs)

        def call(self, args):
            return {}, []

    mocks = EchoMocks()
    set_stack_config(config, secret_keys)
    ROOT_RESOURCE.set(None)
    pulumi.runtime.set_mocks(mocks, project=project, stack="outscale", preview=True)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(program))
    # The stock MockMonitor calls new_resource for every registration except the root Stack.
    return len(mocks.registered), sum(1 for typ in mocks.registered if typ == "outscale:index/vm:Vm")


def measure(mode: str, vms: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--child", mode, "--vms", str(vms)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"child {mode} {vms} failed (exit {result.returncode}): {result.stderr[-2000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["process_seconds"] = wall
    return data


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def render(results: dict[tuple[str, int], list[dict[str, Any]]], repeats: int, command: str) -> str:
    def median(mode: str, vms: int, key: str) -> float:
        return statistics.median(run[key] for run in results[(mode, vms)])

    lines = [
        "# Benchmark: offline plan of the OUTSCALE program",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}.",
        "",
        f"Each cell is the median of {repeats} runs, each in a child process of its own. *plan s* is the "
        "time of the program run under mocks inside the child; *process s* adds interpreter start, "
        "imports and reading the description and stack configuration. *peak MB* is the child's "
        "`ru_maxrss` (imports included). *ratio* is recording plan time over raw plan time.",
        "",
        "| VMs | resources | raw plan s | recording plan s | ratio | recording process s | raw peak MB | recording peak MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for vms in sorted({vms for _, vms in results}):
        raw = median("raw", vms, "seconds")
        recording = median("recording", vms, "seconds")
        resources = results[("recording", vms)][0]["resources"]
        lines.append(
            f"| {vms} | {resources} | {raw:.2f} | {recording:.2f} | {recording / raw:.2f} | "
            f"{median('recording', vms, 'process_seconds'):.2f} | {median('raw', vms, 'peak_mb'):.0f} | "
            f"{median('recording', vms, 'peak_mb'):.0f} |")

    lines += ["", "## Targets", ""]
    for vms in sorted({vms for _, vms in results}):
        recording = median("recording", vms, "seconds")
        process = median("recording", vms, "process_seconds")
        peak = median("recording", vms, "peak_mb")
        ratio = recording / median("raw", vms, "seconds")
        checks = []
        if vms in TARGET_SECONDS:
            limit = TARGET_SECONDS[vms]
            checks.append(_verdict(f"plan ≤ {limit:g} s", recording, limit, "s"))
            checks.append(_verdict(f"whole process ≤ {limit:g} s", process, limit, "s"))
        checks.append(_verdict(f"peak ≤ {TARGET_PEAK_MB} MB", peak, TARGET_PEAK_MB, "MB"))
        checks.append(_verdict(f"recording ≤ {TARGET_RATIO}× raw", ratio, TARGET_RATIO, "×"))
        lines.append(f"- {vms} VMs: " + "; ".join(checks) + ".")
    return "\n".join(lines) + "\n"


def _verdict(label: str, value: float, limit: float, unit: str) -> str:
    if value <= limit:
        return f"{label}: met ({value:.2f} {unit})"
    return f"{label}: MISSED by {value - limit:.2f} {unit} ({value / limit:.0%} of the target)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time and peak memory of the offline plan, against the raw mock run.")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="VM counts to plan")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size and mode (default: 3)")
    parser.add_argument("--output", type=Path, help="write the Markdown results to this file")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--vms", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)

    if arguments.child:
        print(json.dumps(run_child(arguments.child, arguments.vms)))
        return 0

    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for vms in arguments.sizes:
        for repeat in range(arguments.repeats):
            # Alternate the modes so that a slow period of the machine hits both.
            for mode in MODES:
                run = measure(mode, vms)
                results.setdefault((mode, vms), []).append(run)
                print(f"{mode:9} {vms:5} VMs ({run['vms']} planned, {run['resources']} resources): "
                      f"plan {run['seconds']:.2f} s, process {run['process_seconds']:.2f} s, "
                      f"peak {run['peak_mb']:.0f} MB", file=sys.stderr)
    command = "python bench/bench_plan.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(results, arguments.repeats, command.strip())
    sys.stdout.write(text)
    if arguments.output:
        arguments.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
