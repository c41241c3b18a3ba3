"""The collector run on this machine through LocalTransport, against trees made by the tests.

The tree tests need root (chattr, setcap, chown), setfattr and setfacl (Debian packages
attr, acl, libcap2-bin). The HSM test needs softhsm2 and python3-pykcs11 for
/usr/bin/python3, and the database test needs the PostgreSQL 15 server binaries. Each
test is skipped, with the reason, when its tools are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tacops.backup.fingerprint import CollectionError, collect, compare, without_secrets
from tacops.foundation.transport import LocalTransport

SYSTEM_PYTHON = "/usr/bin/python3"
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")

needs_root_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("setfattr", "setfacl", "chattr", "setcap")),
    reason="needs root and setfattr, setfacl, chattr, setcap",
)


def run(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=True)


def collect_trees(root: Path, **params) -> dict:
    document = {"host": "test-host", "families": ["trees"], "system_trees": [str(root)], "ignore": []}
    document.update(params)
    return collect(LocalTransport("test-host"), document, python=SYSTEM_PYTHON, timeout=120)


@pytest.fixture()
def tree(tmp_path: Path):
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a").write_text("hello\n")
    os.link(root / "a", root / "sub" / "a-link")
    with open(root / "sparse", "wb") as handle:
        handle.truncate(10 * 1024 * 1024)
    (root / "link").symlink_to("a")
    (root / "frozen").write_text("frozen\n")
    (root / "capbin").write_bytes(b"\x7fELF")
    os.mkfifo(root / "fifo")
    yield root
    subprocess.run(["chattr", "-i", str(root / "frozen")], capture_output=True)


@needs_root_tools
def test_collector_records_metadata(tree: Path):
    run(f"setfattr -n user.origin -v lab {tree}/a")
    run(f"setfacl -m u:1000:rx {tree}/sub && setfacl -d -m g:100:r {tree}/sub")
    run(f"setcap cap_net_bind_service+ep {tree}/capbin")
    run(f"chattr +i {tree}/frozen")

    fingerprint = collect_trees(tree)
    items = fingerprint["trees"][str(tree)]["items"]

    assert fingerprint["meta"]["host"] == "test-host"
    assert items["."]["type"] == "dir"
    assert items["a"]["sha256"] == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    assert "user.origin" in items["a"]["xattrs"]
    assert items["a"]["nlink"] == 2
    assert items["a"]["link_group"] == str(tree / "a")
    assert items["sub/a-link"]["link_group"] == str(tree / "a")
    assert items["sparse"]["sparse"] is True
    assert items["sparse"]["size"] == 10 * 1024 * 1024
    assert items["link"] == {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0,
                             "mtime_ns": items["link"]["mtime_ns"], "target": "a"}
    assert items["sub"]["acl"]["access"] == "user::rwx,user:1000:r-x,group::r-x,mask::r-x,other::r-x"
    assert "group:100:r--" in items["sub"]["acl"]["default"]
    assert items["capbin"]["caps"].startswith("v2 permitted=0x400 ")
    assert items["frozen"]["flags"] == "i"
    assert items["fifo"]["type"] == "fifo"


@needs_root_tools
def test_collector_detects_restore_failures(tree: Path):
    run(f"setfattr -n user.origin -v lab {tree}/a")
    run(f"chattr +i {tree}/frozen")
    expected = collect_trees(tree)

    # What a faulty restore does: hard link split, sparse file allocated, xattr and flag
    # lost, ownership and mode changed, one file missing, one file added.
    run(f"rm {tree}/sub/a-link && cp -p {tree}/a {tree}/sub/a-link")
    run(f"cp --sparse=never {tree}/sparse {tree}/dense && touch -r {tree}/sparse {tree}/dense "
        f"&& mv {tree}/dense {tree}/sparse")
    run(f"setfattr -x user.origin {tree}/a")
    run(f"chattr -i {tree}/frozen")
    run(f"chown 1000:1000 {tree}/sub && chmod 0700 {tree}/sub")
    run(f"rm {tree}/fifo && echo new > {tree}/extra")
    found = collect_trees(tree)

    differences = compare(expected, found, family="trees")
    named = {(d.item.removeprefix(f"{tree}/"), d.attribute) for d in differences}
    assert ("a", "link_group") in named
    assert ("sub/a-link", "nlink") in named
    assert ("sparse", "sparse") in named
    assert ("a", "xattr user.origin") in named
    assert ("frozen", "flags") in named
    assert ("sub", "uid") in named
    assert ("sub", "mode") in named
    assert ("fifo", None) in named
    assert ("extra", None) in named


def test_collector_skips_ignored_paths(tmp_path: Path):
    (tmp_path / "keep").write_text("x")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "today.log").write_text("x")
    (tmp_path / "cert.tmp").write_text("x")

    fingerprint = collect_trees(tmp_path, ignore=[str(tmp_path / "logs"), str(tmp_path / "*.tmp")])

    assert set(fingerprint["trees"][str(tmp_path)]["items"]) == {".", "keep"}


def test_collector_missing_tree(tmp_path: Path):
    fingerprint = collect_trees(tmp_path / "absent")
    assert fingerprint["trees"][str(tmp_path / "absent")]["status"] == "missing"


def test_collector_host_families():
    fingerprint = collect(LocalTransport("test-host"),
                          {"host": "test-host", "families": ["packages", "users", "groups", "sockets"]},
                          python=SYSTEM_PYTHON, timeout=120)
    assert fingerprint["packages"]["items"]["dpkg"]
    assert fingerprint["users"]["items"]["root"]["uid"] == 0
    assert fingerprint["groups"]["items"]["root"]["gid"] == 0
    assert fingerprint["sockets"]["status"] == "ok"
    assert set(fingerprint) == {"meta", "packages", "users", "groups", "sockets"}


def test_collector_unknown_family_fails():
    with pytest.raises(CollectionError, match="exit code 2"):
        collect(LocalTransport("test-host"), {"host": "test-host", "families": ["kernel"]}, python=SYSTEM_PYTHON)


def test_collector_leaves_no_script(tmp_path: Path):
    remote = tmp_path / "collector.py"
    collect(LocalTransport("test-host"), {"host": "test-host", "families": ["users"]}, python=SYSTEM_PYTHON,
            remote_path=str(remote))
    assert not remote.exists()


def test_route_off_loopback_not_called():
    route = {"name": "register", "method": "POST", "url": "https://192.0.2.1/api/v6/register",
             "host_header": "api.tousanticovid.gouv.fr", "body": {}, "ignore_fields": []}
    fingerprint = collect(LocalTransport("test-host"), {"host": "test-host", "families": ["routes"],
                                                        "routes": [route]}, python=SYSTEM_PYTHON)
    assert "not a loopback address" in fingerprint["routes"]["items"]["register"]["error"]


def test_route_body_fields_ignored():
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (name fixed by http.server)
            body = json.dumps({"serverTime": 123, "nested": {"id": "x", "keep": 1}}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        route = {"name": "register", "method": "POST", "url": f"http://127.0.0.1:{server.server_port}/api",
                 "host_header": "api.example", "body": {}, "ignore_fields": ["serverTime", "id"]}
        fingerprint = collect(LocalTransport("test-host"), {"host": "test-host", "families": ["routes"],
                                                            "routes": [route]}, python=SYSTEM_PYTHON)
    finally:
        server.shutdown()
        server.server_close()
    record = fingerprint["routes"]["items"]["register"]
    assert record["status"] == 400
    assert record["content_type"] == "application/json"
    assert record["body"] == {"serverTime": "<ignored>", "nested": {"id": "<ignored>", "keep": 1}}


SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def system_python_has_pykcs11() -> bool:
    return subprocess.run([SYSTEM_PYTHON, "-c", "import PyKCS11"], capture_output=True).returncode == 0


@pytest.mark.skipif(not (Path(SOFTHSM_MODULE).exists() and shutil.which("softhsm2-util")
                         and system_python_has_pykcs11()),
                    reason="needs softhsm2 and python3-pykcs11")
def test_collector_hsm_key_check_value(tmp_path: Path):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    tokens = tmp_path / "tokens"
    tokens.mkdir()
    config = tmp_path / "softhsm2.conf"
    config.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    environment = dict(os.environ, SOFTHSM2_CONF=str(config))
    pin = "4321"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "test-kek", "--so-pin", "9876",
                    "--pin", pin], check=True, env=environment, capture_output=True)
    key = bytes(range(32))
    # The key is imported with a known value so the test can compute the expected value.
    create_key = f"""
import PyKCS11, sys
lib = PyKCS11.PyKCS11Lib(); lib.load({SOFTHSM_MODULE!r})
slot = [s for s in lib.getSlotList(tokenPresent=True) if lib.getTokenInfo(s).label.strip() == "test-kek"][0]
session = lib.openSession(slot, PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
session.login(sys.stdin.read())
session.createObject([(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
    (PyKCS11.CKA_TOKEN, True), (PyKCS11.CKA_LABEL, "kek"), (PyKCS11.CKA_ID, b"\\x01"),
    (PyKCS11.CKA_ENCRYPT, True), (PyKCS11.CKA_VALUE, {key!r})])
session.logout()
"""
    subprocess.run([SYSTEM_PYTHON, "-c", create_key], input=pin.encode(), check=True, env=environment)
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    expected_kcv = (encryptor.update(bytes(16)) + encryptor.finalize())[:3].hex()

    hsm = {"module": SOFTHSM_MODULE, "config": str(config), "token_label": "test-kek", "key_label": "kek",
           "pin": pin}
    params = {"host": "test-host", "families": ["hsm"], "hsm": hsm}
    fingerprint = collect(LocalTransport("test-host"), params, python=SYSTEM_PYTHON)

    assert fingerprint["hsm"]["status"] == "ok", fingerprint["hsm"]
    assert fingerprint["hsm"]["kcv"] == expected_kcv
    assert fingerprint["hsm"]["key_length"] == 32
    assert pin not in json.dumps(fingerprint)
    assert without_secrets(params)["hsm"]["pin"] is None

    wrong_pin = collect(LocalTransport("test-host"), dict(params, hsm=dict(hsm, pin="wrong-pin-7391")), python=SYSTEM_PYTHON)
    assert wrong_pin["hsm"]["status"] == "unavailable"
    assert "wrong-pin-7391" not in wrong_pin["hsm"]["reason"]
    missing_token = collect(LocalTransport("test-host"), dict(params, hsm=dict(hsm, token_label="other")),
                            python=SYSTEM_PYTHON)
    assert missing_token["hsm"] == {"status": "unavailable", "reason": "token 'other' not found"}


@pytest.fixture()
def postgres_server():
    """Start a PostgreSQL server of our own on a Unix socket in a temporary directory (no TCP)."""
    if os.geteuid() != 0 or not (POSTGRES_BIN / "initdb").exists():
        pytest.skip("needs root and the PostgreSQL 15 server binaries")
    # pytest's tmp_path lies under a 0700 directory that the postgres user cannot enter.
    tmp_path = Path(tempfile.mkdtemp(prefix="tacops-pg-"))
    data = tmp_path / "data"
    sockets = tmp_path / "sockets"
    for path in (data, sockets):
        path.mkdir()
        shutil.chown(path, "postgres", "postgres")
    os.chmod(tmp_path, 0o755)
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_postgres + [str(POSTGRES_BIN / "initdb"), "-D", str(data), "-E", "UTF8", "--no-locale"],
                   check=True, capture_output=True)
    options = f"-c listen_addresses='' -c unix_socket_directories={sockets}"
    subprocess.run(as_postgres + [str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-w", "-o", options,
                                  "-l", str(sockets / "server.log"), "start"], check=True, capture_output=True)
    try:
        yield {"host": str(sockets)}
    finally:
        subprocess.run(as_postgres + [str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_collector_database_checksums(postgres_server: dict):
    def psql(database: str, sql: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-h", postgres_server["host"],
                        "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], check=True, capture_output=True)

    psql("postgres", "CREATE DATABASE robert")
    psql("robert", "CREATE TABLE identity (id serial PRIMARY KEY, ida bytea, key_for_mac bytea, meta jsonb);"
                   "INSERT INTO identity (ida, key_for_mac, meta) VALUES "
                   "('\\x01', '\\x02', '{\"a\": 1}'), ('\\x03', '\\x04', NULL)")
    params = {"host": "test-host", "families": ["databases"], "databases": ["robert", "absent"],
              "postgres": postgres_server}

    expected = collect(LocalTransport("test-host"), params, python=SYSTEM_PYTHON)
    robert = expected["databases"]["robert"]
    assert robert["status"] == "ok", robert
    assert robert["owner"] == "postgres"
    assert robert["encoding"] == "UTF8"
    assert robert["tables"]["public.identity"]["rows"] == 2
    assert robert["sequences"] == {"public.identity_id_seq": "2"}
    assert expected["databases"]["absent"]["status"] == "unavailable"

    psql("robert", "UPDATE identity SET key_for_mac = '\\x05' WHERE id = 2")
    found = collect(LocalTransport("test-host"), params, python=SYSTEM_PYTHON)
    differences = compare(expected, found, family="databases", part="robert")
    assert [(d.item, d.attribute) for d in differences] == [("robert/public.identity", "sha256")]


def test_collector_database_server_down(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("psql") is None:
        pytest.skip("needs root and psql")
    params = {"host": "test-host", "families": ["databases"], "databases": ["robert"],
              "postgres": {"host": str(tmp_path)}}
    fingerprint = collect(LocalTransport("test-host"), params, python=SYSTEM_PYTHON)
    assert fingerprint["databases"]["robert"]["status"] == "unavailable"
    assert "robert" in fingerprint["databases"]["robert"]["reason"]
