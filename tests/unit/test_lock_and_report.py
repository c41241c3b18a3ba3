import json
import xml.etree.ElementTree as ET

import pytest

from tacops.foundation.errors import ExitCode, LockedError
from tacops.foundation.lock import system_lock
from tacops.report import CheckOutcome, DrillReport, Stage, render_summary, write_all


def test_second_run_on_same_system_locked(tmp_path):
    with system_lock(tmp_path, "ct-lab", "backup"):
        with pytest.raises(LockedError) as caught:
            with system_lock(tmp_path, "ct-lab", "restore"):
                pass
    assert caught.value.exit_code == ExitCode.LOCKED
    assert "backup" in caught.value.message


def test_lock_released_after_run(tmp_path):
    with system_lock(tmp_path, "ct-lab", "backup"):
        pass
    with system_lock(tmp_path, "ct-lab", "restore"):
        pass


def test_other_system_not_locked(tmp_path):
    with system_lock(tmp_path, "ct-lab", "backup"):
        with system_lock(tmp_path, "ct-production", "backup"):
            pass


def _report_with_difference() -> DrillReport:
    report = DrillReport(system="tousanticovid-ct", profile="lab", started="2026-12-04T20:00:00+00:00",
                         result="differences", set_id="20261204T200000Z", replica_used="backup-b",
                         ignored=["/var/log", "route captcha: field id (a new captcha id per call)"])
    report.stages = [Stage("backup", 30.0, "passed"), Stage("restore", 60.0, "passed"),
                     Stage("verify (operation mode)", 10.0, "passed")]
    report.hosts = {"static-zone": {"bytes_read": 600 * 2**20, "bytes_stored": 10 * 2**20,
                                    "bytes_restored": 590 * 2**20}}
    difference = {"host": "static-zone", "family": "trees", "item": "/var/www/static/a.json",
                  "attribute": "sha256", "expected": "aa", "found": "bb"}
    report.checks = [
        CheckOutcome("static-zone", "trees", "trees:/var/www/static", "failed", "operation", [difference]),
        CheckOutcome("static-zone", "packages", "packages", "passed", "operation"),
    ]
    return report


def test_report_lists_difference_everywhere(tmp_path):
    paths = write_all(_report_with_difference(), tmp_path)

    data = json.loads(paths["json"].read_text())
    assert data["difference_count"] == 1
    assert data["recovery_seconds"] == 70.0
    assert data["replica_used"] == "backup-b"

    junit = ET.parse(paths["junit"]).getroot()
    failures = junit.findall(".//testcase/failure")
    assert len(failures) == 1
    assert "/var/www/static/a.json" in failures[0].text
    assert junit.find(".//testsuite[@name='identity.static-zone']").get("failures") == "1"

    summary = paths["summary"].read_text()
    assert "/var/www/static/a.json (sha256)" in summary
    assert "route captcha: field id" in summary
    assert "backup-b" in summary


def test_summary_in_french(monkeypatch):
    monkeypatch.setenv("LANGUAGE", "fr")
    summary = render_summary(_report_with_difference())
    assert "DIFFÉRENCES" in summary
    assert "Jeu de sauvegarde : 20261204T200000Z" in summary
