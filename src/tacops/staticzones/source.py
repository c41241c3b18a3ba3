"""The files of a static zone: read from a local docroot, or from one over SSH.

Paths are kept byte for byte as relative POSIX strings (spaces, ``+``, ``%``, case and
non-ASCII characters included): they become object keys and URLs unchanged. Every file
is read and hashed before anything is uploaded, so a missing or unreadable file stops
the run before a target is touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tacops.foundation.errors import InvalidInputError, UnreachableError
from tacops.foundation.i18n import _

_CHUNK = 1 << 20
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative POSIX path, the object key below the target's prefix
    local: Path
    size: int
    sha256: str
    md5: str


def hash_file(path: Path) -> tuple[str, str, int]:
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha256.hexdigest(), md5.hexdigest(), size


def _relative(root: Path, path: Path) -> str:
    relative = path.relative_to(root).as_posix()
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(
            _("The file name {path!r} is not valid UTF-8 and cannot become an object key or URL.").format(
                path=os.fsdecode(path)),
            hint=_("Rename the file in the docroot, then run again.")) from None
    return relative


def list_files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise InvalidInputError(_("The docroot {path} does not exist or is not a directory.").format(path=root),
                                hint=_("Give the directory Apache serves (its DocumentRoot) with --from."))
    found: list[Path] = []
    errors: list[OSError] = []
    for directory, subdirectories, files in os.walk(root, onerror=errors.append):
        subdirectories.sort()
        for name in sorted(files):
            found.append(Path(directory) / name)
    if errors:
        error = errors[0]
        raise InvalidInputError(
            _("Cannot read the directory {path}: {error}").format(path=error.filename, error=error.strerror),
            hint=_("Give the user running tacops read access to it, then run again."))
    return found


class HashCache:
    """Hashes of the files of one docroot from the last run, keyed by what a write changes.

    An entry is reused only when the size, the modification and change times and the inode
    are all the same, so a rewritten file is hashed again even if a tool restored its
    modification time (its change time moves). A copy made over SSH has new change times
    and is always hashed again.
    """

    def __init__(self, path: Path | None, *, read: bool = True) -> None:
        self.path = path
        self.entries: dict[str, list] = {}
        self.changed = False
        self._lock = threading.Lock()
        if path is not None and read:
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}

    @classmethod
    def for_source(cls, location: str, *, read: bool = True) -> "HashCache":
        from tacops.foundation.paths import cache_dir

        name = hashlib.sha256(location.encode("utf-8")).hexdigest()[:24]
        return cls(cache_dir() / "static-zones" / f"{name}.json", read=read)

    @staticmethod
    def _key(status: os.stat_result) -> list:
        return [status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino]

    def get(self, relative: str, status: os.stat_result) -> tuple[str, str] | None:
        entry = self.entries.get(relative)
        if entry and entry[:4] == self._key(status):
            return entry[4], entry[5]
        return None

    def put(self, relative: str, status: os.stat_result, sha256: str, md5: str) -> None:
        with self._lock:
            self.entries[relative] = [*self._key(status), sha256, md5]
            self.changed = True

    def save(self, keep: set[str]) -> None:
        """Write the cache with the entries of the files still present; a failure only costs speed."""
        if self.path is None:
            return
        stale = set(self.entries) - keep
        if not self.changed and not stale:
            return
        for relative in stale:
            del self.entries[relative]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps(self.entries), encoding="utf-8")
            temporary.replace(self.path)
        except OSError as error:
            log.debug("hash cache %s not written: %s", self.path, error)


def scan(root: Path, *, workers: int = 4, cache: HashCache | None = None) -> list[SourceFile]:
    """List and hash every regular file below root. A symbolic link counts as the file it names."""
    root = Path(root)
    paths = list_files(root)

    def one(path: Path) -> SourceFile | None:
        relative = _relative(root, path)
        if path.is_symlink() and not path.exists():
            raise InvalidInputError(
                _("The file {path} is a symbolic link to a missing file.").format(path=relative),
                hint=_("Remove the link or restore its target, then run again."))
        if not path.is_file():
            return None
        try:
            status = path.stat()
            cached = cache.get(relative, status) if cache is not None else None
            if cached is not None:
                # Opening proves the file is still readable; its bytes are known.
                os.close(os.open(path, os.O_RDONLY))
                return SourceFile(relative, path, status.st_size, cached[0], cached[1])
            sha256, md5, size = hash_file(path)
            if cache is not None:
                cache.put(relative, status, sha256, md5)
        except OSError as error:
            raise InvalidInputError(
                _("Cannot read the file {path}: {error}").format(path=relative, error=error.strerror or error),
                hint=_("Give the user running tacops read access to it (or remove it), then run again.")) from None
        return SourceFile(relative, path, size, sha256, md5)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = [item for item in pool.map(one, paths) if item is not None]
    if cache is not None:
        cache.save({item.path for item in results})
    return results


class StagedTree:
    """A copy of a remote docroot, streamed over SSH as one tar archive into a temporary directory."""

    def __init__(self, root: Path, temporary: Path | None) -> None:
        self.root = root
        self._temporary = temporary

    def __enter__(self) -> "StagedTree":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def cleanup(self) -> None:
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None


def parse_location(text: str) -> tuple[str | None, str]:
    """``host:/path`` names a remote docroot; anything else is a local path."""
    if ":" in text and not text.startswith(("/", ".")):
        host, _sep, path = text.partition(":")
        if host and path.startswith("/"):
            return host, path
    return None, text


def stage(location: str, *, ssh_command: list[str] | None = None, work_dir: Path | None = None) -> StagedTree:
    """Return the docroot as a local tree; a remote one is copied with tar over SSH first."""
    host, path = parse_location(location)
    if host is None:
        return StagedTree(Path(path), None)
    if ssh_command is None:
        ssh_command = ["ssh", "-o", "BatchMode=yes", host]
    temporary = Path(tempfile.mkdtemp(prefix="tacops-static-", dir=work_dir))
    command = [*ssh_command, f"tar -C {_shell_quote(path)} -cf - ."]
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            assert process.stdout is not None
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                archive.extractall(temporary, filter="data")
            stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
            returncode = process.wait()
    except (tarfile.TarError, OSError) as error:
        shutil.rmtree(temporary, ignore_errors=True)
        raise UnreachableError(_("Cannot copy the docroot {path} from {host}: {error}").format(
            path=path, host=host, error=error), host=host,
            hint=_("Check that the host answers over SSH and that the path exists.")) from None
    if returncode != 0:
        shutil.rmtree(temporary, ignore_errors=True)
        raise UnreachableError(_("Cannot copy the docroot {path} from {host}: {error}").format(
            path=path, host=host, error=stderr.strip().splitlines()[-1] if stderr.strip() else returncode),
            host=host, hint=_("Check that the host answers over SSH and that the path exists."))
    return StagedTree(temporary, temporary)


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
