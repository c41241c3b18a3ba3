"""Drill reports: JSON for tools, JUnit XML for GitLab, and a summary for people."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tacops.foundation.i18n import _


@dataclass
class Stage:
    name: str
    seconds: float
    status: str  # "passed" | "failed" | "skipped"
    detail: str = ""


@dataclass
class CheckOutcome:
    host: str
    family: str
    name: str
    status: str  # "passed" | "failed" | "skipped"
    mode: str
    differences: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


@dataclass
class DrillReport:
    system: str
    profile: str
    started: str
    finished: str = ""
    result: str = "failed"  # "identical" | "differences" | "failed"
    set_id: str = ""
    replica_used: str = ""
    stages: list[Stage] = field(default_factory=list)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    replicas: list[dict[str, Any]] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def recovery_seconds(self) -> float:
        """Time from the start of the restore to a verified running system."""
        names = {"restore", "verify (sleep mode)", "wake", "verify (operation mode)"}
        return round(sum(stage.seconds for stage in self.stages if stage.name in names), 1)

    @property
    def differences(self) -> list[dict[str, Any]]:
        return [difference for check in self.checks for difference in check.differences]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recovery_seconds"] = self.recovery_seconds
        data["difference_count"] = len(self.differences)
        return data


def write_json(report: DrillReport, path: Path) -> Path:
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def write_junit(report: DrillReport, path: Path) -> Path:
    """Write one test suite for the stages and one per host for the identity checks."""
    suites = ET.Element("testsuites", name=f"tacops drill {report.set_id}")

    stage_suite = ET.SubElement(suites, "testsuite", name="stages", tests=str(len(report.stages)))
    for stage in report.stages:
        case = ET.SubElement(stage_suite, "testcase", classname="drill.stages", name=stage.name,
                             time=f"{stage.seconds:.1f}")
        if stage.status == "failed":
            ET.SubElement(case, "failure", message=stage.detail[:500]).text = stage.detail
        elif stage.status == "skipped":
            ET.SubElement(case, "skipped", message=stage.detail[:500])
    stage_suite.set("failures", str(sum(1 for s in report.stages if s.status == "failed")))

    by_host: dict[str, list[CheckOutcome]] = {}
    for check in report.checks:
        by_host.setdefault(check.host, []).append(check)
    for host, checks in sorted(by_host.items()):
        suite = ET.SubElement(suites, "testsuite", name=f"identity.{host}", tests=str(len(checks)),
                              failures=str(sum(1 for c in checks if c.status == "failed")))
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname=f"identity.{host}.{check.mode}", name=check.name)
            if check.status == "failed":
                lines = [f"{d.get('item')}: expected {d.get('expected')!r}, found {d.get('found')!r}"
                         for d in check.differences] or [check.message]
                ET.SubElement(case, "failure", message=f"{len(check.differences)} differences").text = "\n".join(lines)
            elif check.status == "skipped":
                ET.SubElement(case, "skipped", message=check.message[:500])
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _size(count: int | float | None) -> str:
    if not count:
        return "0 B"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render_summary(report: DrillReport) -> str:
    """Return the human summary of a drill, in the operator's language."""
    verdict = {
        "identical": _("IDENTICAL: the restored system matches its fingerprint."),
        "differences": _("DIFFERENCES: the restored system does not match its fingerprint."),
        "failed": _("FAILED: the drill did not run to the end."),
    }[report.result]
    lines = [_("Restore drill of {system} (profile {profile})").format(system=report.system, profile=report.profile),
             verdict, ""]
    if report.error:
        lines += [_("Error: {error}").format(error=report.error), ""]
    lines.append(_("Backup set: {set_id}; replica used for the restore: {replica}").format(
        set_id=report.set_id or "-", replica=report.replica_used or "-"))
    lines.append(_("Recovery time (restore to verified running system): {seconds} s").format(
        seconds=report.recovery_seconds))
    lines.append("")
    lines.append(_("Stages:"))
    statuses = {"passed": _("passed"), "failed": _("failed"), "skipped": _("skipped")}
    for stage in report.stages:
        lines.append(f"  {stage.name:<28} {stage.seconds:>8.1f} s  {statuses.get(stage.status, stage.status)}"
                     + (f"  {stage.detail}" if stage.detail and stage.status != "passed" else ""))
    lines.append("")
    lines.append(_("Hosts:"))
    for host, data in sorted(report.hosts.items()):
        checks = [c for c in report.checks if c.host == host]
        failed = sum(1 for c in checks if c.status == "failed")
        skipped = sum(1 for c in checks if c.status == "skipped")
        lines.append("  " + _("{host}: read {read}, stored {stored}, restored {restored}; "
                              "checks {passed} passed, {failed} failed, {skipped} deferred").format(
            host=host, read=_size(data.get("bytes_read")), stored=_size(data.get("bytes_stored")),
            restored=_size(data.get("bytes_restored")), passed=len(checks) - failed - skipped, failed=failed,
            skipped=skipped))
    if report.replicas:
        lines.append("")
        lines.append(_("Replicas:"))
        for replica in report.replicas:
            lines.append(f"  {replica.get('replica', replica.get('name', '?'))}: "
                         + (_("healthy") if replica.get("ok") else _("NOT healthy: {error}").format(
                             error=replica.get("error") or replica.get("bad_files") or "?")))
    differences = report.differences
    lines.append("")
    lines.append(_("Differences: {count}").format(count=len(differences)))
    for difference in differences[:200]:
        item = difference.get("item")
        if difference.get("attribute"):
            item = f"{item} ({difference['attribute']})"
        lines.append(f"  {difference.get('host')} [{difference.get('family')}] {item}: "
                     + _("expected {expected!r}, found {found!r}").format(expected=difference.get("expected"),
                                                                        found=difference.get("found")))
    if len(differences) > 200:
        lines.append("  " + _("... and {count} more in report.json").format(count=len(differences) - 200))
    lines.append("")
    lines.append(_("Ignored when comparing:"))
    lines.extend(f"  - {item}" for item in report.ignored)
    return "\n".join(lines) + "\n"


def write_all(report: DrillReport, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    summary = directory / "summary.txt"
    summary.write_text(render_summary(report), encoding="utf-8")
    return {"json": write_json(report, directory / "report.json"),
            "junit": write_junit(report, directory / "report.xml"),
            "summary": summary}
