"""Run commands on hosts: over SSH for lab and cloud hosts, locally for tests.

Quoting happens here and only here. An SSH transport tells its own failure (ssh exit
255: host unreachable, host key rejected, route refused) apart from the failure of the
remote command, which is reported with its exit code and standard error.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

from tacops.foundation.errors import CommandFailedError, UnreachableError
from tacops.foundation.i18n import _

log = logging.getLogger(__name__)

SSH_TRANSPORT_FAILURE = 255


@dataclass(frozen=True)
class Result:
    host: str
    command: str
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")


def quote(command: str | Sequence[str]) -> str:
    """Quote an argument list for a POSIX shell; a string is taken as a shell command."""
    if isinstance(command, str):
        return command
    return shlex.join(command)


class Transport(Protocol):
    host: str

    def run(self, command: str | Sequence[str], *, input: bytes | None = None,
            accept: Iterable[int] = (0,), timeout: float | None = None) -> Result:
        """Run ``command``; raise CommandFailedError when its exit code is not in ``accept``."""


def _check(result: Result, accept: Iterable[int]) -> Result:
    accepted = tuple(accept)
    if result.returncode not in accepted:
        stderr = result.stderr.decode("utf-8", errors="replace").strip()
        raise CommandFailedError(
            _("Command failed on {host} with exit code {code}: {command}\n{stderr}").format(
                host=result.host, code=result.returncode, command=result.command, stderr=stderr[-2000:]
            ),
            host=result.host, command=result.command, returncode=result.returncode, stderr=stderr,
        )
    return result


class LocalTransport:
    """Run commands on this machine, as if it were the host ``host`` (unit tests, controller)."""

    def __init__(self, host: str = "localhost") -> None:
        self.host = host

    def run(self, command: str | Sequence[str], *, input: bytes | None = None,
            accept: Iterable[int] = (0,), timeout: float | None = None) -> Result:
        line = quote(command)
        completed = subprocess.run(["/bin/sh", "-c", line], input=input, capture_output=True, timeout=timeout)
        return _check(Result(self.host, line, completed.returncode, completed.stdout, completed.stderr), accept)


class SSHTransport:
    """Run commands on ``host`` with the OpenSSH client and an ssh_config file.

    The ssh_config names the host, its key, the known_hosts file (host key checking
    stays on) and, for lab hosts, the route guard that runs before each connection.
    """

    def __init__(self, host: str, ssh_config: Path, *, user: str | None = None) -> None:
        self.host = host
        self.ssh_config = Path(ssh_config)
        self.user = user

    def ssh_command(self) -> list[str]:
        target = f"{self.user}@{self.host}" if self.user else self.host
        return ["ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", target]

    def run(self, command: str | Sequence[str], *, input: bytes | None = None,
            accept: Iterable[int] = (0,), timeout: float | None = None) -> Result:
        line = quote(command)
        argv = self.ssh_command() + ["--", line]
        log.debug("ssh %s: %s", self.host, line)
        try:
            completed = subprocess.run(argv, input=input, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UnreachableError(
                _("Host {host} did not answer within {seconds} s.").format(host=self.host, seconds=timeout),
                host=self.host,
                hint=_("Check that the host is running and reachable, then run the command again."),
            ) from None
        result = Result(self.host, line, completed.returncode, completed.stdout, completed.stderr)
        if completed.returncode == SSH_TRANSPORT_FAILURE and SSH_TRANSPORT_FAILURE not in tuple(accept):
            stderr = completed.stderr.decode("utf-8", errors="replace").strip()
            raise UnreachableError(
                _("Cannot connect to {host} over SSH: {stderr}").format(host=self.host, stderr=stderr[-600:]),
                host=self.host,
                hint=_("Check that {host} is up (tacops lab status) and that its host key is in the known_hosts "
                       "file named by {config}.").format(host=self.host, config=self.ssh_config),
            )
        return _check(result, accept)

    def is_reachable(self, timeout: float = 10) -> bool:
        try:
            self.run(["true"], timeout=timeout)
        except (UnreachableError, CommandFailedError):
            return False
        return True
