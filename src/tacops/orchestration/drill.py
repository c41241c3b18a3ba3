"""A restore drill: back up, put to sleep, restore, wake and prove the system identical.

The drill is the ordered list of its stages. A stage that fails ends the drill, and the
report still records every stage run so far and why the last one failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any, Callable

from tacops.foundation.errors import TacopsError
from tacops.foundation.i18n import _
from tacops.orchestration import operations
from tacops.orchestration.context import Context
from tacops.report import CheckOutcome, DrillReport, Stage, write_all

log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _checks_to_outcomes(result: Any, mode: str) -> list[CheckOutcome]:
    statuses = {"passed": "passed", "failed": "failed", "error": "failed", "deferred": "skipped"}
    outcomes = []
    for check in result.checks:
        message = _("deferred to wake: needs running services") if check.outcome == "deferred" else ""
        outcomes.append(CheckOutcome(host=check.host, family=check.check.split(":")[0], name=check.check,
                                     status=statuses.get(check.outcome, "failed"), mode=mode,
                                     differences=list(check.differences), message=message))
    return outcomes


def run_drill(ctx: Context, *, report_dir: Path, restore_mode: str = "sleep",
              fresh_lab: bool = False) -> DrillReport:
    """Run every stage on the lab and write the report into ``report_dir``."""
    report = DrillReport(system=ctx.description.system, profile=ctx.profile, started=_now(),
                         ignored=ctx.description.ignore_list())
    for host in ctx.ct_host_names():
        report.hosts[host] = {}

    def stage(name: str, action: Callable[[], Any]) -> Any:
        ctx.progress(_("Stage: {name}").format(name=name))
        started = time.monotonic()
        try:
            value = action()
        except TacopsError as error:
            report.stages.append(Stage(name, round(time.monotonic() - started, 1), "failed",
                                       error.message + (f" ({error.hint})" if error.hint else "")))
            raise
        except BaseException as error:
            report.stages.append(Stage(name, round(time.monotonic() - started, 1), "failed", repr(error)))
            raise
        report.stages.append(Stage(name, round(time.monotonic() - started, 1), "passed"))
        return value

    try:
        if fresh_lab or not ctx.lab.is_up():
            if ctx.lab.is_up():
                stage("lab down", ctx.lab.down)
            stage("lab up", lambda: operations.lab_up(ctx))
        else:
            report.stages.append(Stage("lab up", 0.0, "skipped", _("the lab was already up")))

        outcome = stage("backup", lambda: operations.backup(ctx))
        report.set_id = outcome.set_id
        for host, data in (outcome.manifest.get("hosts") or {}).items():
            report.hosts.setdefault(host, {}).update({"bytes_read": data.get("bytes_read"),
                                                      "bytes_stored": data.get("bytes_added")})

        slept = stage("sleep", lambda: operations.sleep(ctx))
        report.replicas = list(slept.get("replicas") or [])

        restored = stage("restore", lambda: operations.restore(ctx, mode=restore_mode, set_id=outcome.set_id))
        report.replica_used = restored.replica
        for host, data in restored.hosts.items():
            report.hosts.setdefault(host, {})["bytes_restored"] = data.get("bytes_restored")

        if restore_mode == "sleep":
            sleeping = stage("verify (sleep mode)",
                             lambda: operations.verify(ctx, mode="sleep", set_id=outcome.set_id,
                                                       report_dir=report_dir / "checks-sleep"))
            report.checks.extend(_checks_to_outcomes(sleeping, "sleep"))
            stage("wake", lambda: operations.wake(ctx))

        running = stage("verify (operation mode)",
                        lambda: operations.verify(ctx, mode="operation", set_id=outcome.set_id,
                                                  report_dir=report_dir / "checks-operation"))
        report.checks.extend(_checks_to_outcomes(running, "operation"))

        failed = [check for check in report.checks if check.status == "failed"]
        report.result = "differences" if failed else "identical"
    except TacopsError as error:
        report.result = "failed"
        report.error = error.message
        raise
    finally:
        report.finished = _now()
        write_all(report, report_dir)
    return report
