"""sync and publish: read the files, take their headers from the origin, publish them."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tacops.foundation.errors import InvalidInputError, UnreachableError
from tacops.foundation.i18n import _
from tacops.staticzones.config import STATE_DIRECTORY, StaticZonesConfig, Target
from tacops.staticzones.http import Client, ObjectHeaders, normalize_location
from tacops.staticzones.publisher import PlannedFile, TargetOutcome, index_rank, matches, publish_to_targets
from tacops.staticzones.source import HashCache, SourceFile, scan, stage

log = logging.getLogger(__name__)

# A path no docroot contains: the origin's response to it is its "not found" page.
MISSING_PROBE = "tacops-parity-probe/does-not-exist.json"


@dataclass
class RunResult:
    outcomes: list[TargetOutcome]
    files: int
    not_served: list[tuple[str, int]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)

    def to_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "files": self.files, "seconds": round(self.seconds, 3),
                "not_served_by_origin": [{"path": path, "status": status} for path, status in self.not_served],
                "targets": [outcome.to_dict() for outcome in self.outcomes]}


def origin_headers(origin: Client, files: list[SourceFile], *, workers: int,
                   on_progress: Callable[[int], None] | None = None) -> tuple[dict[str, ObjectHeaders],
                                                                            list[tuple[str, int]]]:
    """Ask the origin for each file's headers (HEAD, no compression); list the files it does not serve."""
    def one(item: SourceFile):
        answer = origin.head(item.path)
        if on_progress:
            on_progress(1)
        return item.path, answer

    headers: dict[str, ObjectHeaders] = {}
    refused: list[tuple[str, int]] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, answer in pool.map(one, files):
            if answer.status == 200:
                headers[path] = answer.headers
            else:
                refused.append((path, answer.status))
    return headers, refused


def directories_of(paths: Iterable[str]) -> list[str]:
    """List every directory that contains a file, the root ("") included."""
    found = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            found.add("/".join(parts[:depth]))
    return sorted(found)


def origin_behaviour(origin: Client, paths: list[str], *, workers: int) -> tuple[dict[str, dict], dict]:
    """Record the origin's responses beyond files, for the front to reproduce.

    These are each directory with and without its slash, and the origin's own "not found"
    and "forbidden" pages."""
    directories = directories_of(paths)

    def one(directory: str) -> tuple[str, dict]:
        entry: dict[str, object] = {}
        slash = origin.get(directory + "/" if directory else "", keep_body=True)
        entry["slash"] = {"status": slash.status}
        if directory:
            bare = origin.get(directory)
            entry["bare"] = {"status": bare.status,
                             "location": normalize_location(bare.location, bare.url) if bare.location else None}
        return directory, entry | {"_body": slash}

    behaviour: dict[str, dict] = {}
    pages: dict[str, tuple[bytes, ObjectHeaders]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for directory, entry in pool.map(one, directories):
            answer = entry.pop("_body")
            if answer.status in (403, 404) and str(answer.status) not in pages:
                pages[str(answer.status)] = (answer.body or b"", answer.headers)
            behaviour[directory] = entry
    missing = origin.get(MISSING_PROBE, keep_body=True)
    if missing.status == 404:
        pages["404"] = (missing.body or b"", missing.headers)
    return behaviour, pages


def _check_reserved(files: list[SourceFile]) -> None:
    for item in files:
        if item.path.startswith(STATE_DIRECTORY):
            raise InvalidInputError(
                _("The file {path} lies in {directory}, which tacops keeps for its own state.").format(
                    path=item.path, directory=STATE_DIRECTORY), hint=_("Move or rename it, then run again."))


def sync(config: StaticZonesConfig, *, source: str, origin_url: str, targets: list[Target],
         ssh_command: list[str] | None = None, recheck: bool = False, on_stage: Callable[[str, int | None], None] | None = None,
         on_progress: Callable[[str, int], None] | None = None,
         before_index: Callable[[str, str], None] | None = None) -> RunResult:
    started = time.monotonic()
    stage_callback = on_stage or (lambda name, total: None)
    with stage(source, ssh_command=ssh_command) as tree:
        stage_callback("scan", None)
        # --recheck hashes every file again and refreshes the cache.
        files = scan(tree.root, workers=min(config.concurrency, 4),
                     cache=HashCache.for_source(source, read=not recheck))
        _check_reserved(files)
        if not files:
            raise InvalidInputError(_("The docroot {path} contains no file, and an empty set is never published.").format(
                path=source), hint=_("Check --from: it must be the directory Apache serves."))
        origin = Client(origin_url, option="--origin", ca_file=config.verify.origin_ca_file,
                        workers=config.concurrency)
        stage_callback("origin", len(files))
        headers, refused = origin_headers(origin, files, workers=config.concurrency,
                                          on_progress=lambda count: on_progress("origin", count) if on_progress
                                          else None)
        served = [item for item in files if item.path in headers]
        if not served:
            raise UnreachableError(
                _("The origin {url} serves none of the {count} files of {path}.").format(
                    url=origin.base_url, count=len(files), path=source), host=origin.host,
                hint=_("Check that --origin is the server that serves --from."))
        stage_callback("directories", None)
        directories, pages = origin_behaviour(origin, [item.path for item in served], workers=config.concurrency)
        origin.close()
        items = [PlannedFile(item, headers[item.path]) for item in served]
        stage_callback("upload", len(items))
        outcomes = publish_to_targets(config, targets, items, mode="sync", error_pages=pages,
                                      directories=directories, recheck=recheck, on_progress=on_progress,
                                      before_index=before_index)
    return RunResult(outcomes=outcomes, files=len(items), not_served=refused, seconds=time.monotonic() - started)


def check_zone_path(path: str) -> str:
    """Return a path of the zone without its outer slashes; reject one that could leave the prefix."""
    cleaned = path.strip("/")
    if cleaned and (any(part in ("", ".", "..") for part in cleaned.split("/")) or "\\" in cleaned):
        raise InvalidInputError(
            _("--under {path!r} is not a plain path of the zone (no '.', '..', '//' or backslash).").format(
                path=path), hint=_("Give a relative path such as v1."))
    return cleaned


def headers_from_rules(config: StaticZonesConfig, files: list[SourceFile]) -> dict[str, ObjectHeaders]:
    headers: dict[str, ObjectHeaders] = {}
    for item in files:
        rule = next((rule for rule in config.headers if matches(item.path, rule.pattern)), None)
        if rule is None:
            raise InvalidInputError(
                _("No header rule matches {path}, and no --origin was given to read its headers from.").format(
                    path=item.path),
                hint=_("Add a rule for it under headers in the static-zones configuration, or give --origin."))
        headers[item.path] = ObjectHeaders(rule.content_type, rule.content_encoding, rule.cache_control)
    return headers


def publish(config: StaticZonesConfig, *, directory: Path, targets: list[Target], under: str = "",
            origin_url: str | None = None, prune_under: Iterable[str] = (), require_one_index: bool = False,
            on_progress: Callable[[str, int], None] | None = None,
            before_index: Callable[[str, str], None] | None = None) -> RunResult:
    """Publish the files an upstream job produced (news, key figures, CLEA clusters), index last."""
    started = time.monotonic()
    prefix = check_zone_path(under)
    files = scan(Path(directory), workers=min(config.concurrency, 4))
    if prefix:
        files = [SourceFile(f"{prefix}/{item.path}", item.local, item.size, item.sha256, item.md5) for item in files]
    _check_reserved(files)
    if not files:
        raise InvalidInputError(_("{path} contains no file, and an empty set is never published.").format(path=directory),
                                hint=_("Check that the job that produces the files has finished."))
    indexes = [item.path for item in files if index_rank(item.path, config.index_patterns) is not None]
    if require_one_index and len(indexes) != 1:
        raise InvalidInputError(
            _("Expected exactly one index file in {path}, found {count}: {names}.").format(
                path=directory, count=len(indexes), names=", ".join(indexes) or "-"),
            hint=_("The job must produce one index (such as clusterIndex.json) beside its data files."))
    refused: list[tuple[str, int]] = []
    if origin_url:
        origin = Client(origin_url, option="--origin", ca_file=config.verify.origin_ca_file,
                        workers=config.concurrency)
        headers, refused = origin_headers(origin, files, workers=config.concurrency)
        origin.close()
        if refused:
            path, status = refused[0]
            raise InvalidInputError(
                _("The origin returns {status} for {path}, so its headers cannot be read there.").format(
                    status=status, path=path),
                hint=_("Publish the file on the origin first, or leave out --origin to use the header rules."))
    else:
        headers = headers_from_rules(config, files)
    items = [PlannedFile(item, headers[item.path]) for item in files]
    outcomes = publish_to_targets(config, targets, items, mode="publish", prune_under=prune_under,
                                  on_progress=on_progress, before_index=before_index)
    return RunResult(outcomes=outcomes, files=len(items), not_served=refused, seconds=time.monotonic() - started)
