"""Report of a load test: throughput, latency percentiles and errors, with replicas over time.

Two subcommands, standard library only:

``summarize --csv-prefix PREFIX [--replicas FILE] [--json FILE]``
    reads the files Locust writes with ``--csv PREFIX`` (``PREFIX_stats.csv``,
    ``PREFIX_failures.csv``, and ``PREFIX_stats_history.csv`` for the duration) and prints a
    Markdown report; ``--replicas`` adds the HorizontalPodAutoscaler samples below.

``sample-hpa --namespace NS [--kubeconfig FILE] --output FILE``
    runs ``kubectl get hpa -o json`` every ``--interval`` seconds, for at most ``--duration``
    seconds and ``--max-samples`` samples, and appends one CSV row per HPA and sample. Start it
    next to Locust when the target is a Kubernetes cluster.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PERCENTILES = ("50%", "95%", "99%")
CATCH_RESPONSE_ERROR = re.compile(r"""^CatchResponseError\(['"](.*)['"]\)$""")
REPLICA_COLUMNS = ["timestamp", "hpa", "target", "current_replicas", "desired_replicas", "min_replicas",
                   "max_replicas", "cpu_utilization"]


@dataclass
class RouteStats:
    method: str
    name: str
    requests: int
    failures: int
    requests_per_second: float
    percentiles_ms: dict[str, float | None]


@dataclass
class HpaSeries:
    hpa: str
    target: str
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (timestamp, current, desired)

    @property
    def min_replicas_seen(self) -> int:
        return min(current for _, current, _ in self.samples)

    @property
    def max_replicas_seen(self) -> int:
        return max(current for _, current, _ in self.samples)

    def first_time_at(self, replicas: int) -> float:
        return next(timestamp for timestamp, current, _ in self.samples if current >= replicas)


@dataclass
class LoadReport:
    duration_seconds: float | None
    total: RouteStats
    routes: list[RouteStats]
    failures: list[dict[str, Any]]
    replicas: list[HpaSeries]

    @property
    def error_ratio(self) -> float:
        return self.total.failures / self.total.requests if self.total.requests else 0.0


def _number(text: str) -> float | None:
    # Locust writes "N/A" for a percentile of a route without requests.
    try:
        return float(text)
    except ValueError:
        return None


def read_stats(path: Path) -> tuple[RouteStats, list[RouteStats]]:
    """Read ``PREFIX_stats.csv``: one row per route and the "Aggregated" row."""
    routes: list[RouteStats] = []
    total: RouteStats | None = None
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            stats = RouteStats(method=row["Type"], name=row["Name"], requests=int(row["Request Count"]),
                               failures=int(row["Failure Count"]),
                               requests_per_second=float(row["Requests/s"]),
                               percentiles_ms={key: _number(row[key]) for key in PERCENTILES})
            if row["Name"] == "Aggregated":
                total = stats
            else:
                routes.append(stats)
    if total is None:
        raise ValueError(f"{path} has no Aggregated row; is it a Locust --csv stats file?")
    return total, routes


def read_duration(path: Path) -> float | None:
    """Return the seconds between the first and last rows of ``PREFIX_stats_history.csv``."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        timestamps = [int(row["Timestamp"]) for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    if len(timestamps) < 2:
        return None
    return float(timestamps[-1] - timestamps[0])


def read_failures(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [{"method": row["Method"], "name": row["Name"], "error": _error_text(row["Error"]),
                 "occurrences": int(row["Occurrences"])} for row in csv.DictReader(handle)]


def _error_text(error: str) -> str:
    # Locust stores a failure that the scenario reported as the repr of CatchResponseError.
    match = CATCH_RESPONSE_ERROR.match(error)
    return match.group(1) if match else error


def read_replicas(path: Path) -> list[HpaSeries]:
    series: dict[str, HpaSeries] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            item = series.setdefault(row["hpa"], HpaSeries(hpa=row["hpa"], target=row["target"]))
            item.samples.append((float(row["timestamp"]), int(row["current_replicas"]), int(row["desired_replicas"])))
    return list(series.values())


def build_report(csv_prefix: str, replicas_path: Path | None = None) -> LoadReport:
    total, routes = read_stats(Path(f"{csv_prefix}_stats.csv"))
    return LoadReport(duration_seconds=read_duration(Path(f"{csv_prefix}_stats_history.csv")),
                      total=total, routes=routes,
                      failures=read_failures(Path(f"{csv_prefix}_failures.csv")),
                      replicas=read_replicas(replicas_path) if replicas_path else [])


def _milliseconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def render_markdown(report: LoadReport) -> str:
    total = report.total
    lines = ["# Load test report", ""]
    if report.duration_seconds is not None:
        lines.append(f"- duration: {report.duration_seconds:.0f} s")
    lines += [
        f"- requests: {total.requests}, throughput {total.requests_per_second:.1f} requests/s",
        f"- errors: {total.failures} ({report.error_ratio:.2%})",
        "- latency (all routes): " + ", ".join(
            f"p{key.rstrip('%')} {_milliseconds(total.percentiles_ms[key])} ms" for key in PERCENTILES),
        "",
        "| route | requests | errors | requests/s | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for route in sorted(report.routes, key=lambda item: -item.requests):
        cells = [f"{route.method} {route.name}", str(route.requests), str(route.failures),
                 f"{route.requests_per_second:.1f}", *(_milliseconds(route.percentiles_ms[key]) for key in PERCENTILES)]
        lines.append("| " + " | ".join(cells) + " |")

    if report.failures:
        lines += ["", "## Errors", "", "| route | error | occurrences |", "|---|---|---:|"]
        for failure in report.failures:
            lines.append(f"| {failure['method']} {failure['name']} | {failure['error']} | {failure['occurrences']} |")

    if report.replicas:
        lines += ["", "## Replicas (HorizontalPodAutoscaler samples)", "",
                  "| HPA | target | samples | min replicas | max replicas | max reached after |",
                  "|---|---|---:|---:|---:|---:|"]
        for series in report.replicas:
            start = series.samples[0][0]
            reached = series.first_time_at(series.max_replicas_seen) - start
            lines.append(f"| {series.hpa} | {series.target} | {len(series.samples)} | {series.min_replicas_seen} "
                         f"| {series.max_replicas_seen} | {reached:.0f} s |")
        lines += ["", "Replicas over time (seconds since the first sample: current/desired):", ""]
        for series in report.replicas:
            start = series.samples[0][0]
            points = ", ".join(f"{timestamp - start:.0f}s {current}/{desired}"
                               for timestamp, current, desired in series.samples)
            lines.append(f"- {series.hpa}: {points}")
    return "\n".join(lines) + "\n"


def report_to_dict(report: LoadReport) -> dict[str, Any]:
    return {"duration_seconds": report.duration_seconds, "error_ratio": report.error_ratio,
            "total": asdict(report.total), "routes": [asdict(route) for route in report.routes],
            "failures": report.failures,
            "replicas": [{"hpa": series.hpa, "target": series.target, "samples": series.samples}
                         for series in report.replicas]}


def hpa_rows(document: dict[str, Any], timestamp: float) -> list[dict[str, Any]]:
    """Turn ``kubectl get hpa -o json`` (autoscaling/v2) into one CSV row per HPA."""
    rows = []
    for item in document.get("items", []):
        spec = item.get("spec", {})
        status = item.get("status", {})
        cpu = ""
        for metric in status.get("currentMetrics") or []:
            resource = metric.get("resource") or {}
            if resource.get("name") == "cpu":
                cpu = resource.get("current", {}).get("averageUtilization", "")
        rows.append({
            "timestamp": f"{timestamp:.0f}",
            "hpa": item["metadata"]["name"],
            "target": f"{spec.get('scaleTargetRef', {}).get('kind', '')}/{spec.get('scaleTargetRef', {}).get('name', '')}",
            "current_replicas": status.get("currentReplicas", 0),
            "desired_replicas": status.get("desiredReplicas", 0),
            "min_replicas": spec.get("minReplicas", 1),
            "max_replicas": spec.get("maxReplicas", ""),
            "cpu_utilization": cpu,
        })
    return rows


def sample_hpa(namespace: str, output: Path, *, kubeconfig: str | None, interval: float, duration: float,
               max_samples: int, kubectl: str = "kubectl") -> int:
    """Append HPA samples to ``output`` until ``duration`` seconds or ``max_samples`` samples; return the count."""
    command = [kubectl, "get", "hpa", "--namespace", namespace, "--output", "json"]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    new_file = not output.is_file()
    deadline = time.monotonic() + duration
    samples = 0
    with output.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPLICA_COLUMNS)
        if new_file:
            writer.writeheader()
        while samples < max_samples and time.monotonic() < deadline:
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=max(interval, 10))
            except subprocess.TimeoutExpired:
                print(f"kubectl get hpa timed out (sample {samples + 1}); check the cluster's API server",
                      file=sys.stderr)
                result = None
            if result is not None and result.returncode != 0:
                print(f"kubectl get hpa failed (exit {result.returncode}, sample {samples + 1}): "
                      f"{result.stderr.strip()}; check --kubeconfig and --namespace", file=sys.stderr)
            elif result is not None:
                writer.writerows(hpa_rows(json.loads(result.stdout), time.time()))
                handle.flush()
            samples += 1
            time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
    return samples


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    commands = parser.add_subparsers(dest="command", required=True)

    summarize = commands.add_parser("summarize", help="print the report of a Locust --csv run")
    summarize.add_argument("--csv-prefix", required=True, help="the PREFIX given to locust --csv")
    summarize.add_argument("--replicas", type=Path, help="CSV written by sample-hpa")
    summarize.add_argument("--json", type=Path, help="also write the report as JSON to this file")

    sample = commands.add_parser("sample-hpa", help="record HPA replicas over time with kubectl")
    sample.add_argument("--namespace", required=True, help="namespace of the HPAs")
    sample.add_argument("--kubeconfig", help="kubeconfig file (default: kubectl's own)")
    sample.add_argument("--output", type=Path, required=True, help="CSV file to append samples to")
    sample.add_argument("--interval", type=float, default=15.0, help="seconds between samples (default: 15)")
    sample.add_argument("--duration", type=float, default=1800.0,
                        help="stop after this many seconds (default: 1800)")
    sample.add_argument("--max-samples", type=int, default=1000, help="stop after this many samples (default: 1000)")
    sample.add_argument("--kubectl", default="kubectl", help="kubectl binary (default: kubectl on PATH)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.command == "summarize":
        report = build_report(arguments.csv_prefix, arguments.replicas)
        sys.stdout.write(render_markdown(report))
        if arguments.json:
            arguments.json.write_text(json.dumps(report_to_dict(report), indent=2) + "\n", encoding="utf-8")
        return 0
    samples = sample_hpa(arguments.namespace, arguments.output, kubeconfig=arguments.kubeconfig,
                         interval=arguments.interval, duration=arguments.duration,
                         max_samples=arguments.max_samples, kubectl=arguments.kubectl)
    print(f"{samples} samples appended to {arguments.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
