"""Comparison of hand-written fingerprints: each kind of restore failure gives a Difference."""

from __future__ import annotations

import copy

import pytest

from tacops.backup.fingerprint import DeferredToWake, Difference, check_name, checks_of, compare, compare_all
from tacops.foundation.description import load_description

HASH_A = "a" * 64
HASH_B = "b" * 64


def file_entry(**changes) -> dict:
    entry = {"type": "file", "mode": "0644", "uid": 0, "gid": 0, "size": 6, "nlink": 1, "mtime_ns": 1000,
             "allocated": 4096, "sparse": False, "sha256": HASH_A, "flags": ""}
    entry.update(changes)
    return entry


def base_fingerprint() -> dict:
    return {
        "meta": {"host": "robert-crypto", "units_of_interest": ["postgresql.service"]},
        "packages": {"status": "ok", "items": {"postgresql-15": "15.8-0+deb12u1", "softhsm2": "2.6.1-2.1"}},
        "units": {"status": "ok", "items": {
            "postgresql.service": {"enabled": "enabled", "active": "active", "sub": "exited", "load": "loaded"},
            "ssh.service": {"enabled": "enabled"},
            "systemd-tmpfiles-clean.timer": {"enabled": "static"},
        }},
        "sockets": {"status": "ok", "items": {
            "tcp 0.0.0.0:22": {"process": "sshd", "unit": "ssh.service"},
            "tcp 127.0.0.1:5432": {"process": "postgres", "unit": "postgresql@15-main.service,postgresql.service"},
        }},
        "users": {"status": "ok", "items": {"postgres": {"uid": 104, "gid": 110, "home": "/var/lib/postgresql",
                                                         "shell": "/bin/bash"}}},
        "groups": {"status": "ok", "items": {"ssl-cert": {"gid": 109, "members": ["postgres"]}}},
        "trees": {"/etc": {"status": "ok", "items": {
            ".": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0, "mtime_ns": 5, "flags": ""},
            "hosts": file_entry(),
            "secret": file_entry(mode="0640", gid=110,
                                 xattrs={"system.posix_acl_access": HASH_A, "user.origin": HASH_B},
                                 acl={"access": "user::rw-,user:104:r--,group::r--,mask::r--,other::---"}),
            "ping": file_entry(caps="v2 permitted=0x2000 inheritable=0x0 effective=1",
                               xattrs={"security.capability": HASH_A}),
            "frozen": file_entry(flags="i"),
            "one": file_entry(nlink=2, link_group="/etc/one"),
            "two": file_entry(nlink=2, link_group="/etc/one"),
            "big.img": file_entry(size=10485760, allocated=0, sparse=True, sha256=HASH_B),
            "localtime": {"type": "symlink", "mode": "0777", "uid": 0, "gid": 0, "mtime_ns": 7,
                          "target": "/usr/share/zoneinfo/Etc/UTC"},
            "ssh": {"type": "dir", "mode": "0755", "uid": 0, "gid": 0, "mtime_ns": 9, "flags": ""},
        }}},
        "databases": {"robert": {"status": "ok", "owner": "postgres", "encoding": "UTF8",
                                 "tables": {"public.identity": {"rows": 3, "sha256": HASH_A}},
                                 "sequences": {"public.identity_id_seq": "3"}}},
        "hsm": {"status": "ok", "configured": True, "token_label": "robert-kek", "key_label": "robert-kek",
                "key_type": "CKK_AES", "key_length": 32, "key_id": "01", "kcv": "a1b2c3"},
        "routes": {"status": "ok", "items": {
            "register": {"status": 400, "content_type": "application/json", "body": {"message": "invalid"}},
        }},
    }


@pytest.fixture()
def identity():
    return load_description().identity


def differences_of(found: dict, family: str, **options) -> list[Difference]:
    return compare(base_fingerprint(), found, family=family, **options)


def only(differences: list[Difference]) -> Difference:
    assert len(differences) == 1, [str(d) for d in differences]
    return differences[0]


def test_identical_fingerprints_have_no_difference(identity):
    result = compare_all(base_fingerprint(), base_fingerprint(), identity=identity)
    assert result
    assert all(differences == [] for differences in result.values()), result


def test_changed_hash_named():
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["hosts"]["sha256"] = HASH_B
    difference = only(differences_of(found, "trees"))
    assert difference.item == "/etc/hosts"
    assert difference.attribute == "sha256"
    assert (difference.expected, difference.found) == (HASH_A, HASH_B)
    assert difference.host == "robert-crypto"
    assert difference.family == "trees"


def test_missing_file_named():
    found = base_fingerprint()
    del found["trees"]["/etc"]["items"]["hosts"]
    difference = only(differences_of(found, "trees"))
    assert difference.item == "/etc/hosts"
    assert difference.found == "missing"
    assert "file 0644 0:0" in difference.expected


def test_extra_file_named():
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["ssh/new"] = file_entry()
    difference = only(differences_of(found, "trees"))
    assert difference.item == "/etc/ssh/new"
    assert difference.expected == "absent"
    assert "file" in difference.found


@pytest.mark.parametrize(("key", "value"), [("mode", "0600"), ("uid", 1000), ("gid", 1000)])
def test_mode_and_owner_changes(key, value):
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["secret"][key] = value
    difference = only(differences_of(found, "trees"))
    assert difference.item == "/etc/secret"
    assert difference.attribute == key
    assert difference.expected == base_fingerprint()["trees"]["/etc"]["items"]["secret"][key]
    assert difference.found == value


def test_lost_xattr_named():
    found = base_fingerprint()
    del found["trees"]["/etc"]["items"]["secret"]["xattrs"]["user.origin"]
    difference = only(differences_of(found, "trees"))
    assert difference.item == "/etc/secret"
    assert difference.attribute == "xattr user.origin"
    assert (difference.expected, difference.found) == (HASH_B, "absent")


def test_lost_acl_named():
    found = base_fingerprint()
    entry = found["trees"]["/etc"]["items"]["secret"]
    del entry["xattrs"]["system.posix_acl_access"]
    del entry["acl"]
    attributes = {d.attribute for d in differences_of(found, "trees")}
    assert attributes == {"acl", "xattr system.posix_acl_access"}


def test_lost_capability_named():
    found = base_fingerprint()
    entry = found["trees"]["/etc"]["items"]["ping"]
    del entry["caps"]
    del entry["xattrs"]
    differences = differences_of(found, "trees")
    caps = [d for d in differences if d.attribute == "caps"]
    assert only(caps).item == "/etc/ping"
    assert caps[0].expected.startswith("v2 permitted=0x2000")
    assert caps[0].found is None


def test_lost_chattr_flag_named():
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["frozen"]["flags"] = ""
    difference = only(differences_of(found, "trees"))
    assert (difference.item, difference.attribute) == ("/etc/frozen", "flags")
    assert (difference.expected, difference.found) == ("i", "")


def test_split_hard_link_named():
    found = base_fingerprint()
    for name in ("one", "two"):
        entry = found["trees"]["/etc"]["items"][name]
        entry["nlink"] = 1
        del entry["link_group"]
    differences = differences_of(found, "trees")
    assert {(d.item, d.attribute) for d in differences} == {
        ("/etc/one", "nlink"), ("/etc/one", "link_group"), ("/etc/two", "nlink"), ("/etc/two", "link_group"),
    }
    link_groups = [d for d in differences if d.attribute == "link_group"]
    assert all(d.expected == "/etc/one" and d.found is None for d in link_groups)


def test_sparse_file_made_dense():
    found = base_fingerprint()
    entry = found["trees"]["/etc"]["items"]["big.img"]
    entry["allocated"] = 10485760
    entry["sparse"] = False
    difference = only(differences_of(found, "trees"))
    assert (difference.item, difference.attribute) == ("/etc/big.img", "sparse")
    assert (difference.expected, difference.found) == (True, False)


def test_symlink_target_changed():
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["localtime"]["target"] = "/usr/share/zoneinfo/Europe/Paris"
    difference = only(differences_of(found, "trees"))
    assert (difference.item, difference.attribute) == ("/etc/localtime", "target")


def test_directory_mtime_ignored():
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["ssh"]["mtime_ns"] = 99
    found["trees"]["/etc"]["items"]["."]["mtime_ns"] = 99
    assert differences_of(found, "trees") == []


def test_file_mtime_compared():
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["hosts"]["mtime_ns"] = 99
    assert only(differences_of(found, "trees")).attribute == "mtime_ns"


def test_ignored_path_skipped(identity):
    expected = base_fingerprint()
    expected["trees"]["/var/lib"] = {"status": "ok", "items": {"postgresql/15/main/base/1": file_entry()}}
    found = copy.deepcopy(expected)
    found["trees"]["/var/lib"]["items"]["postgresql/15/main/base/1"]["sha256"] = HASH_B
    assert compare(expected, found, family="trees", identity=identity, part="/var/lib") == []
    assert len(compare(expected, found, family="trees", part="/var/lib")) == 1


def test_tree_part_selects_one_root():
    found = base_fingerprint()
    found["trees"]["/etc"]["items"]["hosts"]["sha256"] = HASH_B
    assert len(differences_of(found, "trees", part="/etc")) == 1


def test_tree_unavailable_on_found_side():
    found = base_fingerprint()
    found["trees"]["/etc"] = {"status": "unavailable", "reason": "/etc: Permission denied"}
    difference = only(differences_of(found, "trees"))
    assert difference.attribute == "status"
    assert "Permission denied" in difference.found


def test_stopped_unit_named():
    found = base_fingerprint()
    found["units"]["items"]["postgresql.service"].update(active="inactive", sub="dead")
    differences = differences_of(found, "units")
    assert {(d.item, d.attribute, d.expected, d.found) for d in differences} == {
        ("postgresql.service", "active", "active", "inactive"),
        ("postgresql.service", "sub", "exited", "dead"),
    }


def test_disabled_unit_named():
    found = base_fingerprint()
    found["units"]["items"]["ssh.service"]["enabled"] = "disabled"
    difference = only(differences_of(found, "units"))
    assert (difference.item, difference.expected, difference.found) == ("ssh.service", "enabled", "disabled")


def test_ignored_unit_skipped(identity):
    found = base_fingerprint()
    del found["units"]["items"]["systemd-tmpfiles-clean.timer"]
    assert differences_of(found, "units", identity=identity) == []
    assert len(differences_of(found, "units")) == 1


def test_unit_read_error_reported():
    found = base_fingerprint()
    found["units"]["items"]["postgresql.service"].update(active="unknown", sub="unknown", error="Failed to connect")
    attributes = {d.attribute for d in differences_of(found, "units")}
    assert attributes == {"active", "sub", "error"}


def test_package_version_change_named():
    found = base_fingerprint()
    found["packages"]["items"]["softhsm2"] = "2.6.1-3"
    difference = only(differences_of(found, "packages"))
    assert (difference.item, difference.expected, difference.found) == ("softhsm2", "2.6.1-2.1", "2.6.1-3")


def test_missing_package_named():
    found = base_fingerprint()
    del found["packages"]["items"]["postgresql-15"]
    difference = only(differences_of(found, "packages"))
    assert (difference.item, difference.found) == ("postgresql-15", "missing")


def test_missing_socket_named():
    found = base_fingerprint()
    del found["sockets"]["items"]["tcp 127.0.0.1:5432"]
    assert only(differences_of(found, "sockets")).item == "tcp 127.0.0.1:5432"


def test_changed_user_named():
    found = base_fingerprint()
    found["users"]["items"]["postgres"]["uid"] = 105
    difference = only(differences_of(found, "users"))
    assert (difference.item, difference.attribute, difference.expected, difference.found) == ("postgres", "uid", 104, 105)


def test_group_member_lost():
    found = base_fingerprint()
    found["groups"]["items"]["ssl-cert"]["members"] = []
    difference = only(differences_of(found, "groups"))
    assert (difference.item, difference.attribute) == ("ssl-cert", "members")


def test_changed_table_named():
    found = base_fingerprint()
    found["databases"]["robert"]["tables"]["public.identity"] = {"rows": 2, "sha256": HASH_B}
    differences = differences_of(found, "databases", part="robert")
    assert {(d.item, d.attribute) for d in differences} == {("robert/public.identity", "rows"),
                                                          ("robert/public.identity", "sha256")}


def test_missing_table_and_sequence_named():
    found = base_fingerprint()
    found["databases"]["robert"]["tables"] = {}
    found["databases"]["robert"]["sequences"] = {"public.identity_id_seq": "2"}
    items = {d.item for d in differences_of(found, "databases")}
    assert items == {"robert/public.identity", "robert/sequence public.identity_id_seq"}


def test_database_unavailable_reported():
    found = base_fingerprint()
    found["databases"]["robert"] = {"status": "unavailable", "reason": "database robert: connection refused"}
    difference = only(differences_of(found, "databases"))
    assert difference.item == "robert"
    assert "connection refused" in difference.found


def test_hsm_key_check_value_changed():
    found = base_fingerprint()
    found["hsm"]["kcv"] = "ffffff"
    difference = only(differences_of(found, "hsm"))
    assert (difference.attribute, difference.expected, difference.found) == ("kcv", "a1b2c3", "ffffff")


def test_hsm_unavailable_reported():
    found = base_fingerprint()
    found["hsm"] = {"status": "unavailable", "reason": "token 'robert-kek' not found"}
    difference = only(differences_of(found, "hsm"))
    assert "not found" in difference.found


def test_route_body_changed():
    found = base_fingerprint()
    found["routes"]["items"]["register"]["status"] = 502
    difference = only(differences_of(found, "routes"))
    assert (difference.item, difference.attribute, difference.found) == ("register", "status", 502)


def test_sleep_defers_databases_and_routes():
    found = base_fingerprint()
    found["databases"] = {}
    for family in ("databases", "routes"):
        result = differences_of(found, family, mode="sleep")
        assert isinstance(result, DeferredToWake)
        assert result == []


def sleeping_fingerprint() -> dict:
    found = base_fingerprint()
    found["units"]["items"]["postgresql.service"].update(enabled="disabled", active="inactive", sub="dead")
    del found["sockets"]["items"]["tcp 127.0.0.1:5432"]
    return found


def test_sleep_expects_units_disabled():
    assert differences_of(sleeping_fingerprint(), "units", mode="sleep") == []
    assert differences_of(sleeping_fingerprint(), "sockets", mode="sleep") == []


def test_sleep_reports_unit_still_running():
    differences = differences_of(base_fingerprint(), "units", mode="sleep")
    assert {(d.item, d.attribute, d.expected, d.found) for d in differences} == {
        ("postgresql.service", "enabled", "disabled", "enabled"),
        ("postgresql.service", "active", "inactive", "active"),
        ("postgresql.service", "sub", "dead", "exited"),
    }


def test_sleep_reports_socket_still_listening():
    difference = only(differences_of(base_fingerprint(), "sockets", mode="sleep"))
    assert (difference.item, difference.expected) == ("tcp 127.0.0.1:5432", "absent")


def test_sleep_compares_trees_normally():
    found = sleeping_fingerprint()
    found["trees"]["/etc"]["items"]["hosts"]["sha256"] = HASH_B
    assert only(differences_of(found, "trees", mode="sleep")).item == "/etc/hosts"


def test_family_missing_from_found():
    found = base_fingerprint()
    del found["hsm"]
    difference = only(differences_of(found, "hsm"))
    assert difference.found == "not collected"


def test_unknown_family_rejected():
    with pytest.raises(ValueError, match="unknown family"):
        compare(base_fingerprint(), base_fingerprint(), family="kernel")


def test_checks_one_per_tree_and_database():
    names = [check_name(family, part) for family, part in checks_of(base_fingerprint())]
    assert names == ["packages", "units", "sockets", "users", "groups", "trees:/etc", "databases:robert", "hsm",
                     "routes"]


def test_difference_text_names_everything():
    text = str(Difference("robert-ws", "trees", "/etc/hosts", "0644", "0600", "mode"))
    assert text == "robert-ws trees /etc/hosts (mode): expected 0644, found 0600"
