"""Publish a set of files to a bucket: data first, index files last, stale files later.

The order is what keeps readers safe. Every data file is uploaded in parallel and checked.
Only when all of them are in place are the index files uploaded, one by one in the order
of the configured patterns. A reader that fetches a new index therefore finds
every file it names. The state object (``<prefix>.tacops-static/state.json``) is written
after the index; it records each file's hash and headers, so the next run skips what has
not changed, and when each file left the set, so stale files are deleted only once the
retention window has passed. A failure on one target stops that target before its index
and leaves the other targets alone; a rerun uploads what is missing and completes it.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import json
import logging
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable, Iterable, Literal

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from tacops.foundation.errors import ExitCode, InvalidInputError, TacopsError
from tacops.foundation.i18n import _
from tacops.staticzones.config import StaticZonesConfig, Target
from tacops.staticzones.http import ObjectHeaders
from tacops.staticzones.source import SourceFile

log = logging.getLogger(__name__)

MULTIPART_THRESHOLD = 64 * 1024 * 1024
STATE_VERSION = 1
_AUTH_CODES = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "InvalidToken",
               "ExpiredToken", "AuthorizationHeaderMalformed", "InvalidSecurity"}


@dataclass(frozen=True)
class PlannedFile:
    source: SourceFile
    headers: ObjectHeaders

    @property
    def path(self) -> str:
        return self.source.path


@dataclass
class TargetOutcome:
    target: str
    where: str
    ok: bool = False
    uploaded: list[str] = field(default_factory=list)
    skipped: int = 0
    bytes_uploaded: int = 0
    index_published: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    stale_kept: int = 0
    kept_published: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    hint: str | None = None
    failed_path: str | None = None
    exit_code: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, "where": self.where, "ok": self.ok, "uploaded": len(self.uploaded),
                "skipped": self.skipped, "bytes_uploaded": self.bytes_uploaded,
                "index_published": self.index_published, "deleted": self.deleted, "stale_kept": self.stale_kept,
                "kept_published": len(self.kept_published),
                "seconds": round(self.seconds, 3), "error": self.error, "hint": self.hint,
                "failed_path": self.failed_path, "exit_code": self.exit_code}


class TargetFailed(TacopsError):
    def __init__(self, message: str, *, hint: str | None, exit_code: ExitCode, path: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code  # type: ignore[misc]
        self.path = path


def matches(path: str, pattern: str) -> bool:
    """Return whether the pattern matches the whole relative path, or its end at a directory boundary."""
    pattern = pattern.lstrip("/")
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path, "*/" + pattern)


def index_rank(path: str, patterns: list[str]) -> int | None:
    for rank, pattern in enumerate(patterns):
        if matches(path, pattern):
            return rank
    return None


def make_client(target: Target, *, workers: int):
    """Make an S3 client bound to this target only: its endpoint, region and credentials."""
    credentials = target.resolve_credentials()
    session = boto3.session.Session(aws_access_key_id=credentials.access_key_id,
                                    aws_secret_access_key=credentials.secret_access_key,
                                    aws_session_token=credentials.session_token, region_name=target.region)
    # S3-compatible stores (OOS, OBS, SeaweedFS) do not all accept the streamed CRC
    # checksums that recent botocore sends by default; tacops sends Content-MD5 itself.
    config = BotoConfig(s3={"addressing_style": target.addressing_style},
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                        retries={"mode": "standard", "max_attempts": 3},
                        connect_timeout=5, read_timeout=60, max_pool_connections=max(10, workers))
    return session.client("s3", endpoint_url=target.endpoint, config=config,
                          verify=str(target.ca_bundle) if target.ca_bundle else None)


def _classify(error: Exception, target: Target, path: str | None) -> TargetFailed:
    where = target.where()
    if isinstance(error, TargetFailed):
        return error
    if isinstance(error, TacopsError):
        return TargetFailed(error.message, hint=error.hint, exit_code=error.exit_code, path=path)
    subject = _("file {path}").format(path=path) if path else _("the bucket")
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code in _AUTH_CODES or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
            return TargetFailed(
                _("Target {target} ({where}) refused the credentials for {subject}: {code} {message}").format(
                    target=target.name, where=where, subject=subject, code=code, message=message),
                hint=_("Check the keys that the target's credentials source gives, and that they may write "
                       "bucket {bucket}.").format(bucket=target.bucket),
                exit_code=ExitCode.AUTHENTICATION, path=path)
        if code in ("NoSuchBucket", "404") and path is None:
            return TargetFailed(
                _("Target {target}: the bucket {bucket} does not exist at {endpoint}.").format(
                    target=target.name, bucket=target.bucket, endpoint=target.endpoint),
                hint=_("Create it (the Pulumi programs do) or fix bucket in the configuration."),
                exit_code=ExitCode.INVALID_INPUT, path=path)
        return TargetFailed(
            _("Target {target} ({where}) failed on {subject}: {code} {message}").format(
                target=target.name, where=where, subject=subject, code=code, message=message),
            hint=_("Run the same command again: files already uploaded are skipped."),
            exit_code=ExitCode.UNEXPECTED, path=path)
    if isinstance(error, (EndpointConnectionError, BotoCoreError, ConnectionError, OSError)):
        return TargetFailed(
            _("Target {target} ({where}) is unreachable while writing {subject}: {error}").format(
                target=target.name, where=where, subject=subject, error=error),
            hint=_("Check the endpoint and the network, then run the same command again: nothing was published "
                   "there beyond data files, and the index is unchanged."),
            exit_code=ExitCode.UNREACHABLE, path=path)
    return TargetFailed(f"{type(error).__name__}: {error}", hint=None, exit_code=ExitCode.UNEXPECTED, path=path)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


class Publisher:
    """Publishes one set of files to one target."""

    def __init__(self, config: StaticZonesConfig, target: Target, *,
                 on_progress: Callable[[str, int], None] | None = None,
                 before_index: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.target = target
        self.on_progress = on_progress or (lambda target, count: None)
        self.before_index = before_index
        self.client = None
        self._lock = threading.Lock()

    # -- reading the bucket -------------------------------------------------------------
    def _read_state(self) -> dict:
        try:
            body = self.client.get_object(Bucket=self.target.bucket, Key=self.target.state_key)["Body"].read()
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return {"version": STATE_VERSION, "objects": {}, "stale": {}}
            raise
        state = json.loads(body)
        state.setdefault("objects", {})
        state.setdefault("stale", {})
        return state

    def _list(self) -> dict[str, int]:
        listed: dict[str, int] = {}
        prefix = self.target.prefix
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.target.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix):]
                if relative.startswith(self.target.state_prefix[len(prefix):]):
                    continue
                listed[relative] = item["Size"]
        return listed

    def _same_object(self, item: PlannedFile) -> bool:
        try:
            head = self.client.head_object(Bucket=self.target.bucket, Key=self.target.key(item.path))
        except ClientError:
            return False
        etag = head.get("ETag", "").strip('"')
        if etag and "-" not in etag and etag != item.source.md5:
            return False
        return (head.get("Metadata", {}).get("sha256") == item.source.sha256
                and head.get("ContentType") == item.headers.content_type
                and head.get("ContentEncoding") == item.headers.content_encoding
                and head.get("CacheControl") == item.headers.cache_control)

    # -- writing ----------------------------------------------------------------------
    def _put(self, item: PlannedFile) -> None:
        extra: dict[str, object] = {"Metadata": {"sha256": item.source.sha256}}
        if item.headers.content_type:
            extra["ContentType"] = item.headers.content_type
        if item.headers.content_encoding:
            extra["ContentEncoding"] = item.headers.content_encoding
        if item.headers.cache_control:
            extra["CacheControl"] = item.headers.cache_control
        key = self.target.key(item.path)
        if item.source.size >= MULTIPART_THRESHOLD:
            self.client.upload_file(str(item.source.local), self.target.bucket, key, ExtraArgs=extra)
            return
        md5 = bytes.fromhex(item.source.md5)
        with item.source.local.open("rb") as body:
            answer = self.client.put_object(Bucket=self.target.bucket, Key=key, Body=body,
                                            ContentMD5=base64.b64encode(md5).decode("ascii"), **extra)
        etag = answer.get("ETag", "").strip('"')
        if etag and "-" not in etag and etag != item.source.md5:
            raise TargetFailed(
                _("Target {target}: the stored copy of {path} differs from the file (ETag {etag}).").format(
                    target=self.target.name, path=item.path, etag=etag),
                hint=_("Run the same command again; if it recurs, check the storage service."),
                exit_code=ExitCode.INTEGRITY, path=item.path)

    def _upload_all(self, items: list[PlannedFile], done: list[str], counted: list[int]) -> None:
        if not items:
            return

        def upload(item: PlannedFile) -> None:
            self._put(item)
            with self._lock:
                done.append(item.path)
                counted[0] += item.source.size
            # Reported from the worker, so the main thread sleeps until the end or an error.
            self.on_progress(self.target.name, 1)

        pool = ThreadPoolExecutor(max_workers=self.config.concurrency)
        try:
            futures = {pool.submit(upload, item): item for item in items}
            finished, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in finished:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise _classify(error, self.target, futures[future].path)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _check_stored_headers(self, uploaded: list[PlannedFile]) -> None:
        """Read back one object per distinct set of headers: some stores rewrite them."""
        samples: dict[ObjectHeaders, PlannedFile] = {}
        for item in uploaded:
            samples.setdefault(item.headers, item)
        for headers, item in samples.items():
            head = self.client.head_object(Bucket=self.target.bucket, Key=self.target.key(item.path))
            stored = ObjectHeaders(head.get("ContentType"), head.get("ContentEncoding"), head.get("CacheControl"))
            for name in ("content_type", "content_encoding", "cache_control"):
                expected, found = getattr(headers, name), getattr(stored, name)
                if expected is not None and expected != found:
                    raise TargetFailed(
                        _("Target {target} stored {path} with {header} {found!r} instead of {expected!r}, so the "
                          "front would not respond like the origin.").format(
                            target=self.target.name, path=item.path, header=name.replace("_", "-"),
                            found=found, expected=expected),
                        hint=_("This storage service rewrites that header; serve the type from the front or "
                               "change the origin's rule, then run again. The index was not published."),
                        exit_code=ExitCode.INTEGRITY, path=item.path)

    def _delete(self, paths: list[str]) -> list[str]:
        deleted: list[str] = []
        if not paths:
            return deleted

        def one(path: str) -> str:
            self.client.delete_object(Bucket=self.target.bucket, Key=self.target.key(path))
            return path

        with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
            for future in [pool.submit(one, path) for path in paths]:
                try:
                    deleted.append(future.result())
                except Exception as error:  # noqa: BLE001 - a file left for the next run
                    log.warning("target %s: could not delete a stale file: %s", self.target.name, error)
        return deleted

    # -- the whole operation ------------------------------------------------------------
    def publish(self, items: list[PlannedFile], *, mode: Literal["sync", "publish"],
                prune_under: Iterable[str] = (), error_pages: dict[str, tuple[bytes, ObjectHeaders]] | None = None,
                directories: dict[str, dict] | None = None, recheck: bool = False,
                now: dt.datetime | None = None) -> TargetOutcome:
        started = time.monotonic()
        outcome = TargetOutcome(target=self.target.name, where=self.target.where())
        current: str | None = None
        try:
            self.client = make_client(self.target, workers=self.config.concurrency)
            try:
                self.client.head_bucket(Bucket=self.target.bucket)
            except ClientError as error:
                raise _classify(error, self.target, None) from None
            state = self._read_state()
            listed = self._list()
            patterns = self.config.index_patterns
            data = [item for item in items if index_rank(item.path, patterns) is None]
            indexes = sorted((item for item in items if index_rank(item.path, patterns) is not None),
                             key=lambda item: (index_rank(item.path, patterns), item.path))

            # Files that a data job published are its own: a sync from the docroot neither
            # overwrites them with older copies nor counts them as stale.
            owned = {path: entry for path, entry in state["objects"].items() if entry.get("via") == "publish"}
            if mode == "sync":
                outcome.kept_published = sorted(item.path for item in items if item.path in owned)
                items = [item for item in items if item.path not in owned]
                data = [item for item in data if item.path not in owned]
                indexes = [item for item in indexes if item.path not in owned]
            to_upload, to_check = [], []
            for item in data + indexes:
                entry = state["objects"].get(item.path)
                unchanged = (entry is not None and entry.get("sha256") == item.source.sha256
                             and entry.get("headers") == item.headers.as_dict())
                if unchanged and listed.get(item.path) == item.source.size and not recheck:
                    outcome.skipped += 1
                elif listed.get(item.path) == item.source.size:
                    to_check.append(item)
                else:
                    to_upload.append(item)
            if to_check:
                with ThreadPoolExecutor(max_workers=self.config.concurrency) as pool:
                    same = list(pool.map(self._same_object, to_check))
                for item, equal in zip(to_check, same):
                    if equal:
                        outcome.skipped += 1
                    else:
                        to_upload.append(item)
            self.on_progress(self.target.name, outcome.skipped)
            upload_paths = {item.path for item in to_upload}
            counted = [0]
            self._upload_all([item for item in data if item.path in upload_paths], outcome.uploaded, counted)
            self._check_stored_headers([item for item in data if item.path in upload_paths])
            if error_pages:
                for status, (body, headers) in sorted(error_pages.items()):
                    current = f"{self.target.state_prefix}errors/{status}"
                    extra = {"ContentType": headers.content_type} if headers.content_type else {}
                    self.client.put_object(Bucket=self.target.bucket, Key=current, Body=body, **extra)
                current = None
            # Every data file is in place: the index files may now name them.
            for item in indexes:
                if item.path not in upload_paths:
                    continue
                current = item.path
                if self.before_index is not None:
                    self.before_index(item.path)
                self._put(item)
                outcome.uploaded.append(item.path)
                outcome.index_published.append(item.path)
                counted[0] += item.source.size
                self.on_progress(self.target.name, 1)
            current = None
            outcome.bytes_uploaded = counted[0]

            moment = now or _now()
            new_paths = {item.path for item in items}
            objects = dict(state["objects"]) if mode == "publish" else dict(owned)
            for item in items:
                objects[item.path] = {"sha256": item.source.sha256, "size": item.source.size,
                                      "headers": item.headers.as_dict(), "via": mode}
            stale = {path: since for path, since in state["stale"].items() if path not in new_paths}
            prunable = (set(listed) | set(state["objects"])) - set(owned if mode == "sync" else ())
            if mode == "publish":
                prefixes = [prefix.strip("/") + "/" for prefix in prune_under]
                prunable = {path for path in prunable if any(path.startswith(prefix) for prefix in prefixes)}
            for path in sorted(prunable - new_paths):
                stale.setdefault(path, moment.isoformat())
                objects.pop(path, None)
            expired = sorted(path for path, since in stale.items()
                             if moment - dt.datetime.fromisoformat(since) >= self.config.retention)
            current = self.target.state_key
            known_directories = dict(state.get("directories", {})) if mode == "publish" else {}
            known_directories.update(directories or {})
            new_state = {"version": STATE_VERSION, "published": moment.isoformat(), "objects": objects,
                         "stale": stale, "directories": known_directories}
            self._write_state(new_state)
            current = None
            outcome.deleted = self._delete(expired)
            if outcome.deleted:
                for path in outcome.deleted:
                    stale.pop(path, None)
                self._write_state({**new_state, "stale": stale})
            outcome.stale_kept = len(stale)
            outcome.ok = True
            outcome.exit_code = 0
        except Exception as error:  # noqa: BLE001 - reported per target, the other targets go on
            failure = _classify(error, self.target, current)
            outcome.error, outcome.hint = failure.message, failure.hint
            outcome.failed_path = failure.path
            outcome.exit_code = int(failure.exit_code)
        outcome.seconds = time.monotonic() - started
        return outcome

    def _write_state(self, state: dict) -> None:
        self.client.put_object(Bucket=self.target.bucket, Key=self.target.state_key,
                               Body=json.dumps(state, ensure_ascii=False, sort_keys=True).encode("utf-8"),
                               ContentType="application/json", CacheControl="no-store")


def publish_to_targets(config: StaticZonesConfig, targets: list[Target], items: list[PlannedFile], *,
                       mode: Literal["sync", "publish"], prune_under: Iterable[str] = (),
                       error_pages: dict[str, tuple[bytes, ObjectHeaders]] | None = None,
                       directories: dict[str, dict] | None = None, recheck: bool = False,
                       on_progress: Callable[[str, int], None] | None = None,
                       before_index: Callable[[str, str], None] | None = None) -> list[TargetOutcome]:
    """Publish to every target at once; each one succeeds or fails on its own."""
    if not items:
        raise InvalidInputError(_("There is no file to publish, and an empty set is never published."),
                                hint=_("Check --from: it must contain the files of the static zone."))
    prune = list(prune_under)

    def run(target: Target) -> TargetOutcome:
        hook = (lambda path: before_index(target.name, path)) if before_index else None
        return Publisher(config, target, on_progress=on_progress, before_index=hook).publish(
            items, mode=mode, prune_under=prune, error_pages=error_pages, directories=directories,
            recheck=recheck)

    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(run, targets))


def worst_exit_code(outcomes: list[TargetOutcome]) -> int:
    failed = [outcome.exit_code for outcome in outcomes if not outcome.ok]
    return failed[0] if failed else 0




def published_state(config: StaticZonesConfig, target: Target) -> dict:
    """Read the state object of a target: the set last published and the origin's directory responses."""
    publisher = Publisher(config, target)
    try:
        publisher.client = make_client(target, workers=4)
        state = publisher._read_state()
    except Exception as error:  # noqa: BLE001 - turned into a message naming the target
        raise _classify(error, target, None) from None
    return state


def published_paths(config: StaticZonesConfig, target: Target) -> list[str]:
    return sorted(published_state(config, target)["objects"])
