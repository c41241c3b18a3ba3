import textwrap
from pathlib import Path

import pytest
import yaml

from tacops.foundation.description import default_description_path, load_description
from tacops.foundation.errors import DescriptionError, ExitCode
from tacops.foundation.inventory import build_inventory


def _write_modified(tmp_path: Path, change) -> Path:
    data = yaml.safe_load(default_description_path().read_text())
    change(data)
    path = tmp_path / "ct-system.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_description_loads():
    description = load_description()
    assert description.production_vm_count() == 374
    assert set(description.ct_hosts()) == {"robert-ws", "robert-crypto", "submission-code", "static-zone"}
    assert set(description.backup_hosts()) == {"backup-a", "backup-b"}


def test_lab_profile_names_mongodb_omission():
    omitted = load_description().profile("lab").omitted
    assert any("MongoDB" in item.what and "Debian 12" in item.reason for item in omitted)


def test_every_public_route_listed():
    paths = {route.path for route in load_description().routes}
    for path in ("/api/v6/register", "/api/v6/status", "/api/v6/report", "/api/v6/unregister",
                 "/api/v6/deleteExposureHistory", "/api/v6/captcha", "/api/v6/captcha/{id}/image",
                 "/api/v6/captcha/{id}/audio", "/api/clea/v1/wreport"):
        assert path in paths


def test_unknown_key_named(tmp_path):
    path = _write_modified(tmp_path, lambda d: d["profiles"]["lab"]["hosts"]["robert-ws"].update(adress="x"))
    with pytest.raises(DescriptionError) as caught:
        load_description(path)
    assert "profiles.lab.hosts.robert-ws.adress" in caught.value.message
    assert "unknown key" in caught.value.message
    assert caught.value.exit_code == ExitCode.INVALID_INPUT


def test_wrong_state_kind_names_expected_values(tmp_path):
    path = _write_modified(tmp_path, lambda d: d["services"]["robert-crypto-grpc-server"]["state"][0].update(
        kind="oracle"))
    with pytest.raises(DescriptionError) as caught:
        load_description(path)
    message = caught.value.message
    assert "services.robert-crypto-grpc-server.state.0.kind" in message
    assert "'postgresql'" in message


def test_address_outside_subnet_rejected(tmp_path):
    path = _write_modified(tmp_path, lambda d: d["profiles"]["lab"]["hosts"]["backup-a"].update(
        address="10.9.9.9"))
    with pytest.raises(DescriptionError) as caught:
        load_description(path)
    assert "10.9.9.9 is not in subnet 10.213.77.0/24" in caught.value.message


def test_unknown_service_in_role_rejected(tmp_path):
    path = _write_modified(tmp_path, lambda d: d["roles"]["robert-ws"]["services"].append("ghost"))
    with pytest.raises(DescriptionError) as caught:
        load_description(path)
    assert "roles.robert-ws.services: unknown service 'ghost'" in caught.value.message


def test_missing_file_names_path(tmp_path):
    with pytest.raises(DescriptionError) as caught:
        load_description(tmp_path / "absent.yaml")
    assert "absent.yaml" in caught.value.message


def test_invalid_yaml_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""\
        schema_version: 1
        services: [unclosed
        """))
    with pytest.raises(DescriptionError) as caught:
        load_description(path)
    assert "not valid YAML" in caught.value.message


def test_ignored_paths_match_prefix_and_pattern():
    identity = load_description().identity
    assert identity.path_is_ignored("/var/log/syslog")
    assert identity.path_is_ignored("/var/log")
    assert not identity.path_is_ignored("/var/logger")
    assert not identity.path_is_ignored("/etc/nginx/nginx.conf")


def test_inventory_groups_follow_roles():
    inventory = build_inventory(load_description())
    children = inventory["all"]["children"]
    assert set(children["ct"]["hosts"]) == {"robert-ws", "robert-crypto", "submission-code", "static-zone"}
    assert set(children["backup"]["hosts"]) == {"backup-a", "backup-b"}
    crypto = children["robert_crypto"]["hosts"]["robert-crypto"]
    assert crypto["tacops_databases"] == ["robert"]
    assert crypto["tacops_address"] == "10.213.77.12"
    assert inventory["all"]["vars"]["tacops_backup_hosts"] == ["backup-a", "backup-b"]
