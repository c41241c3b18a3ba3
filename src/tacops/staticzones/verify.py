"""Parity, URL by URL, between the origin (Apache) and the bucket behind its web front.

Each URL is requested from both servers the same way (GET, ``Accept-Encoding: identity``,
no redirect followed) and compared on status, body hash, Content-Type, Content-Encoding,
Cache-Control and redirect target. The URLs are the files, each directory with and
without its trailing slash, the site root, a path that exists nowhere and the state
directory of tacops (which both must refuse). The front's TLS public keys are compared
with the pins the apps carry.
"""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

from tacops.foundation.errors import TacopsError
from tacops.foundation.i18n import _, ngettext
from tacops.staticzones.config import STATE_DIRECTORY, VerifySettings
from tacops.staticzones.http import Answer, Client, normalize_location, peer_chain_spki
from tacops.staticzones.operations import MISSING_PROBE

FIELDS = ("status", "sha256", "content_type", "content_encoding", "cache_control", "location")


@dataclass
class Difference:
    url: str
    field: str
    origin: object
    front: object

    def to_dict(self) -> dict[str, object]:
        return {"url": self.url, "field": self.field, "origin": self.origin, "front": self.front}


@dataclass
class VerifyReport:
    origin: str
    front: str
    urls: int = 0
    differences: list[Difference] = field(default_factory=list)
    pins_expected: list[str] = field(default_factory=list)
    pins_presented: list[str] = field(default_factory=list)
    pin_ok: bool | None = None
    seconds: float = 0.0
    time: str = ""

    @property
    def identical(self) -> bool:
        return not self.differences and self.pin_ok is not False

    def to_dict(self) -> dict[str, object]:
        return {"identical": self.identical, "time": self.time, "origin": self.origin, "front": self.front,
                "urls_checked": self.urls, "seconds": round(self.seconds, 3),
                "tls": {"pins_expected": self.pins_expected, "pins_presented": self.pins_presented,
                        "pin_ok": self.pin_ok},
                "differences": [difference.to_dict() for difference in self.differences]}


def url_paths(files: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """List the request paths to compare: files, directories with and without slash, probes."""
    paths: set[str] = set()
    for path in files:
        paths.add("/" + path)
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            directory = "/".join(parts[:depth])
            paths.add(f"/{directory}")
            paths.add(f"/{directory}/")
    paths.update({"/", f"/{MISSING_PROBE}", f"/{STATE_DIRECTORY}state.json"})
    paths.update(item if item.startswith("/") else "/" + item for item in extra)
    return sorted(paths)


def _request_path(path: str) -> str:
    """Make a site path ("/json/x.json") relative to the base URL. The client percent-encodes it."""
    return path[1:]


def compare(path: str, origin: Answer, front: Answer) -> list[Difference]:
    differences = []
    values = {
        "status": (origin.status, front.status),
        "content_type": (origin.headers.content_type, front.headers.content_type),
        "content_encoding": (origin.headers.content_encoding, front.headers.content_encoding),
        "cache_control": (origin.headers.cache_control, front.headers.cache_control),
        "location": (normalize_location(origin.location, origin.url), normalize_location(front.location, front.url)),
    }
    # A redirect's body is the server's own page naming its host: only its target counts.
    if 300 <= origin.status < 400 and 300 <= front.status < 400:
        del values["content_type"]
    else:
        values["sha256"] = (origin.sha256, front.sha256)
    for name in FIELDS:
        if name in values and values[name][0] != values[name][1]:
            differences.append(Difference(path, name, values[name][0], values[name][1]))
    return differences


def verify(*, origin_url: str, front_url: str, paths: list[str], settings: VerifySettings, workers: int = 16,
           on_progress: Callable[[int], None] | None = None) -> VerifyReport:
    started = time.monotonic()
    origin = Client(origin_url, option="--origin", ca_file=settings.origin_ca_file, workers=workers)
    front = Client(front_url, option="--front", ca_file=settings.ca_file, workers=workers)
    report = VerifyReport(origin=origin.base_url, front=front.base_url,
                          time=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                          pins_expected=list(settings.pins))

    # A server that is down fails the whole comparison (exit 4) rather than every URL.
    origin.get("")
    front.get("")

    def one(path: str) -> list[Difference]:
        relative = _request_path(path)
        answers = []
        for side, client in (("origin", origin), ("front", front)):
            try:
                answers.append(client.get(relative))
            except TacopsError as error:
                answers.append(error)
        if on_progress:
            on_progress(1)
        if any(isinstance(answer, TacopsError) for answer in answers):
            left, right = (answer.message if isinstance(answer, TacopsError) else answer.status
                           for answer in answers)
            return [Difference(path, "error", left, right)]
        return compare(path, answers[0], answers[1])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for differences in pool.map(one, paths):
            report.differences.extend(differences)
    report.urls = len(paths)
    if front.base_url.startswith("https://"):
        report.pins_presented = peer_chain_spki(front.base_url, ca_file=settings.ca_file)
        if settings.pins:
            report.pin_ok = any(pin in settings.pins for pin in report.pins_presented)
    elif settings.pins:
        # The apps only talk TLS: a front without it cannot present a pinned key.
        report.pin_ok = False
    origin.close()
    front.close()
    report.seconds = time.monotonic() - started
    return report


def render_summary(report: VerifyReport, *, limit: int = 50) -> str:
    lines = [_("Static zones: origin {origin} against front {front}").format(origin=report.origin,
                                                                                front=report.front),
             _("{urls} URLs compared in {seconds:.1f} s.").format(urls=report.urls, seconds=report.seconds)]
    if report.pin_ok is True:
        lines.append(_("TLS: the front presents a pinned key."))
    elif report.pin_ok is False and report.pins_presented:
        lines.append(_("TLS: NO key the front presents matches a pin. Presented: {presented}").format(
            presented=", ".join(f"sha256/{pin}" for pin in report.pins_presented)))
    elif report.pins_presented:
        lines.append(_("TLS: no pin configured (verify.pins); not checked."))
    if report.pin_ok is False and not report.pins_presented:
        lines.append(_("TLS: the front is not served over HTTPS, so it presents no key to the pins."))
    for difference in report.differences[:limit]:
        lines.append("  " + _("{url}: {field} differs: origin {origin!r}, front {front!r}").format(
            url=difference.url, field=difference.field, origin=difference.origin, front=difference.front))
    if len(report.differences) > limit:
        lines.append("  " + _("… and {count} more differences in the JSON report.").format(
            count=len(report.differences) - limit))
    if report.identical:
        lines.append(_("IDENTICAL: every URL returns the same response on the origin and on the front."))
    else:
        count = len(report.differences) + (1 if report.pin_ok is False else 0)
        lines.append(ngettext("DIFFERENT: {count} difference.", "DIFFERENT: {count} differences.", count).format(
            count=count))
    return "\n".join(lines)
