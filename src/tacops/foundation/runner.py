"""Drive Ansible playbooks through ansible-runner.

Each run gets a private data directory that is deleted afterwards, because
ansible-runner stores the run's environment and extra variables there. Secrets reach a
playbook only as the path of a 0600 file (``tacops_secrets_file``) that the playbook
loads with ``no_log``; the caller deletes that file when the run ends.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tacops.foundation.errors import CommandFailedError, InvalidInputError, UnreachableError
from tacops.foundation.i18n import _

log = logging.getLogger(__name__)

EventCallback = Callable[[dict[str, Any]], None]


@dataclass
class PlaybookResult:
    playbook: str
    rc: int
    status: str
    stats: dict[str, Any]
    failures: list[dict[str, Any]] = field(default_factory=list)
    unreachable: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    stdout: str = ""

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failures and not self.unreachable


def _failure_message(event: dict[str, Any]) -> str:
    result = event.get("event_data", {}).get("res", {}) or {}
    if result.get("censored"):
        return str(result["censored"])
    for key in ("msg", "stderr", "module_stderr", "stdout"):
        value = result.get(key)
        if value:
            return str(value)[-1500:]
    return "?"


def run_playbook(playbook: Path, inventory: Path, *, extravars: dict[str, Any] | None = None,
                 limit: str | None = None, forks: int = 10, on_event: EventCallback | None = None,
                 keep_stdout: Path | None = None, check: bool = False,
                 extra_vars_files: list[Path] | None = None) -> PlaybookResult:
    """Run ``playbook`` against ``inventory`` and return per-host results.

    ``extra_vars_files`` are passed as ``-e @FILE``: only their paths reach the command line.
    Raises InvalidInputError when the playbook or inventory is missing. Failed and
    unreachable hosts are returned, not raised, so callers can report every host.
    """
    import ansible_runner  # deferred: importing it takes about a second

    if not playbook.is_file():
        raise InvalidInputError(_("Playbook {path} not found.").format(path=playbook))
    if not inventory.is_file():
        raise InvalidInputError(
            _("Inventory {path} not found; run `tacops lab up` or pass --inventory.").format(path=inventory)
        )

    failures: list[dict[str, Any]] = []
    unreachable: list[dict[str, Any]] = []
    facts: dict[str, dict[str, Any]] = {}

    def handle(event: dict[str, Any]) -> bool:
        kind = event.get("event")
        data = event.get("event_data", {})
        host = data.get("host")
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            failures.append({"host": host, "task": data.get("task"), "message": _failure_message(event)})
        elif kind == "runner_on_unreachable":
            unreachable.append({"host": host, "task": data.get("task"), "message": _failure_message(event)})
        elif kind == "runner_on_ok":
            set_facts = (data.get("res") or {}).get("ansible_facts") or {}
            exported = {key: value for key, value in set_facts.items() if key.startswith("tacops_result")}
            if exported and host:
                facts.setdefault(host, {}).update(exported)
        if on_event is not None:
            on_event(event)
        return True

    private_dir = Path(tempfile.mkdtemp(prefix="tacops-runner-"))
    os.chmod(private_dir, 0o700)
    bin_dir = str(Path(sys.executable).parent)
    envvars = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_LIBRARY": str(playbook.parent / "library"),
        "ANSIBLE_ROLES_PATH": str(playbook.parent / "roles"),
        "LANG": "C.UTF-8",
    }
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private_dir),
            playbook=str(playbook.resolve()),
            inventory=str(inventory.resolve()),
            extravars=extravars or {},
            limit=limit,
            forks=forks,
            envvars=envvars,
            event_handler=handle,
            quiet=True,
            cmdline=" ".join((["--check"] if check else [])
                             + [f"-e @{shlex.quote(str(path))}" for path in extra_vars_files or []]) or None,
        )
        stdout = runner.stdout.read() if runner.stdout else ""
        if keep_stdout is not None:
            keep_stdout.parent.mkdir(parents=True, exist_ok=True)
            keep_stdout.write_text(stdout, encoding="utf-8")
        if runner.rc == 127:
            raise CommandFailedError(
                _("ansible-playbook was not found (exit code 127)."), host="controller",
                command="ansible-playbook", returncode=127,
                hint=_("Install tacops in a virtual environment and run it from there."),
            )
        result = PlaybookResult(playbook=playbook.name, rc=runner.rc, status=runner.status,
                                stats=runner.stats or {}, failures=failures, unreachable=unreachable,
                                facts=facts, stdout=stdout)
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)
    log.info("playbook %s finished: rc=%s status=%s", playbook.name, result.rc, result.status)
    return result


def raise_for_result(result: PlaybookResult) -> None:
    """Raise the typed error that matches the first unreachable or failed host."""
    if result.unreachable:
        first = result.unreachable[0]
        raise UnreachableError(
            _("Host {host} is unreachable (task {task}): {message}").format(**first),
            host=first["host"],
            hint=_("Check the host with `tacops lab status`, then run the command again."),
        )
    if result.failures or result.rc != 0:
        lines = [f"{item['host']}: {item['task']}: {item['message']}" for item in result.failures]
        raise CommandFailedError(
            _("Playbook {playbook} failed (exit code {rc}):\n{details}").format(
                playbook=result.playbook, rc=result.rc, details="\n".join(lines) or result.stdout[-1500:]),
            host=result.failures[0]["host"] if result.failures else "controller",
            command=result.playbook, returncode=result.rc,
        )
