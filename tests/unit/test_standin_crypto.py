"""The crypto lab stand-in creates a SoftHSM2 token with a KEK and serves its key check value.

Runs the fixture with the system python3, which has python3-pykcs11 on Debian; skipped
where SoftHSM2 or PyKCS11 is not installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tacops.lab.fixtures import crypto_standin

SYSTEM_PYTHON = "/usr/bin/python3"
FIXTURE = crypto_standin.__file__
SO_PIN = "so-pin-for-test"
USER_PIN = "user-pin-for-test"


def has_pykcs11() -> bool:
    if not (Path(SYSTEM_PYTHON).exists() and Path(crypto_standin.DEFAULT_MODULE).exists()):
        return False
    result = subprocess.run([SYSTEM_PYTHON, "-c", "import PyKCS11"], capture_output=True, check=False)
    return result.returncode == 0


pytestmark = pytest.mark.skipif(not has_pykcs11(), reason="needs softhsm2 and python3-pykcs11")


@pytest.fixture
def softhsm_env(tmp_path: Path) -> dict[str, str]:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    config = tmp_path / "softhsm2.cfg"
    config.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    return dict(os.environ, SOFTHSM2_CONF=str(config))


def setup_token(env: dict[str, str]) -> dict:
    result = subprocess.run(
        [SYSTEM_PYTHON, FIXTURE, "setup-token"],
        input=f"{SO_PIN}\n{USER_PIN}\n", capture_output=True, text=True, env=env, check=True,
    )
    return json.loads(result.stdout)


def test_setup_token_idempotent(softhsm_env):
    first = setup_token(softhsm_env)
    assert first == {"changed": True, "created": ["token robert", "key robert-kek"]}
    second = setup_token(softhsm_env)
    assert second == {"changed": False, "created": []}


def test_setup_token_needs_two_pins(softhsm_env):
    result = subprocess.run(
        [SYSTEM_PYTHON, FIXTURE, "setup-token"], input=f"{SO_PIN}\n", capture_output=True, text=True,
        env=softhsm_env, check=False,
    )
    assert result.returncode == 2


def start_server(env: dict[str, str], pin_file: Path, log_path: Path) -> subprocess.Popen:
    log = log_path.open("w")
    process = subprocess.Popen(
        [SYSTEM_PYTHON, FIXTURE, "serve", "--port", "0", "--pin-file", str(pin_file), "--database", ""],
        stderr=log, env=env,
    )
    return process


def wait_for_port(process: subprocess.Popen, log_path: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", log_path.read_text())
        if match:
            return int(match.group(1))
        assert process.poll() is None, log_path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"stand-in did not start: {log_path.read_text()}")


def get_json(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_kcv_stable_and_pin_not_logged(softhsm_env, tmp_path):
    setup_token(softhsm_env)
    pin_file = tmp_path / "hsm.pin"
    pin_file.write_text(USER_PIN + "\n")
    pin_file.chmod(0o600)
    log_path = tmp_path / "standin.log"
    process = start_server(softhsm_env, pin_file, log_path)
    try:
        port = wait_for_port(process, log_path)

        assert get_json(port, "/health") == (200, {"status": "UP"})
        status, first = get_json(port, "/kcv")
        assert status == 200, first
        assert re.fullmatch(r"[0-9a-f]{6}", first["kcv"]), first
        assert first["label"] == "robert-kek"
        assert "identityRows" not in first
        assert get_json(port, "/kcv") == (200, first)
        assert get_json(port, "/nothing")[0] == 404
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert USER_PIN not in log_path.read_text()
    assert SO_PIN not in log_path.read_text()


def test_serve_rejects_readable_pin_file(softhsm_env, tmp_path):
    pin_file = tmp_path / "hsm.pin"
    pin_file.write_text(USER_PIN)
    pin_file.chmod(0o640)
    result = subprocess.run(
        [SYSTEM_PYTHON, FIXTURE, "serve", "--port", "0", "--pin-file", str(pin_file)],
        capture_output=True, text=True, env=softhsm_env, timeout=10, check=False,
    )
    assert result.returncode == 1
    assert "chmod 0600" in result.stderr
    assert USER_PIN not in result.stderr


def test_kcv_without_token_503(softhsm_env, tmp_path):
    pin_file = tmp_path / "hsm.pin"
    pin_file.write_text(USER_PIN)
    pin_file.chmod(0o600)
    log_path = tmp_path / "standin.log"
    process = start_server(softhsm_env, pin_file, log_path)
    try:
        port = wait_for_port(process, log_path)
        status, document = get_json(port, "/kcv")
        assert status == 503
        assert "setup-token" in document["message"]
    finally:
        process.terminate()
        process.wait(timeout=10)
