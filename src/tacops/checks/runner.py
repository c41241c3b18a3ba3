"""Run the identity checks in a pytest subprocess and read back every outcome.

The tests write each outcome and difference to a JSON side file, so the report lists
differences without parsing pytest output. A run that collected no test, or a check
that wrote no outcome, counts as a failure: silence never reads as identical.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

TEST_MODULE = Path(__file__).with_name("test_identity.py")
PYTEST_NO_TESTS_COLLECTED = 5

Outcome = Literal["passed", "failed", "deferred", "error"]


@dataclass(frozen=True)
class CheckResult:
    host: str
    check: str
    outcome: Outcome
    differences: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class ChecksResult:
    """Outcome of one run: ``ok`` is True only when checks ran and none failed."""

    ok: bool
    exit_code: int
    checks: list[CheckResult]
    junit_xml: Path
    differences_json: Path
    message: str = ""

    def failed(self) -> list[CheckResult]:
        return [check for check in self.checks if check.outcome in ("failed", "error")]

    def deferred(self) -> list[CheckResult]:
        return [check for check in self.checks if check.outcome == "deferred"]


def pytest_command(fingerprint_dir: Path, hosts: list[str], ssh_config: Path | None, mode: str,
                   junit_xml: Path, differences_json: Path, *, connection: str = "ssh",
                   description: Path | None = None, collector_python: str = "python3") -> list[str]:
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tacops.checks.plugin",
        # An empty configuration keeps the project's pytest settings out of the run.
        "-c", os.devnull, "--rootdir", str(TEST_MODULE.parent),
        "-q", "-rfEs", f"--junitxml={junit_xml}", "--junit-prefix=identity",
        "--fingerprints", str(fingerprint_dir), "--mode", mode, "--connection", connection,
        "--differences-json", str(differences_json), "--collector-python", collector_python,
    ]
    if hosts:
        command += ["--hosts", ",".join(hosts)]
    if ssh_config is not None:
        command += ["--ssh-config", str(ssh_config)]
    if description is not None:
        command += ["--description", str(description)]
    return command + [str(TEST_MODULE)]


def run_checks(fingerprint_dir: Path, hosts: list[str], ssh_config: Path | None, mode: str, junit_xml: Path,
               secrets_file: Path | None = None, *, connection: str = "ssh", description: Path | None = None,
               collector_python: str = "python3", timeout: float | None = 7200) -> ChecksResult:
    """Run one identity test per host and family; return every outcome and difference.

    ``secrets_file`` (JSON ``{"hsm_pins": {host: PIN}}``) reaches pytest through the
    environment variable ``TACOPS_SECRETS_FILE``, never through its arguments.
    """
    junit_xml = Path(junit_xml)
    junit_xml.parent.mkdir(parents=True, exist_ok=True)
    differences_json = junit_xml.with_suffix(".differences.json")
    differences_json.unlink(missing_ok=True)
    environment = dict(os.environ)
    environment.pop("TACOPS_SECRETS_FILE", None)
    if secrets_file is not None:
        environment["TACOPS_SECRETS_FILE"] = str(secrets_file)
    command = pytest_command(Path(fingerprint_dir), hosts, ssh_config, mode, junit_xml, differences_json,
                             connection=connection, description=description, collector_python=collector_python)
    log.info("running identity checks: %s", " ".join(command))
    with tempfile.TemporaryDirectory(prefix="tacops-checks-") as workdir:
        completed = subprocess.run(command, cwd=workdir, env=environment, capture_output=True, text=True,
                                   timeout=timeout)
    output = (completed.stdout + completed.stderr).strip()
    log.debug("pytest output:\n%s", output)
    checks = _read_outcomes(differences_json)

    if completed.returncode == PYTEST_NO_TESTS_COLLECTED or not checks:
        message = f"no identity check ran (pytest exit code {completed.returncode}):\n{output[-3000:]}"
        log.error("%s", message)
        return ChecksResult(False, completed.returncode, checks, junit_xml, differences_json, message)
    failed = [check for check in checks if check.outcome in ("failed", "error")]
    ok = completed.returncode == 0 and not failed
    message = "" if ok else output[-3000:]
    if completed.returncode not in (0, 1):
        log.error("identity checks exited with pytest code %s:\n%s", completed.returncode, output[-3000:])
    return ChecksResult(ok, completed.returncode, checks, junit_xml, differences_json, message)


def _read_outcomes(path: Path) -> list[CheckResult]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    return [CheckResult(item["host"], item["check"], item["outcome"], item.get("differences", []))
            for item in document.get("checks", [])]
