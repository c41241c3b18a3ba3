"""Identity checks run through pytest and testinfra's local backend against this machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tacops.backup.fingerprint import collect
from tacops.checks.runner import run_checks
from tacops.foundation.description import default_description_path
from tacops.foundation.transport import LocalTransport

SYSTEM_PYTHON = "/usr/bin/python3"


@pytest.fixture()
def lab(tmp_path: Path) -> dict:
    """An expected fingerprint of this machine (one small tree) and a description that
    does not ignore /tmp, where the tree lies."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "app.conf").write_text("port = 8086\n")
    (tree / "etc" / "cache.ignored").write_text("changes\n")
    description = yaml.safe_load(default_description_path().read_text(encoding="utf-8"))
    description["identity"]["ignore"]["paths"] = ["*.ignored"]
    description_path = tmp_path / "description.yaml"
    description_path.write_text(yaml.safe_dump(description), encoding="utf-8")
    params = {"host": "robert-ws", "families": ["packages", "users", "groups", "trees", "databases"],
              "system_trees": [str(tree)], "application_trees": [str(tree / "etc")], "ignore": [],
              "databases": []}
    fingerprints = tmp_path / "fingerprints"
    fingerprints.mkdir()
    expected = collect(LocalTransport("robert-ws"), params, python=SYSTEM_PYTHON)
    (fingerprints / "robert-ws.json").write_text(json.dumps(expected), encoding="utf-8")
    return {"tree": tree, "fingerprints": fingerprints, "description": description_path, "tmp": tmp_path}


def run(lab: dict, mode: str = "operation", hosts: list[str] | None = None, **options):
    return run_checks(lab["fingerprints"], ["robert-ws"] if hosts is None else hosts, None, mode,
                      lab["tmp"] / "junit.xml", connection="local", description=lab["description"],
                      collector_python=SYSTEM_PYTHON, **options)


def test_checks_pass_on_same_host(lab):
    result = run(lab)
    assert result.ok, result.message
    checks = {check.check: check.outcome for check in result.checks}
    tree = str(lab["tree"])
    assert checks == {"packages": "passed", "users": "passed", "groups": "passed", f"trees:{tree}": "passed",
                      f"trees:{tree}/etc": "passed"}
    assert result.junit_xml.exists()
    assert "testcase" in result.junit_xml.read_text()


def test_checks_name_planted_change(lab):
    (lab["tree"] / "etc" / "app.conf").write_text("port = 9999\n")
    (lab["tree"] / "etc" / "cache.ignored").write_text("changed again\n")
    result = run(lab)
    assert not result.ok
    failed = {check.check: check for check in result.failed()}
    tree = str(lab["tree"])
    assert set(failed) == {f"trees:{tree}", f"trees:{tree}/etc"}
    items = {(d["item"], d["attribute"]) for d in failed[f"trees:{tree}/etc"].differences}
    assert (f"{tree}/etc/app.conf", "sha256") in items
    assert (f"{tree}/etc/app.conf", "size") not in items
    assert not any(item.endswith(".ignored") for item, _attribute in items)
    assert f"{tree}/etc/app.conf (sha256)" in result.message


def test_checks_without_hosts_fail(lab, tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    result = run_checks(empty, [], None, "operation", tmp_path / "junit.xml", connection="local")
    assert not result.ok
    assert result.exit_code == 5
    assert "no identity check ran" in result.message


def test_checks_unknown_host_fail(lab):
    result = run(lab, hosts=["robert-crypto"])
    assert not result.ok
    assert "robert-crypto.json not found" in result.message


def test_checks_sleep_mode_defers_databases(lab):
    expected_path = lab["fingerprints"] / "robert-ws.json"
    expected = json.loads(expected_path.read_text())
    expected["databases"] = {"robert": {"status": "ok", "owner": "postgres", "encoding": "UTF8", "tables": {},
                                        "sequences": {}}}
    expected["meta"]["params"]["databases"] = ["robert"]
    expected_path.write_text(json.dumps(expected))
    result = run(lab, mode="sleep")
    assert result.ok, result.message
    assert [check.check for check in result.deferred()] == ["databases:robert"]


def test_checks_collector_failure_reported(lab):
    result = run_checks(lab["fingerprints"], ["robert-ws"], None, "operation", lab["tmp"] / "junit.xml",
                        connection="local", description=lab["description"], collector_python="/nonexistent/python3")
    assert not result.ok
    assert result.checks
    assert all(check.outcome == "error" for check in result.checks)


def test_secrets_not_in_arguments(lab, tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"hsm_pins": {"robert-ws": "pin-5521"}}))
    os.chmod(secrets, 0o600)
    seen = {}

    import subprocess

    real_run = subprocess.run

    def spy(command, **kwargs):
        seen["command"] = command
        seen["env"] = kwargs.get("env", {})
        return real_run(command, **kwargs)

    monkeypatch.setattr("tacops.checks.runner.subprocess.run", spy)
    run(lab, secrets_file=secrets)
    assert "pin-5521" not in " ".join(seen["command"])
    assert str(secrets) not in " ".join(seen["command"])
    assert seen["env"]["TACOPS_SECRETS_FILE"] == str(secrets)
