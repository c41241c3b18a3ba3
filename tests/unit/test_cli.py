import subprocess
import sys

import yaml

from tacops.foundation.description import default_description_path


def _tacops(*args, env=None):
    return subprocess.run([sys.executable, "-m", "tacops", *args], capture_output=True, text=True, env=env)


def test_help_lists_exit_codes():
    result = _tacops("--help")
    assert result.returncode == 0
    assert "3  ran to the end, but differences were found" in result.stdout
    assert "drill" in result.stdout


def test_help_in_french(monkeypatch):
    import os

    env = dict(os.environ, LANGUAGE="fr", LANG="fr_FR.UTF-8")
    result = _tacops("--help", env=env)
    assert result.returncode == 0
    assert "Codes de sortie" in result.stdout


def test_invalid_description_exits_2(tmp_path):
    data = yaml.safe_load(default_description_path().read_text())
    data["profiles"]["lab"]["hosts"]["robert-ws"]["role"] = "no-such-role"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = _tacops("--description", str(path), "backup", "--dry-run")
    assert result.returncode == 2
    assert "profiles.lab.hosts.robert-ws.role" in result.stderr
    assert "no-such-role" in result.stderr


def test_backup_dry_run_touches_nothing(tmp_path):
    import os

    env = dict(os.environ, TACOPS_STATE_DIR=str(tmp_path / "state"))
    result = _tacops("backup", "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    assert "robert-crypto" in result.stdout
    assert '"robert"' in result.stdout
    assert not (tmp_path / "state").exists()


def test_unknown_profile_exits_2():
    result = _tacops("--profile", "nowhere", "backup", "--dry-run")
    assert result.returncode == 2
    assert "nowhere" in result.stderr
