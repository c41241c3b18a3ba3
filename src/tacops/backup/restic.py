"""Driver of the restic command line (Debian's restic 0.14, repository format 2).

Every restic command line is built here. The repository password reaches restic on the
standard input of a small shell wrapper, which exports it as RESTIC_PASSWORD and then
runs restic: the password never appears in argv, in a kept file or in a log.

restic 0.14 exits with 0 on success, 1 on a fatal error and 3 when ``backup`` could not
read some files, so the driver distinguishes failures by their message on standard error.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from tacops.foundation.errors import (
    AuthenticationError,
    CommandFailedError,
    InvalidInputError,
    IntegrityError,
    LockedError,
)
from tacops.foundation.i18n import _
from tacops.foundation.transport import Result, Transport

log = logging.getLogger(__name__)

RESTIC = "restic"
REPOSITORY_VERSION = 2

# Reads one line (the password) from standard input, exports it and replaces the shell
# with restic, so restic reads no password prompt and the value stays out of argv.
PASSWORD_WRAPPER = 'IFS= read -r RESTIC_PASSWORD && export RESTIC_PASSWORD && exec restic "$@"'

WRONG_PASSWORD = "wrong password or no key found"
NO_REPOSITORY = ("unable to open config file", "Is there a repository at the following location?")
LOCKED = ("repository is already locked", "unable to create lock")

CHECK_OUTPUT_LIMIT = 4000


@dataclass(frozen=True)
class Repository:
    """A restic repository at ``path`` on the host reached by ``transport``.

    ``path`` is what restic takes after ``-r``: a local path on that host or a backend
    URL such as ``sftp:user@host:/srv/tacops/repository``. ``name`` names the replica in
    messages.
    """

    transport: Transport
    path: str
    name: str

    def __str__(self) -> str:
        return f"{self.name} ({self.transport.host}:{self.path})"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    output: str


def command_line(repository: Repository, arguments: Sequence[str], *, cache: bool = False) -> list[str]:
    """Build the argument list that runs ``restic -r <path> <arguments>`` behind the password wrapper.

    Without ``cache``, restic runs with ``--no-cache``: on a backup host the repository
    is on local disk, so a cache would only duplicate it.
    """
    base = ["sh", "-c", PASSWORD_WRAPPER, RESTIC, "-r", repository.path]
    if not cache:
        base.append("--no-cache")
    return base + list(arguments)


def _password_input(password: str) -> bytes:
    if not password:
        raise InvalidInputError(_("The repository password is empty."))
    if "\n" in password or "\r" in password:
        raise InvalidInputError(_("The repository password contains a line break; restic reads it as one line."))
    return password.encode("utf-8") + b"\n"


def run(repository: Repository, password: str, arguments: Sequence[str], *, accept: Iterable[int] = (0,),
        timeout: float | None = None, cache: bool = False) -> Result:
    """Run one restic command on the repository's host and turn restic's failures into typed errors.

    Raises AuthenticationError on a wrong password, IntegrityError when no repository
    exists at the path, LockedError when another restic process holds the lock, and
    CommandFailedError otherwise. UnreachableError from the transport passes through.
    """
    argv = command_line(repository, arguments, cache=cache)
    log.debug("restic on %s: %s", repository, " ".join(arguments))
    try:
        return repository.transport.run(argv, input=_password_input(password), accept=accept, timeout=timeout)
    except CommandFailedError as error:
        raise _classify(repository, error) from None


def _classify(repository: Repository, error: CommandFailedError) -> Exception:
    stderr = error.stderr
    if WRONG_PASSWORD in stderr:
        return AuthenticationError(
            _("The repository password does not open replica {replica}: restic reports "
              "\"wrong password or no key found\".").format(replica=repository),
            hint=_("Check the key material read from custody, and that the replica's keys/ folder is intact."),
        )
    if any(marker in stderr for marker in NO_REPOSITORY):
        return IntegrityError(
            _("No restic repository found on replica {replica}: {path}/config is missing.").format(
                replica=repository, path=repository.path),
            hint=_("Initialise the replicas first, or check the replica's path."),
        )
    if any(marker in stderr for marker in LOCKED):
        return LockedError(
            _("The repository of replica {replica} is locked by another restic process:\n{stderr}").format(
                replica=repository, stderr=stderr[-1000:]),
            hint=_("Wait for the other backup or prune to finish, then run the command again."),
        )
    return error


def version(transport: Transport) -> str:
    """Return the restic version on the host, e.g. ``0.14.0``."""
    result = transport.run([RESTIC, "version"], timeout=60)
    match = re.search(r"restic (\S+)", result.text)
    if match is None:
        raise CommandFailedError(
            _("Unexpected output of \"restic version\" on {host}: {output}").format(
                host=transport.host, output=result.text.strip()),
            host=transport.host, command="restic version", returncode=0,
        )
    return match.group(1)


def exists(repository: Repository) -> bool:
    """Return True when the repository path contains a restic ``config`` file (local paths only)."""
    result = repository.transport.run(["test", "-f", f"{repository.path}/config"], accept=(0, 1))
    return result.returncode == 0


def init(repository: Repository, password: str, *, timeout: float | None = 300) -> str:
    """Create a repository (format 2) and return its repository id as printed by restic."""
    result = run(repository, password, ["init", "--repository-version", str(REPOSITORY_VERSION)], timeout=timeout)
    match = re.search(r"created restic repository (\S+)", result.text)
    repository_id = match.group(1) if match else ""
    log.info("initialised restic repository %s on %s", repository_id, repository)
    return repository_id


def cat_config(repository: Repository, password: str, *, timeout: float | None = 120) -> dict[str, Any]:
    """Return the decrypted repository config (``id``, ``version``, ``chunker_polynomial``)."""
    result = run(repository, password, ["cat", "config"], timeout=timeout)
    return json.loads(result.stdout)


def snapshots(repository: Repository, password: str, *, tags: Sequence[str] = (), host: str | None = None,
              timeout: float | None = 300) -> list[dict[str, Any]]:
    """Return the snapshots as restic's ``snapshots --json`` lists them.

    ``tags`` are AND-ed (restic takes one comma-separated ``--tag`` value as AND).
    """
    arguments = ["snapshots", "--json"]
    if tags:
        arguments += ["--tag", ",".join(tags)]
    if host is not None:
        arguments += ["--host", host]
    result = run(repository, password, arguments, timeout=timeout)
    return json.loads(result.stdout or b"[]") or []


def check(repository: Repository, password: str, *, read_data: bool = False,
          timeout: float | None = None) -> CheckResult:
    """Run ``restic check``; a failed check is a result, not an exception.

    Without ``read_data`` restic checks the structure (index, packs present, trees);
    with it restic also decrypts and hashes every blob.
    """
    arguments = ["check"] + (["--read-data"] if read_data else [])
    result = run(repository, password, arguments, accept=(0, 1), timeout=timeout)
    stderr = result.stderr.decode("utf-8", errors="replace")
    if result.returncode != 0:
        # Exit code 1 also covers a wrong password or a missing repository, which are
        # not findings about the repository's contents.
        failure = CommandFailedError(stderr, host=result.host, command=result.command,
                                     returncode=result.returncode, stderr=stderr)
        classified = _classify(repository, failure)
        if classified is not failure:
            raise classified
    output = (result.text + stderr).strip()
    return CheckResult(ok=result.returncode == 0, output=output[-CHECK_OUTPUT_LIMIT:])


def forget(repository: Repository, password: str, *, keep_last: int | None = None,
           keep_within: str | None = None, tags: Sequence[str] = (), snapshot_ids: Sequence[str] = (),
           timeout: float | None = 600) -> list[str]:
    """Run ``restic forget`` (without pruning) and return the ids of the snapshots it removed.

    Either pass ``snapshot_ids`` to remove those snapshots, or a policy (``keep_last``,
    ``keep_within`` such as ``"30d"``) applied to the snapshots carrying all ``tags``.
    """
    if snapshot_ids and (keep_last is not None or keep_within is not None or tags):
        raise InvalidInputError(_("Pass either snapshot ids or a keep policy to restic forget, not both."))
    if not snapshot_ids and keep_last is None and keep_within is None:
        raise InvalidInputError(_("restic forget needs snapshot ids or a keep policy; nothing would be kept."))

    if snapshot_ids:
        before = {snapshot["id"] for snapshot in snapshots(repository, password)}
        run(repository, password, ["forget", *snapshot_ids], timeout=timeout)
        after = {snapshot["id"] for snapshot in snapshots(repository, password)}
        return sorted(before - after)

    arguments = ["forget", "--json"]
    if keep_last is not None:
        arguments += ["--keep-last", str(keep_last)]
    if keep_within is not None:
        arguments += ["--keep-within", keep_within]
    if tags:
        arguments += ["--tag", ",".join(tags)]
    result = run(repository, password, arguments, timeout=timeout)
    removed: list[str] = []
    for group in json.loads(result.stdout or b"[]") or []:
        removed += [snapshot["id"] for snapshot in group.get("remove") or []]
    return sorted(removed)


def prune(repository: Repository, password: str, *, timeout: float | None = None) -> str:
    """Run ``restic prune`` and return its output; it needs the exclusive lock."""
    result = run(repository, password, ["prune"], timeout=timeout)
    return result.text
