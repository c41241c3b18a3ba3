"""pytest plugin that generates one identity test per host and fingerprint family.

Load it with ``-p tacops.checks.plugin`` and run ``test_identity.py`` of this package.
Hosts come from testinfra's ``--hosts`` (host names, comma separated; each is reached as
``ssh://NAME`` with ``--ssh-config``, or run on this machine with ``--connection
local``). The expected fingerprint of host NAME is ``NAME.json`` in ``--fingerprints``.
Secrets come from the JSON file named by ``--secrets-file`` or the environment variable
``TACOPS_SECRETS_FILE``, never from the command line.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from tacops.backup.fingerprint import (
    DEFERRED_IN_SLEEP,
    check_name,
    checks_of,
    collect,
)
from tacops.foundation.description import Identity, load_description
from tacops.foundation.transport import LocalTransport, SSHTransport, Transport

log = logging.getLogger(__name__)

SECRETS_ENVIRONMENT_VARIABLE = "TACOPS_SECRETS_FILE"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tacops", "tacops identity checks")
    group.addoption("--fingerprints", metavar="DIR",
                    help="directory of expected fingerprints, one <host>.json per host")
    group.addoption("--mode", choices=("operation", "sleep"), default="operation",
                    help="state the hosts are expected in (default: operation)")
    group.addoption("--secrets-file", metavar="PATH",
                    help=f"JSON file {{\"hsm_pins\": {{host: PIN}}}}; default: ${SECRETS_ENVIRONMENT_VARIABLE}")
    group.addoption("--description", metavar="PATH",
                    help="system description that lists the ignored paths and units (default: the built-in one)")
    group.addoption("--differences-json", metavar="PATH",
                    help="file to write every check outcome and difference to, as JSON")
    group.addoption("--collector-python", default="python3",
                    help="Python interpreter that runs the collector on the hosts (default: python3)")


class IdentitySession:
    """State shared by the tests of one session: options, found fingerprints, outcomes."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        directory = config.getoption("fingerprints")
        self.fingerprint_dir = Path(directory) if directory else None
        self.mode = config.getoption("mode")
        self.ssh_config = config.getoption("ssh_config")
        self.connection = config.getoption("connection") or "ssh"
        self.python = config.getoption("collector_python")
        self.found: dict[str, dict] = {}
        self.outcomes: list[dict] = []
        self.collected: dict[str, tuple[str, str, str | None]] = {}
        self._expected: dict[str, dict] = {}
        self._identity: Identity | None = None

    def host_names(self) -> list[str]:
        option = self.config.getoption("hosts")
        if option:
            return [name.strip() for name in option.split(",") if name.strip()]
        if self.fingerprint_dir is None:
            return []
        return sorted(path.stem for path in self.fingerprint_dir.glob("*.json"))

    def expected(self, host: str) -> dict:
        if host not in self._expected:
            if self.fingerprint_dir is None:
                raise pytest.UsageError("--fingerprints DIR is required")
            path = self.fingerprint_dir / f"{host}.json"
            try:
                self._expected[host] = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise pytest.UsageError(f"expected fingerprint {path} not found") from None
            except ValueError as error:
                raise pytest.UsageError(f"expected fingerprint {path} is not valid JSON: {error}") from None
        return self._expected[host]

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = load_description(self.config.getoption("description")).identity
        return self._identity

    def hsm_pin(self, host: str) -> str | None:
        path = self.config.getoption("secrets_file") or os.environ.get(SECRETS_ENVIRONMENT_VARIABLE)
        if not path:
            return None
        secrets = json.loads(Path(path).read_text(encoding="utf-8"))
        return (secrets.get("hsm_pins") or {}).get(host)

    def host_spec(self, host: str) -> str:
        return f"{self.connection}://{host}"

    def transport(self, host: str) -> Transport:
        # testinfra's Host.run has no standard input, and the collector's parameters
        # (the HSM PIN among them) travel on standard input only, so the collector
        # runs through the tacops transport that matches the testinfra connection.
        if self.connection == "local":
            return LocalTransport(host)
        if self.connection != "ssh":
            raise pytest.UsageError(f"--connection {self.connection} is not supported; use ssh or local")
        if not self.ssh_config:
            raise pytest.UsageError("--ssh-config PATH is required for SSH hosts")
        return SSHTransport(host, Path(self.ssh_config))

    def found_fingerprint(self, host: str) -> dict:
        """Collect the fingerprint of ``host`` once per session, for every family its checks need."""
        if host not in self.found:
            expected = self.expected(host)
            params = expected.get("meta", {}).get("params")
            if not isinstance(params, dict):
                raise pytest.UsageError(f"expected fingerprint of {host} has no meta.params; collect it again")
            params = json.loads(json.dumps(params))
            families = [family for family, _part in checks_of(expected)]
            if self.mode == "sleep":
                families = [family for family in families if family not in DEFERRED_IN_SLEEP]
            params["families"] = list(dict.fromkeys(families))
            if params.get("hsm"):
                params["hsm"]["pin"] = self.hsm_pin(host)
            self.found[host] = collect(self.transport(host), params, python=self.python)
        return self.found[host]


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SESSION_KEY] = IdentitySession(config)


SESSION_KEY = pytest.StashKey[IdentitySession]()


def identity_session(config: pytest.Config) -> IdentitySession:
    return config.stash[SESSION_KEY]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "identity_check" not in metafunc.fixturenames:
        return
    session = identity_session(metafunc.config)
    params = []
    ids = []
    for host in session.host_names():
        for family, part in checks_of(session.expected(host)):
            params.append((host, family, part))
            ids.append(f"{host}/{check_name(family, part)}")
    metafunc.parametrize("identity_check", params, ids=ids)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Record the generated checks and drop the placeholder test of an empty host list.

    With no check to run, pytest then exits with code 5 (no tests collected), which the
    runner reports as a failure, where an empty parameter set would only be skipped.
    """
    state = identity_session(config)
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        check = callspec.params.get("identity_check") if callspec is not None else None
        if isinstance(check, tuple):
            state.collected[item.nodeid] = check
            kept.append(item)
        elif "identity_check" in getattr(item, "fixturenames", ()):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture()
def identity(request: pytest.FixtureRequest) -> IdentitySession:
    return identity_session(request.config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("differences_json")
    if not path:
        return
    state = identity_session(session.config)
    # A test that failed before its body ran (no connection, no testinfra host) left no
    # outcome. It is written as an error, so the report cannot miss it.
    recorded = {outcome["nodeid"] for outcome in state.outcomes}
    for nodeid, (host, family, part) in state.collected.items():
        if nodeid not in recorded:
            state.outcomes.append({"nodeid": nodeid, "host": host, "family": family, "part": part,
                                   "check": check_name(family, part), "outcome": "error", "differences": []})
    document = {"mode": state.mode, "exit_status": int(exitstatus), "checks": state.outcomes}
    Path(path).write_text(json.dumps(document, indent=1, sort_keys=True, default=str), encoding="utf-8")
