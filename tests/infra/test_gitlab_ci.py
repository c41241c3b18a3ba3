"""The operators' .gitlab-ci.yml: GitLab's CI schema, and the pipeline each trigger produces.

GitLab itself cannot run here. The schema check uses the copy of GitLab's
``app/assets/javascripts/editor/schema/ci.json`` that check-jsonschema ships
(``--builtin-schema vendor.gitlab-ci``). The schema does not check that stages and ``needs``
exist or that ``rules: when`` is valid, so the tests below evaluate the rules themselves.
"""

from __future__ import annotations

import copy
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mock_stack import ROOT

CI_FILE = ROOT / ".gitlab-ci.yml"
# Top-level keys that are not jobs (GitLab's reserved keywords).
GLOBAL_KEYS = {"stages", "workflow", "variables", "default", "include", "image", "services", "cache",
               "before_script", "after_script", "types"}
RULE_WHEN = {"on_success", "on_failure", "always", "manual", "delayed", "never"}
DEFAULT_BRANCH = "main"
# Predefined variables of one pipeline per trigger.
PIPELINES = {
    "merge_request": {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_DEFAULT_BRANCH": DEFAULT_BRANCH},
    "default_branch": {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": DEFAULT_BRANCH,
                       "CI_DEFAULT_BRANCH": DEFAULT_BRANCH},
    "schedule": {"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": DEFAULT_BRANCH,
                 "CI_DEFAULT_BRANCH": DEFAULT_BRANCH},
    "other_branch": {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "feature",
                     "CI_DEFAULT_BRANCH": DEFAULT_BRANCH},
}
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSPHRASE|TOKEN|KUBECONFIG|ACCESS_KEY|ACCESSKEY|SECRETKEY)")


def load_ci() -> dict[str, Any]:
    return yaml.safe_load(CI_FILE.read_text(encoding="utf-8"))


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge as GitLab's ``extends`` does: hashes merge deeply, any other value is replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolved_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the visible jobs with ``extends`` applied (hidden ``.name`` templates left out)."""
    def resolve(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        assert name not in seen, f"extends cycle: {seen + (name,)}"
        job = config[name]
        parents = job.get("extends", [])
        parents = [parents] if isinstance(parents, str) else parents
        result: dict[str, Any] = {}
        for parent in parents:
            assert parent in config, f"job {name} extends {parent}, which is not defined"
            result = merge(result, resolve(parent, seen + (name,)))
        own = {key: value for key, value in job.items() if key != "extends"}
        return merge(result, own)

    return {name: resolve(name) for name in config if name not in GLOBAL_KEYS and not name.startswith(".")}


def rule_matches(expression: str, variables: dict[str, str]) -> bool:
    """Evaluate a ``rules: if`` made of ``==``, ``!=``, ``&&``, ``||`` and $VARIABLES (a subset of GitLab's)."""
    tokens = re.findall(r'\$\w+|"[^"]*"|==|!=|&&|\|\||\(|\)|\S+', expression)
    python: list[str] = []
    for token in tokens:
        if token.startswith("$"):
            python.append(repr(variables.get(token[1:])))
        elif token.startswith('"'):
            python.append(repr(token[1:-1]))
        elif token in ("==", "!=", "(", ")"):
            python.append(token)
        elif token == "&&":
            python.append("and")
        elif token == "||":
            python.append("or")
        else:
            raise AssertionError(f"rules expression {expression!r} uses {token!r}, which this test cannot evaluate")
    return bool(eval(" ".join(python), {"__builtins__": {}}))  # noqa: S307 - tokens checked above


def first_matching_rule(rules: list[dict[str, Any]], variables: dict[str, str]) -> dict[str, Any] | None:
    for rule in rules:
        if "if" not in rule or rule_matches(rule["if"], variables):
            return rule
    return None


def pipeline_jobs(config: dict[str, Any], trigger: str) -> dict[str, str]:
    """Return job name -> ``when`` for the jobs a pipeline of ``trigger`` would contain."""
    variables = PIPELINES[trigger]
    workflow_rules = config.get("workflow", {}).get("rules")
    if workflow_rules is not None:
        rule = first_matching_rule(workflow_rules, variables)
        if rule is None or rule.get("when") == "never":
            return {}
    jobs: dict[str, str] = {}
    for name, job in resolved_jobs(config).items():
        if "rules" not in job:
            jobs[name] = job.get("when", "on_success")
            continue
        rule = first_matching_rule(job["rules"], variables)
        if rule is not None and rule.get("when", "on_success") != "never":
            jobs[name] = rule.get("when", "on_success")
    return jobs


def test_ci_file_matches_gitlab_schema():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
         "--data-transform", "gitlab-ci", "--regex-variant", "nonunicode", str(CI_FILE)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_unknown_key(tmp_path):
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(CI_FILE.read_text().replace("  stage: drill\n", "  stagee: drill\n"))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
         "--data-transform", "gitlab-ci", "--regex-variant", "nonunicode", str(broken)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "stagee" in result.stdout


def test_stages_are_declared_in_order():
    assert load_ci()["stages"] == ["test", "preview", "deploy", "drill"]


def test_every_job_stage_is_declared():
    config = load_ci()
    for name, job in resolved_jobs(config).items():
        assert job.get("stage", "test") in config["stages"], f"job {name} has undeclared stage {job.get('stage')}"


def test_every_job_has_script():
    for name, job in resolved_jobs(load_ci()).items():
        assert job.get("script"), f"job {name} has no script"


def test_rule_when_values_are_valid():
    config = load_ci()
    for name, job in resolved_jobs(config).items():
        for rule in job.get("rules", []):
            assert rule.get("when", "on_success") in RULE_WHEN, f"job {name}: invalid rules when {rule['when']!r}"
        assert job.get("when", "on_success") in RULE_WHEN - {"never"}, f"job {name}: invalid when"
    for rule in config["workflow"]["rules"]:
        assert rule.get("when", "always") in {"always", "never"}


@pytest.mark.parametrize("trigger, expected", [
    ("merge_request", {"test": "on_success", "preview:outscale": "on_success",
                       "preview:flexible-engine": "on_success"}),
    ("default_branch", {"test": "on_success", "up:outscale": "manual", "up:flexible-engine": "manual"}),
    ("schedule", {"drill": "on_success"}),
    ("other_branch", {}),
])
def test_pipeline_jobs_per_trigger(trigger, expected):
    assert pipeline_jobs(load_ci(), trigger) == expected


@pytest.mark.parametrize("trigger", sorted(PIPELINES))
def test_needs_reference_jobs_of_same_pipeline(trigger):
    config = load_ci()
    jobs = resolved_jobs(config)
    present = pipeline_jobs(config, trigger)
    for name in present:
        for need in jobs[name].get("needs", []):
            needed = need["job"] if isinstance(need, dict) else need
            assert needed in jobs, f"job {name} needs {needed}, which is not defined"
            assert needed in present, f"job {name} needs {needed}, which a {trigger} pipeline does not run"
            stages = config["stages"]
            assert stages.index(jobs[needed]["stage"]) <= stages.index(jobs[name]["stage"])


def test_previews_run_real_cli_and_offline_plan():
    jobs = resolved_jobs(load_ci())
    for stack in ("outscale", "flexible-engine"):
        job = jobs[f"preview:{stack}"]
        assert job["variables"]["STACK"] == stack
        script = "\n".join(job["script"])
        assert 'pulumi preview --diff --non-interactive --stack "$STACK" --policy-pack policy/' in script
        assert 'tacops preview --stack "$STACK" --offline --json > "plan-$STACK.json"' in script
        assert job["artifacts"]["paths"] == ["plan-$STACK.json"]
        login = [line for line in job["before_script"] if line.startswith("pulumi login")]
        assert len(login) == 1
        assert "s3://" in login[0]
        assert "s3ForcePathStyle=true" in login[0]


def test_credentials_read_only_in_previews_protected_in_up():
    jobs = resolved_jobs(load_ci())
    for name, job in jobs.items():
        secret_values = {key: value for key, value in job.get("variables", {}).items() if SECRET_NAME.search(key)}
        for key, value in secret_values.items():
            assert str(value).startswith("$"), f"job {name} sets {key} in clear; use a CI/CD variable"
        if name.startswith("preview:"):
            assert secret_values
            assert all(value.startswith("$RO_") for value in secret_values.values()), name
        if name.startswith("up:"):
            assert secret_values
            assert all(value.startswith("$DEPLOY_") for value in secret_values.values()), name


def test_up_jobs_are_manual_on_default_branch_only():
    jobs = resolved_jobs(load_ci())
    for stack in ("outscale", "flexible-engine"):
        job = jobs[f"up:{stack}"]
        assert job["stage"] == "deploy"
        assert job["rules"] == [{"if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE != "schedule"',
                                 "when": "manual"}]
        assert job["resource_group"] == f"pulumi-{stack}"
        assert f'pulumi up --yes --diff --non-interactive --stack "$STACK" --policy-pack policy/' in job["script"]


def junit_argument(script: list[str], option: str) -> str:
    for line in script:
        words = shlex.split(line)
        for index, word in enumerate(words):
            if word.startswith(option + "="):
                return word.split("=", 1)[1]
            if word == option:
                return words[index + 1]
    raise AssertionError(f"no {option} in {script}")


def test_junit_reports_point_at_written_files():
    jobs = resolved_jobs(load_ci())
    test_job = jobs["test"]
    assert test_job["artifacts"]["reports"]["junit"] == junit_argument(test_job["script"], "--junitxml")

    drill = jobs["drill"]
    assert drill["script"] == ["bash scripts/drill.sh --report-dir drill-report"]
    report_dir = junit_argument(drill["script"], "--report-dir")
    # tacops drill writes report.xml into its report directory (tacops.report.write_all).
    assert drill["artifacts"]["reports"]["junit"] == str(Path(report_dir) / "report.xml")
    assert drill["artifacts"]["when"] == "always"


def test_rule_evaluator_reads_expressions():
    variables = PIPELINES["default_branch"]
    assert rule_matches("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH", variables)
    assert not rule_matches('$CI_PIPELINE_SOURCE == "schedule"', variables)
    assert rule_matches('$CI_PIPELINE_SOURCE == "schedule" || $CI_COMMIT_BRANCH == "main"', variables)
    assert not rule_matches("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $UNSET == \"x\"", variables)
