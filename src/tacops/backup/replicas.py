"""Replicas of the restic repository on the backup hosts: creation, mirroring, verification.

Replica A (the primary) is written by restic. Every other replica is a byte-for-byte
copy of the primary's files, streamed through the controller. restic names its data,
index, snapshot and key files by the SHA-256 of their contents, so each file is checked
against its name twice. The check on reading from the source keeps a corrupt primary
from spreading. The check on the target, before an atomic rename, keeps a broken
transfer from landing under its final name. All replicas therefore share the repository id, the keys and the
snapshot ids, and any of them can serve a restore.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import re
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Iterable

from tacops.backup import restic
from tacops.foundation.errors import (
    AuthenticationError,
    CommandFailedError,
    IntegrityError,
    InvalidInputError,
    UnreachableError,
)
from tacops.foundation.i18n import _
from tacops.foundation.transport import Transport

log = logging.getLogger(__name__)

# Folders whose files restic names by the SHA-256 of their contents (restic design
# document, "Repository Format"). ``config`` is the one other file a repository needs.
HASH_NAMED_FOLDERS = ("data", "index", "snapshots", "keys")
CONFIG = "config"
# Scratch folder inside the repository for files in transit. It is on the same file
# system as the final paths, so the rename is atomic, and restic never lists it.
INCOMING = ".tacops-incoming"
# Copy order for a mirror: a target that stops half-way never has a snapshot whose
# index or packs are still missing.
COPY_ORDER = ("keys", CONFIG, "data", "index", "snapshots")
# Delete order after retention: snapshots first, packs last, for the same reason.
DELETE_ORDER = ("snapshots", "index", "data", "keys")

_SHA256 = re.compile(r"[0-9a-f]{64}")
HASH_MISMATCH_EXIT = 65
FILE_TIMEOUT = 900
CHECK_TIMEOUT = 6 * 3600


@dataclass(frozen=True)
class Replica:
    """A copy of the repository at ``path`` on the backup host reached by ``transport``."""

    name: str
    transport: Transport
    path: str

    @property
    def repository(self) -> restic.Repository:
        return restic.Repository(self.transport, self.path, self.name)

    def __str__(self) -> str:
        return f"{self.name} ({self.transport.host}:{self.path})"


@dataclass(frozen=True)
class BadFile:
    """A repository file whose SHA-256 differs from its name (``found`` is empty when unreadable)."""

    path: str
    expected: str
    found: str


@dataclass
class MirrorResult:
    source: str
    target: str
    files_copied: int = 0
    bytes_copied: int = 0
    files_replaced: int = 0
    files_deleted: int = 0
    files_skipped: list[str] = field(default_factory=list)
    duration: float = 0.0


@dataclass
class ReplicaVerification:
    """Outcome of one replica's verification: file hashes, ``restic check`` and reachability."""

    replica: str
    ok: bool = False
    reachable: bool = True
    files_checked: int = 0
    bytes_checked: int = 0
    bad_files: list[BadFile] = field(default_factory=list)
    check_ok: bool = False
    check_output: str = ""
    authentication_failed: bool = False
    error: str = ""
    duration: float = 0.0

    def reason(self) -> str:
        """Return why the replica is not healthy, in one line (empty when it is)."""
        if self.ok:
            return ""
        if not self.reachable:
            return _("unreachable: {error}").format(error=self.error)
        parts = []
        if self.bad_files:
            names = ", ".join(bad.path for bad in self.bad_files[:5])
            more = len(self.bad_files) - 5
            parts.append(_("{count} file(s) do not match their SHA-256 name: {names}").format(
                count=len(self.bad_files), names=names + (f" (+{more})" if more > 0 else "")))
        if self.error:
            parts.append(self.error)
        elif not self.check_ok:
            last_line = self.check_output.strip().splitlines()[-1:] or [""]
            parts.append(_("restic check failed: {line}").format(line=last_line[0]))
        return "; ".join(parts)


def classify(relative_path: str) -> str | None:
    """Return the repository folder of a file (``data``, ``config``…) or None for files a mirror skips.

    Skipped: lock files (they belong to one restic process on one host), files in
    transit and anything restic would not have written.
    """
    if relative_path == CONFIG:
        return CONFIG
    parts = relative_path.split("/")
    if parts[0] == "data" and len(parts) == 3 and re.fullmatch(r"[0-9a-f]{2}", parts[1]) \
            and _SHA256.fullmatch(parts[2]) and parts[2].startswith(parts[1]):
        return "data"
    if parts[0] in ("index", "snapshots", "keys") and len(parts) == 2 and _SHA256.fullmatch(parts[1]):
        return parts[0]
    return None


def list_files(replica: Replica, *, must_exist: bool = True) -> dict[str, int]:
    """Return every file of the replica's repository as {relative path: size in bytes}."""
    script = 'if [ -d "$1" ]; then exec find "$1" -type f -printf "%P %s\\n"; else exit 66; fi'
    result = replica.transport.run(["sh", "-c", script, "list", replica.path], accept=(0, 66), timeout=600)
    if result.returncode == 66:
        if must_exist:
            raise IntegrityError(
                _("Replica {replica} has no repository folder {path}.").format(replica=replica, path=replica.path),
                hint=_("Initialise the replicas first, or check the replica's path."),
            )
        return {}
    files: dict[str, int] = {}
    for line in result.text.splitlines():
        path, _space, size = line.rpartition(" ")
        if path:
            files[path] = int(size)
    return files


# Mirroring.

# Receives one file on standard input, checks its SHA-256 and moves it into place.
# Arguments: repository, relative path, expected SHA-256.
_RECEIVE = r"""
set -eu
umask 077
repository=$1; relative=$2; expected=$3
incoming="$repository/.tacops-incoming"
mkdir -p "$incoming" "$(dirname "$repository/$relative")"
tmp="$incoming/$(basename "$relative").$$"
cat > "$tmp"
found=$(sha256sum "$tmp" | cut -d " " -f 1)
if [ "$found" != "$expected" ]; then
    rm -f "$tmp"
    echo "$found"
    exit 65
fi
chmod 0400 "$tmp"
sync "$tmp"
mv -f "$tmp" "$repository/$relative"
"""

# Creates the empty folders restic's local backend expects in a repository.
_SKELETON = r"""
set -eu
umask 077
mkdir -p "$1"
cd "$1"
mkdir -p index keys locks snapshots
for first in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do
    for second in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do
        mkdir -p "data/$first$second"
    done
done
rm -rf .tacops-incoming
"""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_source_file(source: Replica, relative: str, size: int, folder: str) -> tuple[bytes, str]:
    """Read one file from the source and check it against its name before it goes anywhere."""
    data = source.transport.run(["cat", "--", f"{source.path}/{relative}"], timeout=FILE_TIMEOUT).stdout
    digest = _sha256(data)
    if folder != CONFIG and digest != relative.rsplit("/", 1)[-1]:
        raise IntegrityError(
            _("File {path} of source replica {replica} does not match its name: SHA-256 is {found}. "
              "It was not copied.").format(path=relative, replica=source, found=digest),
            hint=_("Verify the source replica and restore from a healthy one; do not mirror a corrupt replica."),
        )
    if len(data) != size:
        raise IntegrityError(
            _("File {path} of source replica {replica} changed size during the mirror ({listed} then {read} "
              "bytes).").format(path=relative, replica=source, listed=size, read=len(data)),
            hint=_("Make sure no restic prune runs on the source during a mirror, then run the mirror again."),
        )
    return data, digest


def _write_target_file(target: Replica, relative: str, data: bytes, expected: str) -> None:
    result = target.transport.run(["sh", "-c", _RECEIVE, "receive", target.path, relative, expected],
                                  input=data, accept=(0, HASH_MISMATCH_EXIT), timeout=FILE_TIMEOUT)
    if result.returncode == HASH_MISMATCH_EXIT:
        raise IntegrityError(
            _("File {path} arrived damaged on replica {replica}: SHA-256 {found}, expected {expected}. "
              "The replica's existing files were left unchanged.").format(
                path=relative, replica=target, found=result.text.strip(), expected=expected),
            hint=_("Check the disk and memory of the backup host, then run the mirror again."),
        )


def _remote_sha256(replica: Replica, relative: str) -> str:
    result = replica.transport.run(["sha256sum", "--", f"{replica.path}/{relative}"], timeout=FILE_TIMEOUT)
    return result.text.split(" ", 1)[0]


def _sorted_by_order(paths: Iterable[str], order: tuple[str, ...]) -> list[str]:
    return sorted(paths, key=lambda path: (order.index(classify(path) or CONFIG), path))


def mirror(source: Replica, target: Replica, *, delete_extra: bool = False) -> MirrorResult:
    """Copy to ``target`` every repository file of ``source`` that it lacks, each checked on both ends.

    A file present on both sides with the same size is not read again, because its name
    is its content. A file whose size differs is replaced. With ``delete_extra``, files the
    source no longer has are deleted from the target, and only after every copy
    succeeded. Raises IntegrityError, naming the file and the replica, when a source
    file does not match its name, a copy arrives damaged, or the target contains another
    repository; the target's existing files are then unchanged.
    """
    started = time.monotonic()
    result = MirrorResult(source=source.name, target=target.name)

    source_files = list_files(source)
    if CONFIG not in source_files:
        raise IntegrityError(
            _("Source replica {replica} has no repository: {path}/config is missing.").format(
                replica=source, path=source.path),
            hint=_("Initialise the replicas first."),
        )
    target_files = list_files(target, must_exist=False)

    wanted: dict[str, int] = {}
    for path, size in source_files.items():
        if classify(path) is None:
            if not path.startswith(("locks/", INCOMING + "/")):
                result.files_skipped.append(path)
            continue
        wanted[path] = size
    if result.files_skipped:
        log.warning("mirror %s -> %s: skipped %d file(s) restic does not write: %s", source.name, target.name,
                    len(result.files_skipped), ", ".join(result.files_skipped[:10]))

    if CONFIG in target_files:
        _check_same_repository(source, target)
    target.transport.run(["sh", "-c", _SKELETON, "skeleton", target.path], timeout=120)

    to_copy = _sorted_by_order([path for path, size in wanted.items() if target_files.get(path) != size],
                               COPY_ORDER)
    if to_copy:
        expected = _check_source_files(source, to_copy, wanted)
        _stream_files(source, target, to_copy)
        _install_received_files(target, expected)
    for relative in to_copy:
        if relative in target_files:
            result.files_replaced += 1
            log.warning("mirror %s -> %s: replaced %s, whose size differed", source.name, target.name, relative)
        result.files_copied += 1
        result.bytes_copied += wanted[relative]

    if delete_extra:
        extra = [path for path in target_files if path not in wanted and classify(path) not in (None, CONFIG)]
        _delete_files(target, _sorted_by_order(extra, DELETE_ORDER))
        result.files_deleted = len(extra)

    result.duration = time.monotonic() - started
    log.info("mirror %s -> %s: %d file(s), %d bytes copied, %d deleted in %.1f s", source.name, target.name,
             result.files_copied, result.bytes_copied, result.files_deleted, result.duration)
    return result


# Runs on a backup host: reads NUL-separated relative paths on standard input, hashes
# each file and prints {path: [sha256, size]} as JSON.
_HASH_FILES = r"""
import hashlib, json, os, sys
root = sys.argv[1]
report = {}
for relative in sys.stdin.buffer.read().decode().split("\0"):
    if not relative:
        continue
    digest = hashlib.sha256()
    size = 0
    with open(os.path.join(root, relative), "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    report[relative] = [digest.hexdigest(), size]
json.dump(report, sys.stdout)
"""

# Runs on the target: checks every received file in the incoming folder against the
# expected SHA-256 (argv[2], JSON), then syncs and renames them into place in the given
# order, so a snapshot never lands before the data it names. Exits 65 listing the
# damaged files, and moves nothing, when one does not match.
_INSTALL_RECEIVED = r"""
import hashlib, json, os, sys
root, expected = sys.argv[1], json.loads(sys.argv[2])
incoming = os.path.join(root, ".tacops-incoming")
bad = []
for relative, digest in expected:
    sha = hashlib.sha256()
    with open(os.path.join(incoming, relative), "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            sha.update(chunk)
    if sha.hexdigest() != digest:
        bad.append([relative, digest, sha.hexdigest()])
if bad:
    json.dump(bad, sys.stdout)
    sys.exit(65)
os.sync()
for relative, digest in expected:
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.chmod(os.path.join(incoming, relative), 0o400)
    os.replace(os.path.join(incoming, relative), path)
"""


def _check_source_files(source: Replica, paths: list[str], sizes: dict[str, int]) -> list[list[str]]:
    """Hash the files to copy on the source host; raise IntegrityError unless each matches its name.

    Returns [path, sha256] pairs, the values the target must find after the copy.
    """
    listing = b"".join(path.encode() + b"\0" for path in paths)
    report = json.loads(source.transport.run(["python3", "-c", _HASH_FILES, source.path], input=listing,
                                             timeout=FILE_TIMEOUT).stdout)
    expected = []
    for relative in paths:
        digest, size = report[relative]
        if classify(relative) != CONFIG and digest != relative.rsplit("/", 1)[-1]:
            raise IntegrityError(
                _("File {path} of source replica {replica} does not match its name: SHA-256 is {found}. "
                  "It was not copied.").format(path=relative, replica=source, found=digest),
                hint=_("Verify the source replica and restore from a healthy one; do not mirror a corrupt replica."),
            )
        if size != sizes[relative]:
            raise IntegrityError(
                _("File {path} of source replica {replica} changed size during the mirror ({listed} then {read} "
                  "bytes).").format(path=relative, replica=source, listed=sizes[relative], read=size),
                hint=_("Make sure no restic prune runs on the source during a mirror, then run the mirror again."),
            )
        expected.append([relative, digest])
    return expected


def _command_argv(transport: Transport, command: str) -> list[str]:
    """Return the argv that runs the shell ``command`` through ``transport``, for a pipe between hosts."""
    if hasattr(transport, "ssh_command"):
        return [*transport.ssh_command(), "--", command]
    return ["/bin/sh", "-c", command]


def _stream_files(source: Replica, target: Replica, paths: list[str]) -> None:
    """Stream the files as one tar archive from the source host into the target's incoming folder.

    The bytes pass through this process's pipes only, so memory use does not grow with
    the size of the repository, and one SSH session per side replaces one per file.
    """
    incoming = f"{target.path}/{INCOMING}"
    send = _command_argv(source.transport, f"tar --create --file=- --directory={shlex.quote(source.path)} "
                                           f"--null --files-from=-")
    receive = _command_argv(target.transport, f"rm -rf {shlex.quote(incoming)} && mkdir -p {shlex.quote(incoming)} "
                                              f"&& tar --extract --file=- --directory={shlex.quote(incoming)}")
    listing = b"".join(path.encode() + b"\0" for path in paths)
    sender = subprocess.Popen(send, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    receiver = subprocess.Popen(receive, stdin=sender.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sender.stdout.close()
    sender.stdin.write(listing)
    sender.stdin.close()
    try:
        _receiver_out, receiver_err = receiver.communicate(timeout=FILE_TIMEOUT)
        sender_err = sender.stderr.read()
        sender.wait(timeout=60)
    except subprocess.TimeoutExpired:
        sender.kill()
        receiver.kill()
        raise CommandFailedError(_("Copying {count} file(s) from {source} to {target} timed out.").format(
            count=len(paths), source=source, target=target), host=target.name, command="tar", returncode=-1) from None
    if sender.returncode != 0 or receiver.returncode != 0:
        stderr = (sender_err + receiver_err).decode(errors="replace").strip()
        raise CommandFailedError(
            _("Copying {count} file(s) from {source} to {target} failed (tar exit codes {sent} and {received}): "
              "{stderr}").format(count=len(paths), source=source, target=target, sent=sender.returncode,
                                 received=receiver.returncode, stderr=stderr[-1500:]),
            host=target.name, command="tar", returncode=sender.returncode or receiver.returncode, stderr=stderr)


def _install_received_files(target: Replica, expected: list[list[str]]) -> None:
    result = target.transport.run(["python3", "-c", _INSTALL_RECEIVED, target.path, json.dumps(expected)],
                                  accept=(0, HASH_MISMATCH_EXIT), timeout=FILE_TIMEOUT)
    if result.returncode == HASH_MISMATCH_EXIT:
        relative, wanted, found = json.loads(result.stdout)[0]
        target.transport.run(["rm", "-rf", "--", f"{target.path}/{INCOMING}"], timeout=120)
        raise IntegrityError(
            _("File {path} arrived damaged on replica {replica}: SHA-256 {found}, expected {expected}. "
              "The replica's existing files were left unchanged.").format(
                path=relative, replica=target, found=found, expected=wanted),
            hint=_("Check the disk and memory of the backup host, then run the mirror again."),
        )


def _check_same_repository(source: Replica, target: Replica) -> None:
    """Raise IntegrityError when the target's ``config`` differs, because the target contains another repository."""
    source_digest = _remote_sha256(source, CONFIG)
    target_digest = _remote_sha256(target, CONFIG)
    if source_digest != target_digest:
        raise IntegrityError(
            _("Replica {target} contains another repository than {source} (their config files differ). "
              "Nothing was copied.").format(target=target, source=source),
            hint=_("Move the other repository away, or check the replica paths in the inventory."),
        )


def _delete_files(target: Replica, relative_paths: list[str]) -> None:
    if not relative_paths:
        return
    listing = b"".join(path.encode() + b"\0" for path in relative_paths)
    target.transport.run(["sh", "-c", 'cd "$1" && xargs -0 rm -f --', "delete", target.path],
                         input=listing, timeout=FILE_TIMEOUT)
    log.info("deleted %d file(s) from replica %s", len(relative_paths), target.name)


# Verification.

# Runs on the backup host: hashes every file of the hash-named folders and prints one
# JSON object with the counts and the files whose SHA-256 differs from their name.
_HASH_CHECK = r"""
import hashlib, json, os, re, sys
root = sys.argv[1]
report = {"config": os.path.isfile(os.path.join(root, "config")), "files": 0, "bytes": 0, "bad": []}
for folder in ("data", "index", "snapshots", "keys"):
    for directory, subdirectories, names in os.walk(os.path.join(root, folder)):
        subdirectories.sort()
        for name in sorted(names):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            digest = hashlib.sha256()
            try:
                with open(path, "rb") as stream:
                    for chunk in iter(lambda: stream.read(1 << 20), b""):
                        digest.update(chunk)
                        report["bytes"] += len(chunk)
            except OSError as error:
                report["bad"].append([relative, name, "unreadable: %s" % error.strerror])
                continue
            report["files"] += 1
            if digest.hexdigest() != name:
                report["bad"].append([relative, name, digest.hexdigest()])
json.dump(report, sys.stdout)
"""


def _hash_check(replica: Replica, timeout: float | None) -> dict:
    result = replica.transport.run(["python3", "-c", _HASH_CHECK, replica.path], timeout=timeout)
    return json.loads(result.stdout)


def verify(replica: Replica, password: str, *, read_data: bool = False,
           timeout: float | None = CHECK_TIMEOUT) -> ReplicaVerification:
    """Verify one replica on its own backup host and return the outcome; a failure is a result.

    Every file under data/, index/, snapshots/ and keys/ is hashed against its name
    (this finds any damaged byte, like ``check --read-data`` but without decrypting),
    then ``restic check`` verifies the structure, which also finds missing packs.
    """
    started = time.monotonic()
    outcome = ReplicaVerification(replica=replica.name)
    try:
        report = _hash_check(replica, timeout)
        outcome.files_checked = report["files"]
        outcome.bytes_checked = report["bytes"]
        outcome.bad_files = [BadFile(path, expected, found) for path, expected, found in report["bad"]]
        if not report["config"]:
            outcome.error = _("no repository at {path} (config is missing)").format(path=replica.path)
        else:
            check = restic.check(replica.repository, password, read_data=read_data, timeout=timeout)
            outcome.check_ok = check.ok
            outcome.check_output = check.output
    except UnreachableError as error:
        outcome.reachable = False
        outcome.error = error.message
    except AuthenticationError as error:
        outcome.authentication_failed = True
        outcome.error = error.message
    except (CommandFailedError, IntegrityError) as error:
        outcome.error = error.message

    outcome.ok = outcome.reachable and not outcome.bad_files and outcome.check_ok and not outcome.error
    outcome.duration = time.monotonic() - started
    if outcome.ok:
        log.info("replica %s verified: %d file(s), %d bytes in %.1f s", replica.name, outcome.files_checked,
                 outcome.bytes_checked, outcome.duration)
    else:
        log.warning("replica %s failed verification: %s", replica.name, outcome.reason())
    return outcome


def snapshot_ids(replica: Replica, password: str) -> list[str]:
    """Return the sorted full ids of the replica's snapshots, to compare replicas."""
    return sorted(snapshot["id"] for snapshot in restic.snapshots(replica.repository, password))


class ReplicaSet:
    """The replicas of one system's repository; the first one is the primary, written by restic."""

    def __init__(self, replicas: list[Replica]) -> None:
        if not replicas:
            raise InvalidInputError(_("A replica set needs at least one replica."))
        names = [replica.name for replica in replicas]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidInputError(_("Replica names must be unique; repeated: {names}.").format(
                names=", ".join(duplicates)))
        locations = [(replica.transport.host, replica.path) for replica in replicas]
        if len(set(locations)) != len(locations):
            raise InvalidInputError(_("Two replicas point to the same path on the same host."))
        self.replicas = list(replicas)

    @property
    def primary(self) -> Replica:
        return self.replicas[0]

    @property
    def others(self) -> list[Replica]:
        return self.replicas[1:]

    def __iter__(self):
        return iter(self.replicas)

    def by_name(self, name: str) -> Replica:
        for replica in self.replicas:
            if replica.name == name:
                return replica
        raise InvalidInputError(_("Replica {name!r} not found; known replicas: {known}.").format(
            name=name, known=", ".join(replica.name for replica in self.replicas)))

    def init_replicas(self, password: str) -> dict[str, MirrorResult]:
        """Create the repository on the primary when absent, then mirror it to every other replica."""
        if restic.exists(self.primary.repository):
            log.info("replica %s already contains a repository", self.primary.name)
        else:
            restic.init(self.primary.repository, password)
        return self.mirror_all()

    def mirror_all(self, *, delete_extra: bool = False) -> dict[str, MirrorResult]:
        """Mirror the primary to every other replica, in order; stop at the first failure."""
        return {other.name: mirror(self.primary, other, delete_extra=delete_extra) for other in self.others}

    def verify_all(self, password: str, *, read_data: bool = False) -> list[ReplicaVerification]:
        """Verify every replica at once: each runs on its own backup host, so they overlap."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.replicas)) as pool:
            return list(pool.map(lambda replica: verify(replica, password, read_data=read_data), self.replicas))

    def first_healthy(self, password: str) -> tuple[Replica, list[ReplicaVerification]]:
        """Verify replicas in order and return the first healthy one with the verifications made.

        Raises AuthenticationError when the password opens no replica, and IntegrityError
        listing every replica and its fault when none is healthy. Nothing is modified.
        """
        verifications: list[ReplicaVerification] = []
        for replica in self.replicas:
            outcome = verify(replica, password)
            verifications.append(outcome)
            if outcome.ok:
                return replica, verifications

        lines = "\n".join(f"  - {outcome.replica}: {outcome.reason()}" for outcome in verifications)
        if all(outcome.authentication_failed for outcome in verifications):
            raise AuthenticationError(
                _("The repository password opens no replica:\n{lines}").format(lines=lines),
                hint=_("Check the key material read from custody (tacops reads it with the operator secret)."),
            )
        raise IntegrityError(
            _("No healthy replica is left:\n{lines}").format(lines=lines),
            hint=_("Nothing was changed. Repair a replica from a healthy copy, or restore from an older "
                   "backup set."),
        )

    def snapshot_ids(self, password: str) -> dict[str, list[str]]:
        return {replica.name: snapshot_ids(replica, password) for replica in self.replicas}
