"""tacops preview: offline plan against a snapshot, and the real pulumi CLI's exit codes mapped."""

from __future__ import annotations

import stat

import pytest

import plan_example
from tacops import cli
from tacops.foundation.errors import ExitCode
from tacops.infra import preview


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "Pulumi.yaml").write_text("name: tacops-ct\nruntime: python\n")
    (tmp_path / "Pulumi.outscale.yaml").write_text(
        "config:\n  tacops-ct:environment: test\n  tacops-ct:tlsKey:\n    secure: v1:abc\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    replicas = {"count": 2}
    monkeypatch.setattr(preview, "load_program", lambda stack: lambda: plan_example.build(replicas=replicas["count"]))
    return tmp_path, replicas


def test_offline_preview_without_snapshot_reports_creates(project, capsys):
    assert cli.main(["preview", "--stack", "outscale"]) == ExitCode.DIFFERENCES
    captured = capsys.readouterr()
    assert "OFFLINE PLAN (Pulumi mocks; no provider was called)" in captured.err
    assert "to create, 0 to update, 0 to delete, 0 unchanged" in captured.out


def test_offline_preview_after_update_is_clean_then_shows_update(project, capsys):
    root, replicas = project
    assert cli.main(["preview", "--stack", "outscale", "--update"]) == ExitCode.OK
    assert (root / "infra" / "plans" / "outscale.json").is_file()
    assert cli.main(["preview", "--stack", "outscale"]) == ExitCode.OK

    replicas["count"] = 3
    capsys.readouterr()
    assert cli.main(["preview", "--stack", "outscale"]) == ExitCode.DIFFERENCES
    output = capsys.readouterr().out
    assert "spec.replicas: 2 → 3" in output
    assert "0 to create, 1 to update, 0 to delete" in output


def test_offline_preview_json(project, capsys):
    cli.main(["preview", "--stack", "outscale", "--json"])
    assert '"create"' in capsys.readouterr().out


def test_unknown_stack_is_invalid_usage(project):
    with pytest.raises(SystemExit) as raised:
        cli.main(["preview", "--stack", "aws"])
    assert raised.value.code == 2


def fake_pulumi(root, output: str, code: int) -> None:
    """Put a stand-in ``pulumi`` on PATH that prints ``output`` and exits with ``code``."""
    binary = root / "bin" / "pulumi"
    binary.parent.mkdir(exist_ok=True)
    # PATH holds only this directory, so the script uses shell builtins alone.
    binary.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {code}\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("output, code, expected", [
    ("Resources:\n    + 2 to create\n    10 unchanged", 0, ExitCode.DIFFERENCES),
    ("Resources:\n    12 unchanged", 0, ExitCode.OK),
    ("error: preview failed", 255, ExitCode.UNEXPECTED),
])
def test_real_preview_exit_codes(project, output, code, expected):
    root, _replicas = project
    fake_pulumi(root, output, code)
    lines: list[str] = []
    pulumi = preview.pulumi_cli()
    assert pulumi == str(root / "bin" / "pulumi")
    assert preview.real_preview(pulumi, "outscale", root, on_line=lines.append) == expected
    assert lines[0] == output.splitlines()[0]
