#!/usr/bin/env python3
"""Collect the fingerprint of the host this script runs on.

This file is copied to a CT host and run there as ``python3 collector.py``. It uses the
standard library of Python 3.11 only (PyKCS11 is imported when an HSM is requested).
It reads one JSON parameter document on standard input, because the document may
contain the HSM PIN, and prints one JSON document, the fingerprint, on standard output.
Diagnostics go to standard error and never contain a parameter value.

Parameter document (every key optional except ``host``)::

    {"host": "robert-crypto",
     "families": ["packages", "units", ...],   # default: every family
     "system_trees": ["/etc", ...], "application_trees": ["/opt/app", ...],
     "ignore": ["/var/log", "/etc/ssh/*.tmp", ...],
     "units": ["postgresql.service"],           # units of interest
     "databases": ["robert"], "postgres": {"host": "/run/postgresql", "port": 5432},
     "hsm": {"module": "...so", "token_label": "...", "key_label": "...", "pin": "...",
             "config": "/etc/softhsm/softhsm2.cfg"} or null,
     "routes": [{"name": "...", "method": "POST", "url": "https://127.0.0.1/api/v6/register",
                 "host_header": "api.example", "body": {} or null, "ignore_fields": ["serverTime"]}]}

Every family in the output is a mapping with ``status`` set to ``ok``, or to
``unavailable`` with a ``reason`` when the data could not be read (a stopped database,
no systemd). The comparison reports an unavailable family as a difference, so a gap
never reads as a match.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import fnmatch
import hashlib
import http.client
import ipaddress
import json
import os
import platform
import re
import shutil
import socket
import ssl
import stat
import struct
import subprocess
import sys
import urllib.parse

COLLECTOR_VERSION = 1
FAMILIES = ("packages", "units", "sockets", "users", "groups", "trees", "databases", "hsm", "routes")
READ_CHUNK = 1 << 20
COMMAND_TIMEOUT = 600

# FS_IOC_GETFLAGS is _IOR('f', 1, long); this value is for 64-bit Linux.
FS_IOC_GETFLAGS = 0x80086601
# Inode flags that an administrator sets with chattr and a restore must bring back, with
# their lsattr letters. Flags that the file system sets itself (extents, hash-indexed
# directory, inline data, huge file) differ between file systems and are left out.
CHATTR_FLAGS = (
    (0x00000001, "s"), (0x00000002, "u"), (0x00000004, "c"), (0x00000008, "S"),
    (0x00000010, "i"), (0x00000020, "a"), (0x00000040, "d"), (0x00000080, "A"),
    (0x00004000, "j"), (0x00008000, "t"), (0x00010000, "D"), (0x00020000, "T"),
    (0x00800000, "C"), (0x20000000, "P"), (0x40000000, "F"),
)

ACL_TAGS = {0x01: "user", 0x02: "user", 0x04: "group", 0x08: "group", 0x10: "mask", 0x20: "other"}
ACL_NAMED = (0x02, 0x08)


def log(message: str) -> None:
    print(f"collector: {message}", file=sys.stderr)


def unavailable(reason: str) -> dict:
    return {"status": "unavailable", "reason": reason}


def run(argv: list[str], *, input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=input_bytes, capture_output=True, timeout=COMMAND_TIMEOUT)


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Apply the rule of ``Identity.path_is_ignored``: equal, under, or an fnmatch pattern."""
    for pattern in patterns:
        if path == pattern or path.startswith(pattern.rstrip("/") + "/"):
            return True
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatch(path, pattern):
            return True
    return False


# Packages, units, sockets, users and groups.


def collect_packages(params: dict) -> dict:
    if shutil.which("dpkg-query") is None:
        return unavailable("dpkg-query not found")
    result = run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${binary:Package}\t${Version}\n"])
    if result.returncode != 0:
        return unavailable(f"dpkg-query failed: {result.stderr.decode(errors='replace').strip()}")
    items = {}
    for line in result.stdout.decode(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0].startswith("ii"):
            items[parts[1]] = parts[2]
    return {"status": "ok", "items": items}


def collect_units(params: dict) -> dict:
    if shutil.which("systemctl") is None:
        return unavailable("systemctl not found")
    listing = run(["systemctl", "list-unit-files", "--type=service,socket,timer", "--no-legend", "--no-pager"])
    if listing.returncode != 0:
        return unavailable(f"systemctl list-unit-files failed: {listing.stderr.decode(errors='replace').strip()}")
    items: dict[str, dict] = {}
    for line in listing.stdout.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) >= 2:
            items[fields[0]] = {"enabled": fields[1]}
    for unit in params.get("units") or []:
        entry = items.setdefault(unit, {"enabled": "not-found"})
        shown = run(["systemctl", "show", unit, "--property=ActiveState,SubState,LoadState", "--no-pager"])
        if shown.returncode != 0:
            entry["active"] = "unknown"
            entry["sub"] = "unknown"
            entry["error"] = shown.stderr.decode(errors="replace").strip()
            continue
        values = dict(line.split("=", 1) for line in shown.stdout.decode(errors="replace").splitlines() if "=" in line)
        entry["active"] = values.get("ActiveState", "unknown")
        entry["sub"] = values.get("SubState", "unknown")
        entry["load"] = values.get("LoadState", "unknown")
    return {"status": "ok", "items": items}


def unit_of_pid(pid: str) -> str:
    """Return the systemd unit whose control group contains ``pid``, or ""."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ""
    for line in lines:
        path = line.split(":", 2)[-1]
        for part in reversed(path.split("/")):
            if part.endswith((".service", ".socket", ".scope")):
                return part
    return ""


def collect_sockets(params: dict) -> dict:
    if shutil.which("ss") is None:
        return unavailable("ss not found")
    result = run(["ss", "-ltnupH"])
    if result.returncode != 0:
        return unavailable(f"ss failed: {result.stderr.decode(errors='replace').strip()}")
    items: dict[str, dict] = {}
    for line in result.stdout.decode(errors="replace").splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        proto, local = fields[0], fields[4]
        process_field = " ".join(fields[6:]) if len(fields) > 6 else ""
        names = sorted(set(re.findall(r'\("([^"]+)"', process_field)))
        units = sorted({unit_of_pid(pid) for pid in re.findall(r"pid=(\d+)", process_field)} - {""})
        # Pids differ on every start, so only process names and units are kept.
        items[f"{proto} {local}"] = {"process": ",".join(names), "unit": ",".join(units)}
    return {"status": "ok", "items": items}


def read_colon_file(path: str) -> list[list[str]] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n").split(":") for line in handle if line.strip() and not line.startswith("#")]
    except OSError:
        return None


def collect_users(params: dict) -> dict:
    rows = read_colon_file("/etc/passwd")
    if rows is None:
        return unavailable("/etc/passwd cannot be read")
    items = {}
    for row in rows:
        if len(row) >= 7:
            items[row[0]] = {"uid": int(row[2]), "gid": int(row[3]), "home": row[5], "shell": row[6]}
    return {"status": "ok", "items": items}


def collect_groups(params: dict) -> dict:
    rows = read_colon_file("/etc/group")
    if rows is None:
        return unavailable("/etc/group cannot be read")
    items = {}
    for row in rows:
        if len(row) >= 4:
            members = sorted(member for member in row[3].split(",") if member)
            items[row[0]] = {"gid": int(row[2]), "members": members}
    return {"status": "ok", "items": items}


# Trees.


def format_acl(value: bytes) -> str:
    """Decode a system.posix_acl_* value (version 2) into getfacl's short text form."""
    if len(value) < 4 or struct.unpack_from("<I", value)[0] != 2:
        return "unknown-format"
    entries = []
    for offset in range(4, len(value) - 7, 8):
        tag, perm, qualifier = struct.unpack_from("<HHI", value, offset)
        name = ACL_TAGS.get(tag, f"tag{tag:#x}")
        who = str(qualifier) if tag in ACL_NAMED else ""
        mode = "".join(letter if perm & bit else "-" for bit, letter in ((4, "r"), (2, "w"), (1, "x")))
        entries.append(f"{name}:{who}:{mode}")
    return ",".join(entries)


def format_capability(value: bytes) -> str:
    """Decode security.capability (VFS_CAP_REVISION 1 to 3) into hexadecimal masks."""
    if len(value) < 12:
        return "unknown-format"
    magic = struct.unpack_from("<I", value)[0]
    revision = magic >> 24
    effective = magic & 1
    permitted = struct.unpack_from("<I", value, 4)[0]
    inheritable = struct.unpack_from("<I", value, 8)[0]
    if revision >= 2 and len(value) >= 20:
        permitted |= struct.unpack_from("<I", value, 12)[0] << 32
        inheritable |= struct.unpack_from("<I", value, 16)[0] << 32
    text = f"v{revision} permitted={permitted:#x} inheritable={inheritable:#x} effective={effective}"
    if revision == 3 and len(value) >= 24:
        text += f" rootid={struct.unpack_from('<I', value, 20)[0]}"
    return text


def read_xattrs(path: str, entry: dict) -> None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as error:
        if error.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            entry["xattr_error"] = error.strerror
        return
    if not names:
        return
    xattrs = {}
    for name in sorted(names):
        try:
            value = os.getxattr(path, name, follow_symlinks=False)
        except OSError as error:
            xattrs[name] = f"error: {error.strerror}"
            continue
        xattrs[name] = hashlib.sha256(value).hexdigest()
        if name in ("system.posix_acl_access", "system.posix_acl_default"):
            entry.setdefault("acl", {})[name.rsplit("_", 1)[-1]] = format_acl(value)
        elif name == "security.capability":
            entry["caps"] = format_capability(value)
    entry["xattrs"] = xattrs


def read_flags(fd: int) -> str | None:
    buffer = bytearray(8)
    try:
        fcntl.ioctl(fd, FS_IOC_GETFLAGS, buffer)
    except OSError:
        return None
    value = struct.unpack_from("<I", buffer)[0]
    return "".join(letter for bit, letter in CHATTR_FLAGS if value & bit)


def open_no_atime(path: str, flags: int) -> int:
    try:
        return os.open(path, flags | os.O_NOATIME)
    except PermissionError:
        # O_NOATIME needs ownership of the file or CAP_FOWNER.
        return os.open(path, flags)


def hash_file(fd: int) -> str:
    digest = hashlib.sha256()
    while True:
        chunk = os.read(fd, READ_CHUNK)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)


# SHA-256 of regular files by (device, inode, size, mtime, ctime): a file whose key is
# unchanged has unchanged content, because any write or metadata change sets the ctime
# and no system call sets it back (only a change of the system clock could fake one).
# HASHES_SEEN doubles as a memo for trees that overlap, such as /etc and /etc/apache2.
HASHES_KNOWN: dict[str, str] = {}
HASHES_SEEN: dict[str, str] = {}


def hash_key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def cached_hash(st: os.stat_result, fd: int) -> str:
    key = hash_key(st)
    digest = HASHES_SEEN.get(key) or HASHES_KNOWN.get(key) or hash_file(fd)
    HASHES_SEEN[key] = digest
    return digest


def load_hash_cache(path: str | None) -> None:
    """Load the hashes of an earlier run; a missing or damaged cache only costs time."""
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as handle:
            HASHES_KNOWN.update(json.load(handle))
    except (OSError, ValueError) as error:
        log(f"hash cache {path} not used: {error}")


def save_hash_cache(path: str | None) -> None:
    """Keep only the hashes of this run, so the cache never grows past the trees' size."""
    if not path:
        return
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        temporary = f"{path}.tmp"
        with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
            json.dump(HASHES_SEEN, handle)
        os.replace(temporary, path)
    except OSError as error:
        log(f"hash cache {path} not written: {error}")


FILE_TYPES = (
    (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"), (stat.S_ISFIFO, "fifo"),
    (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISSOCK, "socket"),
)


def describe(path: str, st: os.stat_result) -> dict:
    """Describe one inode. Only regular files and directories are opened, never devices or fifos."""
    kind = next((name for test, name in FILE_TYPES if test(st.st_mode)), "unknown")
    entry: dict = {"type": kind, "mode": f"{stat.S_IMODE(st.st_mode):04o}", "uid": st.st_uid, "gid": st.st_gid}
    if kind == "file":
        entry["size"] = st.st_size
        entry["nlink"] = st.st_nlink
        entry["mtime_ns"] = st.st_mtime_ns
        allocated = st.st_blocks * 512
        entry["allocated"] = allocated
        entry["sparse"] = allocated < st.st_size
    elif kind == "symlink":
        entry["target"] = os.readlink(path)
        entry["mtime_ns"] = st.st_mtime_ns
    elif kind == "dir":
        entry["mtime_ns"] = st.st_mtime_ns
    elif kind in ("char", "block"):
        entry["rdev"] = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    if kind in ("fifo", "socket", "char", "block"):
        entry["nlink"] = st.st_nlink
    read_xattrs(path, entry)
    if kind in ("file", "dir"):
        try:
            fd = open_no_atime(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_DIRECTORY if kind == "dir" else 0))
        except OSError as error:
            entry["error"] = f"open failed: {error.strerror}"
            return entry
        try:
            flags = read_flags(fd)
            if flags is not None:
                entry["flags"] = flags
            if kind == "file":
                entry["sha256"] = cached_hash(st, fd)
        except OSError as error:
            entry["error"] = f"read failed: {error.strerror}"
        finally:
            os.close(fd)
    return entry


def walk_tree(root: str, ignore: list[str], inodes: dict) -> dict:
    """Describe every entry under ``root`` as {relative path: entry}, without leaving the file system of ``root``."""
    try:
        root_stat = os.lstat(root)
    except FileNotFoundError:
        return {"status": "missing", "reason": f"{root} does not exist"}
    except OSError as error:
        return unavailable(f"{root}: {error.strerror}")
    items: dict[str, dict] = {}
    root_device = root_stat.st_dev
    pending = [(root, root_stat)]
    while pending:
        path, st = pending.pop()
        relative = "." if path == root else os.path.relpath(path, root)
        try:
            entry = describe(path, st)
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            inodes.setdefault((st.st_dev, st.st_ino), []).append(entry)
            entry["_path"] = path
        items[relative] = entry
        if not stat.S_ISDIR(st.st_mode):
            continue
        if st.st_dev != root_device:
            entry["other_file_system"] = True
            continue
        try:
            with os.scandir(path) as iterator:
                children = list(iterator)
        except OSError as error:
            entry["error"] = f"listing failed: {error.strerror}"
            continue
        for child in children:
            if is_ignored(child.path, ignore):
                continue
            try:
                pending.append((child.path, child.stat(follow_symlinks=False)))
            except FileNotFoundError:
                continue
    return {"status": "ok", "items": items}


def collect_trees(params: dict) -> dict:
    ignore = list(params.get("ignore") or [])
    roots = list(dict.fromkeys(list(params.get("system_trees") or []) + list(params.get("application_trees") or [])))
    inodes: dict = {}
    load_hash_cache(params.get("hash_cache"))
    trees = {root: walk_tree(root, ignore, inodes) for root in roots}
    save_hash_cache(params.get("hash_cache"))
    # A hard link group is named by the lowest path that has the inode, so the name is
    # the same on any host that has the same links.
    for entries in inodes.values():
        group = min(entry["_path"] for entry in entries)
        for entry in entries:
            entry["link_group"] = group
    for tree in trees.values():
        for entry in tree.get("items", {}).values():
            entry.pop("_path", None)
    return trees


# Databases.


def psql_command(database: str, params: dict, sql: str) -> list[str]:
    argv = ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql]
    server = params.get("postgres") or {}
    if server.get("host"):
        argv[1:1] = ["-h", str(server["host"])]
    if server.get("port"):
        argv[1:1] = ["-p", str(server["port"])]
    if os.geteuid() == 0:
        return ["runuser", "-u", str(server.get("user") or "postgres"), "--"] + argv
    return argv


def psql(database: str, params: dict, sql: str) -> str:
    result = run(psql_command(database, params, sql))
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace").strip() or f"psql exit code {result.returncode}")
    return result.stdout.decode(errors="replace")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def hash_table(database: str, params: dict, schema: str, table: str) -> dict:
    """Stream the table sorted by its text form (collation C) and hash the COPY output."""
    relation = f"{quote_identifier(schema)}.{quote_identifier(table)}"
    sql = f'COPY (SELECT * FROM {relation} AS t ORDER BY t::text COLLATE "C") TO STDOUT'
    process = subprocess.Popen(psql_command(database, params, sql), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    digest = hashlib.sha256()
    rows = 0
    assert process.stdout is not None
    while True:
        chunk = process.stdout.read(READ_CHUNK)
        if not chunk:
            break
        digest.update(chunk)
        rows += chunk.count(b"\n")
    stderr = process.stderr.read() if process.stderr else b""
    if process.wait() != 0:
        return {"error": stderr.decode(errors="replace").strip()}
    return {"rows": rows, "sha256": digest.hexdigest()}


def collect_database(database: str, params: dict) -> dict:
    if shutil.which("psql") is None:
        return unavailable("psql not found")
    try:
        header = psql(database, params,
                      "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) "
                      "FROM pg_database WHERE datname = current_database()").strip().split("|")
        table_rows = psql(database, params,
                          "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                          "AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2").splitlines()
        sequence_rows = psql(database, params,
                             "SELECT schemaname || '.' || sequencename, coalesce(last_value::text, '') "
                             "FROM pg_sequences ORDER BY 1").splitlines()
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return unavailable(f"database {database}: {error}")
    tables = {}
    for line in table_rows:
        schema, table = line.split("|", 1)
        tables[f"{schema}.{table}"] = hash_table(database, params, schema, table)
    sequences = dict(line.split("|", 1) for line in sequence_rows if "|" in line)
    return {"status": "ok", "owner": header[0], "encoding": header[-1], "tables": tables, "sequences": sequences}


def collect_databases(params: dict) -> dict:
    return {name: collect_database(name, params) for name in params.get("databases") or []}


# HSM.


def collect_hsm(params: dict) -> dict:
    hsm = params.get("hsm")
    if not hsm:
        return {"status": "ok", "configured": False}
    if not hsm.get("pin"):
        return unavailable("no HSM PIN was given")
    if hsm.get("config"):
        os.environ["SOFTHSM2_CONF"] = hsm["config"]
    try:
        import PyKCS11  # type: ignore[import-not-found]
    except ImportError:
        return unavailable("PyKCS11 is not installed (Debian package python3-pykcs11)")
    try:
        library = PyKCS11.PyKCS11Lib()
        library.load(hsm["module"])
        slot = None
        for candidate in library.getSlotList(tokenPresent=True):
            if library.getTokenInfo(candidate).label.rstrip(" \x00") == hsm["token_label"]:
                slot = candidate
                break
        if slot is None:
            return unavailable(f"token {hsm['token_label']!r} not found")
        session = library.openSession(slot, PyKCS11.CKF_SERIAL_SESSION)
        try:
            session.login(hsm["pin"])
            keys = session.findObjects([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY),
                                        (PyKCS11.CKA_LABEL, hsm["key_label"])])
            if len(keys) != 1:
                return unavailable(f"{len(keys)} secret keys labelled {hsm['key_label']!r} found; expected 1")
            key = keys[0]
            key_type = session.getAttributeValue(key, [PyKCS11.CKA_KEY_TYPE])[0]
            if key_type == PyKCS11.CKK_AES:
                mechanism, block = PyKCS11.Mechanism(PyKCS11.CKM_AES_ECB, None), 16
            elif key_type in (PyKCS11.CKK_DES3, PyKCS11.CKK_DES2):
                mechanism, block = PyKCS11.Mechanism(PyKCS11.CKM_DES3_ECB, None), 8
            else:
                return unavailable(f"key type {PyKCS11.CKK.get(key_type, key_type)} has no key check value")
            # The key check value: the first 3 bytes of a zero block encrypted with the key.
            encrypted = bytes(session.encrypt(key, bytes(block), mechanism))
            value_length = session.getAttributeValue(key, [PyKCS11.CKA_VALUE_LEN])[0]
            key_id = bytes(session.getAttributeValue(key, [PyKCS11.CKA_ID])[0] or b"").hex()
        finally:
            try:
                session.logout()
            except PyKCS11.PyKCS11Error:
                pass
            session.closeSession()
    except PyKCS11.PyKCS11Error as error:
        # The PIN is never part of the message: PyKCS11 errors name the return code only.
        return unavailable(f"PKCS#11 call failed: {error}")
    return {"status": "ok", "configured": True, "token_label": hsm["token_label"], "key_label": hsm["key_label"],
            "key_type": PyKCS11.CKK.get(key_type, str(key_type)), "key_length": value_length, "key_id": key_id,
            "kcv": encrypted[:3].hex()}


# Routes.


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connect to the address in the URL while sending ``server_name`` in TLS SNI."""

    def __init__(self, address: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(address, port, context=context, timeout=timeout)
        self.server_name = server_name
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.server_name)


def replace_fields(value, ignored: set[str]):
    if isinstance(value, dict):
        return {key: "<ignored>" if key in ignored else replace_fields(item, ignored) for key, item in value.items()}
    if isinstance(value, list):
        return [replace_fields(item, ignored) for item in value]
    return value


def is_loopback(hostname: str) -> bool:
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return hostname == "localhost"


def call_route(route: dict, timeout: float) -> dict:
    url = urllib.parse.urlsplit(route["url"])
    address = url.hostname or ""
    if not is_loopback(address):
        # The collector tests the host's own front end, so it sends nothing off the host.
        return {"error": f"route address {address} is not a loopback address; not called"}
    host_header = route.get("host_header") or address
    body = route.get("body")
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Host": host_header, "Accept": "application/json"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    target = url.path + (f"?{url.query}" if url.query else "")
    if url.scheme == "https":
        # The lab front end presents a self-signed certificate, and only loopback is called.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = PinnedHTTPSConnection(address, url.port or 443, host_header, context, timeout)
    else:
        connection = http.client.HTTPConnection(address, url.port or 80, timeout=timeout)
    try:
        connection.request(route.get("method", "GET"), target, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        connection.close()
    content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
    record = {"status": response.status, "content_type": content_type}
    try:
        record["body"] = replace_fields(json.loads(data), set(route.get("ignore_fields") or []))
    except ValueError:
        record["body_sha256"] = hashlib.sha256(data).hexdigest()
        record["body_length"] = len(data)
    return record


def collect_routes(params: dict) -> dict:
    timeout = float(params.get("route_timeout") or 10)
    return {"status": "ok", "items": {route["name"]: call_route(route, timeout) for route in params.get("routes") or []}}


COLLECTORS = {
    "packages": collect_packages, "units": collect_units, "sockets": collect_sockets, "users": collect_users,
    "groups": collect_groups, "trees": collect_trees, "databases": collect_databases, "hsm": collect_hsm,
    "routes": collect_routes,
}


def params_without_secrets(params: dict) -> dict:
    copy = json.loads(json.dumps(params))
    if copy.get("hsm"):
        copy["hsm"]["pin"] = None
    return copy


def main() -> int:
    try:
        params = json.load(sys.stdin)
    except ValueError as error:
        log(f"the parameter document on standard input is not valid JSON: {error}")
        return 2
    families = params.get("families") or list(FAMILIES)
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        log(f"unknown families {unknown}; expected some of {list(FAMILIES)}")
        return 2
    fingerprint: dict = {
        "meta": {
            "host": params.get("host") or socket.gethostname(),
            "collected_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "collector_version": COLLECTOR_VERSION,
            "python": platform.python_version(),
            "families": list(families),
            "units_of_interest": list(params.get("units") or []),
            # The parameters without the PIN, so that a later check collects the same.
            "params": params_without_secrets(params),
        }
    }
    for family in families:
        started = datetime.datetime.now()
        fingerprint[family] = COLLECTORS[family](params)
        seconds = (datetime.datetime.now() - started).total_seconds()
        fingerprint["meta"].setdefault("seconds", {})[family] = round(seconds, 3)
    json.dump(fingerprint, sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
