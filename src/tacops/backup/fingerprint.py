"""Collect the fingerprint of a host and compare two fingerprints.

A fingerprint is the JSON document that ``collector.py`` prints on the host: families
``packages``, ``units``, ``sockets``, ``users``, ``groups``, ``trees``, ``databases``,
``hsm`` and ``routes``, plus ``meta``. :func:`compare` lists every difference in one
family, so a report can name each changed path, package, unit, table or route.
"""

from __future__ import annotations

import json
import re
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from tacops.foundation.description import Identity, SystemDescription
from tacops.foundation.errors import CommandFailedError, TacopsError
from tacops.foundation.i18n import _
from tacops.foundation.transport import Transport

log = logging.getLogger(__name__)

FAMILIES = ("packages", "units", "sockets", "users", "groups", "trees", "databases", "hsm", "routes")
# Families that need running services: in sleep mode they are compared after the wake.
DEFERRED_IN_SLEEP = ("databases", "routes")
COLLECTOR_FILE = Path(__file__).with_name("collector.py")
REMOTE_COLLECTOR_PATH = "/run/tacops-collector.py"
HSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
HSM_CONFIG = "/etc/softhsm/softhsm2.cfg"
# Token label that the lab's crypto stand-in creates (lab/fixtures/crypto_standin.py).
HSM_TOKEN_LABEL = "robert"
# Value put in place of ``{id}`` in route paths: an id that exists on no server, so a
# captcha route returns the same response on every restore.
PLACEHOLDER_ROUTE_ID = "00000000000000000000000000000000"
# Tree entry keys that the comparison leaves out: allocation depends on the file system
# (``sparse`` is compared instead) and a directory's mtime changes whenever an entry in
# it is created, which every restore does.
TREE_KEYS_NOT_COMPARED = ("allocated",)

Mode = Literal["operation", "sleep"]


class CollectionError(TacopsError):
    """The collector could not run on a host or printed no valid fingerprint."""


@dataclass(frozen=True)
class Difference:
    """One way a found fingerprint differs from the expected one.

    ``item`` names the path, package, unit, socket, table or route. ``attribute`` names
    the compared property (``mode``, ``sha256``, ``link_group`` ...), or is None when
    the whole item is missing or extra.
    """

    host: str
    family: str
    item: str
    expected: Any
    found: Any
    attribute: str | None = None

    def __str__(self) -> str:
        what = f"{self.item} ({self.attribute})" if self.attribute else self.item
        return f"{self.host} {self.family} {what}: expected {_short(self.expected)}, found {_short(self.found)}"

    def to_dict(self) -> dict:
        return asdict(self)


class DeferredToWake(list):
    """An empty list of differences that marks a family not compared in sleep mode.

    It is falsy like any empty list, so callers that only test for differences keep
    working, and a report shows the family as "deferred to wake" when
    ``isinstance(result, DeferredToWake)`` is true.
    """


def _short(value: Any) -> str:
    text = value if isinstance(value, str) and value else json.dumps(value, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


# Collection.


def collector_script() -> bytes:
    return COLLECTOR_FILE.read_bytes()


def collect(transport: Transport, params: dict, *, python: str = "python3", timeout: float | None = 3600,
            remote_path: str = REMOTE_COLLECTOR_PATH) -> dict:
    """Copy the collector to the host, run it with ``params`` on standard input, return its fingerprint.

    ``params`` may contain the HSM PIN, so it travels on standard input only. The script
    is removed from the host after the run unless the run times out.
    """
    host = transport.host
    try:
        transport.run(["sh", "-c", f"umask 077 && cat > {remote_path}"], input=collector_script(), timeout=300)
        result = transport.run(
            ["sh", "-c", f'{python} {remote_path}; code=$?; rm -f {remote_path}; exit "$code"'],
            input=json.dumps(params).encode(), timeout=timeout,
        )
    except CommandFailedError as error:
        raise CollectionError(
            _("Fingerprint collection failed on {host} (exit code {code}): {stderr}").format(
                host=host, code=error.returncode, stderr=error.stderr[-2000:]),
            hint=_("Check that python3 (3.11 or later) is installed on {host}.").format(host=host),
        ) from None
    stderr = result.stderr.decode("utf-8", errors="replace").strip()
    if stderr:
        log.debug("collector on %s wrote to standard error: %s", host, stderr[-2000:])
    try:
        fingerprint = json.loads(result.stdout)
    except ValueError as error:
        raise CollectionError(
            _("The collector on {host} printed no valid JSON: {error}").format(host=host, error=error)
        ) from None
    if not isinstance(fingerprint, dict) or "meta" not in fingerprint:
        raise CollectionError(_("The collector on {host} printed a document without 'meta'.").format(host=host))
    return fingerprint


def params_for_host(description: SystemDescription, host_name: str, hsm_pin: str | None = None,
                    profile: str = "lab", *, families: Iterable[str] | None = None,
                    hsm_token_label: str | None = None, hsm_key_label: str | None = None) -> dict:
    """Build the collector's parameter document for one host of ``profile``.

    The HSM key label is the name of the host's ``hsm`` state item and the token label
    is HSM_TOKEN_LABEL, unless ``hsm_key_label`` or ``hsm_token_label`` is given.
    """
    hosts = description.lab_hosts(profile)
    if host_name not in hosts:
        raise TacopsError(
            _("Host {host!r} not found in profile {profile!r}; expected one of: {known}.").format(
                host=host_name, profile=profile, known=", ".join(sorted(hosts))))
    host = hosts[host_name]
    identity = description.identity
    ignored_fields: dict[str, list[str]] = {}
    for item in identity.ignore.fields:
        ignored_fields.setdefault(item.route, []).append(item.field)
    routes = []
    for name in host.routes:
        route = description.route(name)
        path = route.path.replace("{id}", PLACEHOLDER_ROUTE_ID)
        routes.append({
            "name": route.name,
            "method": route.method,
            "url": f"https://127.0.0.1{path}",
            "host_header": route.host,
            # NOTE: POST routes get an empty JSON object, so the real services return 400.
            # That still proves the route, its status and its error body are identical.
            "body": {} if route.method in ("POST", "PUT") else None,
            "ignore_fields": sorted(set(ignored_fields.get(route.name, []) + ignored_fields.get("*", []))),
        })
    hsm = None
    hsm_items = [item for item in host.state if item.kind == "hsm"]
    if hsm_items:
        hsm = {"module": HSM_MODULE, "config": HSM_CONFIG,
               "token_label": hsm_token_label or HSM_TOKEN_LABEL,
               "key_label": hsm_key_label or hsm_items[0].name, "pin": hsm_pin}
    return {
        "host": host_name,
        "families": list(families) if families is not None else list(FAMILIES),
        "system_trees": list(identity.system_trees),
        "application_trees": list(host.trees),
        "ignore": list(identity.ignore.paths),
        "units": list(host.units),
        "databases": host.databases(),
        "hsm": hsm,
        "routes": routes,
    }


def without_secrets(params: dict) -> dict:
    """Return a copy of ``params`` with the HSM PIN removed, for logs and stored files."""
    copy = json.loads(json.dumps(params))
    if copy.get("hsm"):
        copy["hsm"]["pin"] = None
    return copy


# Comparison.


def checks_of(fingerprint: dict) -> list[tuple[str, str | None]]:
    """List the (family, part) pairs to compare: one per family, one per tree and per database."""
    checks: list[tuple[str, str | None]] = []
    for family in FAMILIES:
        if family not in fingerprint:
            continue
        if family == "trees":
            checks.extend(("trees", root) for root in sorted(fingerprint["trees"]))
        elif family == "databases":
            checks.extend(("databases", name) for name in sorted(fingerprint["databases"]))
        elif family == "hsm" and not fingerprint["hsm"].get("configured", True):
            continue
        elif family == "routes" and not fingerprint["routes"].get("items"):
            continue
        else:
            checks.append((family, None))
    return checks


def check_name(family: str, part: str | None) -> str:
    return f"{family}:{part}" if part else family


def compare(expected: dict, found: dict, *, family: str, mode: Mode = "operation",
            identity: Identity | None = None, part: str | None = None) -> list[Difference]:
    """List every difference of ``family`` between two whole fingerprints.

    ``part`` selects one tree root or one database; None compares all of them. In sleep
    mode the families that need running services return :class:`DeferredToWake`, and
    the units of interest (those with an active state in ``expected``) are expected
    disabled and inactive, with their listening sockets gone. ``identity`` supplies the
    ignored paths and units of the description.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    if mode not in ("operation", "sleep"):
        raise ValueError(f"unknown mode {mode!r}; expected 'operation' or 'sleep'")
    if mode == "sleep" and family in DEFERRED_IN_SLEEP:
        return DeferredToWake()
    host = str(found.get("meta", {}).get("host") or expected.get("meta", {}).get("host") or "?")
    context = _Context(host, family, identity)
    if family not in expected or family not in found:
        side = "expected" if family not in expected else "found"
        return [Difference(host, family, f"({family})", "collected" if side == "found" else "not collected",
                           "not collected" if side == "found" else "collected")]
    if family == "trees":
        sleeping = _sleeping_units(expected) if mode == "sleep" else set()
        return _compare_trees(context, expected["trees"], found["trees"], part, sleeping)
    if family == "databases":
        return _compare_databases(context, expected["databases"], found["databases"], part)
    differences = context.status(f"({family})", expected[family], found[family])
    if differences:
        return differences
    if family == "units":
        return _compare_units(context, expected, found, mode)
    if family == "sockets":
        return _compare_sockets(context, expected, found, mode)
    if family == "hsm":
        return context.fields("hsm", expected["hsm"], found["hsm"], skip=("status",))
    return context.mapping(expected[family].get("items", {}), found[family].get("items", {}))


def compare_all(expected: dict, found: dict, *, mode: Mode = "operation",
                identity: Identity | None = None) -> dict[str, list[Difference]]:
    """Compare every check of ``expected``; keys are :func:`check_name` values."""
    return {check_name(family, part): compare(expected, found, family=family, mode=mode, identity=identity, part=part)
            for family, part in checks_of(expected)}


class _Context:
    def __init__(self, host: str, family: str, identity: Identity | None) -> None:
        self.host = host
        self.family = family
        self.identity = identity

    def difference(self, item: str, expected: Any, found: Any, attribute: str | None = None) -> Difference:
        return Difference(self.host, self.family, item, expected, found, attribute)

    def status(self, item: str, expected: dict, found: dict) -> list[Difference]:
        """Report a side whose collection failed, so that a gap never reads as a match."""
        expected_status = expected.get("status", "ok")
        found_status = found.get("status", "ok")
        if expected_status == "ok" and found_status == "ok":
            return []
        if expected_status == found_status == "missing":
            return []
        return [self.difference(item, _status_text(expected), _status_text(found), "status")]

    def fields(self, item: str, expected: dict, found: dict, skip: Iterable[str] = ()) -> list[Difference]:
        differences = []
        for key in sorted((set(expected) | set(found)) - set(skip)):
            if expected.get(key) != found.get(key):
                differences.append(self.difference(item, expected.get(key), found.get(key), key))
        return differences

    def mapping(self, expected: dict, found: dict, *, skip_item=lambda name: False) -> list[Difference]:
        differences = []
        for name in sorted(set(expected) | set(found)):
            if skip_item(name):
                continue
            if name not in found:
                differences.append(self.difference(name, expected[name], "missing"))
            elif name not in expected:
                differences.append(self.difference(name, "absent", found[name]))
            elif isinstance(expected[name], dict) and isinstance(found[name], dict):
                differences.extend(self.fields(name, expected[name], found[name]))
            elif expected[name] != found[name]:
                differences.append(self.difference(name, expected[name], found[name]))
        return differences


def _status_text(part: dict) -> str:
    status = part.get("status", "ok")
    return status if status == "ok" else f"{status}: {part.get('reason', 'no reason given')}"


def _ignored_units(identity: Identity | None) -> set[str]:
    return set(identity.ignore.units) if identity is not None else set()


def _sleeping_units(expected: dict) -> set[str]:
    """Return the units of interest: the units that sleep stops and disables."""
    items = expected.get("units", {}).get("items", {})
    return {name for name, entry in items.items() if "active" in entry}


def _compare_units(context: _Context, expected: dict, found: dict, mode: Mode) -> list[Difference]:
    wanted = {name: dict(entry) for name, entry in expected["units"].get("items", {}).items()}
    if mode == "sleep":
        for name in _sleeping_units(expected):
            entry = wanted[name]
            if entry.get("enabled") == "enabled":
                entry["enabled"] = "disabled"
            entry["active"] = "inactive"
            entry["sub"] = "dead"
    ignored = _ignored_units(context.identity)
    # An error while reading the expected state is not expected again, but an error on
    # the found side stays a difference: an unreadable state proves nothing.
    for entry in wanted.values():
        entry.pop("error", None)
    return context.mapping(wanted, found["units"].get("items", {}), skip_item=lambda name: name in ignored)


def _template_of(unit: str) -> str:
    """Return ``name.service`` for an instance ``name@instance.service``, else ``unit``.

    Debian's postgresql.service starts its clusters as postgresql@15-main.service, so
    stopping the former stops the sockets of the latter; the same holds for any template.
    """
    name, at, rest = unit.partition("@")
    if not at:
        return unit
    return f"{name}.{rest.rpartition('.')[2]}"


def _compare_sockets(context: _Context, expected: dict, found: dict, mode: Mode) -> list[Difference]:
    wanted = dict(expected["sockets"].get("items", {}))
    ignored = _ignored_units(context.identity)
    if mode == "sleep":
        sleeping = _sleeping_units(expected)
        wanted = {name: entry for name, entry in wanted.items()
                  if not {_template_of(unit) for unit in entry.get("unit", "").split(",")} & sleeping}

    def skip(name: str) -> bool:
        entry = wanted.get(name) or found["sockets"].get("items", {}).get(name) or {}
        return bool(set(entry.get("unit", "").split(",")) & ignored)

    return context.mapping(wanted, found["sockets"].get("items", {}), skip_item=skip)


def _summary(entry: dict) -> str:
    """Describe a tree entry in one line for a missing or extra path."""
    text = f"{entry.get('type', '?')} {entry.get('mode', '?')} {entry.get('uid', '?')}:{entry.get('gid', '?')}"
    if "sha256" in entry:
        text += f" sha256 {entry['sha256'][:16]}"
    if "target" in entry:
        text += f" -> {entry['target']}"
    return text


def _compare_entry(context: _Context, path: str, expected: dict, found: dict) -> list[Difference]:
    differences = []
    # Directory mtimes change whenever an entry is added, and symlink mtimes whenever
    # `systemctl enable` recreates a link; neither says anything about the content.
    is_dir = expected.get("type") == "dir" and found.get("type") == "dir"
    is_symlink = expected.get("type") == "symlink" and found.get("type") == "symlink"
    keys = (set(expected) | set(found)) - set(TREE_KEYS_NOT_COMPARED) - {"xattrs"}
    if is_dir or is_symlink:
        keys.discard("mtime_ns")
    for key in sorted(keys):
        if expected.get(key) != found.get(key):
            differences.append(context.difference(path, expected.get(key), found.get(key), key))
    expected_xattrs = expected.get("xattrs", {})
    found_xattrs = found.get("xattrs", {})
    for name in sorted(set(expected_xattrs) | set(found_xattrs)):
        if expected_xattrs.get(name) != found_xattrs.get(name):
            differences.append(context.difference(path, expected_xattrs.get(name, "absent"),
                                                  found_xattrs.get(name, "absent"), f"xattr {name}"))
    return differences


def _is_enablement_link(path: str, units: set[str]) -> bool:
    """Return True for the links that `systemctl enable` makes for one of ``units``.

    Sleep mode disables the CT units, so their links in .wants/.requires folders and
    their SysV rc links are expected to differ from the fingerprint of the running host.
    """
    parent, _, name = path.rpartition("/")
    if parent.startswith("/etc/systemd/system/") and parent.endswith((".wants", ".requires")):
        return name in units
    if re.fullmatch(r"/etc/rc[0-6S]\.d", parent) and re.fullmatch(r"[SK][0-9]{2}.+", name):
        return f"{name[3:]}.service" in units
    return False


def _compare_tree(context: _Context, root: str, expected: dict, found: dict,
                  sleeping: set[str] = frozenset()) -> list[Difference]:
    differences = context.status(root, expected, found)
    if differences:
        return differences
    expected_items = expected.get("items", {})
    found_items = found.get("items", {})

    def absolute(relative: str) -> str:
        return root if relative == "." else f"{root.rstrip('/')}/{relative}"

    for relative in sorted(set(expected_items) | set(found_items)):
        path = absolute(relative)
        if context.identity is not None and context.identity.path_is_ignored(path):
            continue
        if sleeping and _is_enablement_link(path, sleeping):
            continue
        if relative not in found_items:
            differences.append(context.difference(path, _summary(expected_items[relative]), "missing"))
        elif relative not in expected_items:
            differences.append(context.difference(path, "absent", _summary(found_items[relative])))
        else:
            differences.extend(_compare_entry(context, path, expected_items[relative], found_items[relative]))
    return differences


def _compare_trees(context: _Context, expected: dict, found: dict, part: str | None,
                   sleeping: set[str] = frozenset()) -> list[Difference]:
    roots = [part] if part is not None else sorted(set(expected) | set(found))
    differences = []
    for root in roots:
        if root not in expected or root not in found:
            differences.append(context.difference(root, "collected" if root in expected else "not collected",
                                                  "collected" if root in found else "not collected"))
            continue
        differences.extend(_compare_tree(context, root, expected[root], found[root], sleeping))
    return differences


def _compare_databases(context: _Context, expected: dict, found: dict, part: str | None) -> list[Difference]:
    names = [part] if part is not None else sorted(set(expected) | set(found))
    differences = []
    for name in names:
        if name not in expected or name not in found:
            differences.append(context.difference(name, "collected" if name in expected else "not collected",
                                                  "collected" if name in found else "not collected"))
            continue
        database_expected, database_found = expected[name], found[name]
        status = context.status(name, database_expected, database_found)
        if status:
            differences.extend(status)
            continue
        differences.extend(context.fields(name, database_expected, database_found,
                                          skip=("status", "tables", "sequences")))
        tables = _Context(context.host, context.family, context.identity)
        differences.extend(
            Difference(d.host, d.family, f"{name}/{d.item}", d.expected, d.found, d.attribute)
            for d in tables.mapping(database_expected.get("tables", {}), database_found.get("tables", {}))
        )
        differences.extend(
            Difference(d.host, d.family, f"{name}/sequence {d.item}", d.expected, d.found, d.attribute)
            for d in tables.mapping(database_expected.get("sequences", {}), database_found.get("sequences", {}))
        )
    return differences
