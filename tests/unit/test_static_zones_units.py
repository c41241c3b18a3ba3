"""Static zones without servers: configuration, ordering, URL lists, the front's rules."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from tacops.foundation.errors import AuthenticationError, InvalidInputError
from tacops.staticzones.config import StaticZonesConfig, load_config, parse_duration
from tacops.staticzones.front import directory_rules, nginx_string, render
from tacops.staticzones.http import Answer, ObjectHeaders, encode_path, normalize_location
from tacops.staticzones.publisher import index_rank, matches
from tacops.staticzones.source import parse_location, scan, stage
from tacops.staticzones.verify import compare, url_paths

TARGET = {"endpoint": "https://oos.cloudgouv-eu-west-1.outscale.com", "region": "cloudgouv-eu-west-1",
          "bucket": "tac-static", "prefix": "/zone/",
          "credentials": {"env": {"access_key_id": "OOS_KEY", "secret_access_key": "OOS_SECRET"}}}


def _config(**extra) -> StaticZonesConfig:
    return StaticZonesConfig.model_validate({"targets": {"oos": TARGET}, **extra})


def test_targets_keep_their_own_settings():
    other = dict(TARGET, endpoint="https://oss.eu-west-0.prod-cloud-ocb.orange-business.com", bucket="tac-obs",
                 prefix="", region="eu-west-0",
                 credentials={"env": {"access_key_id": "OBS_KEY", "secret_access_key": "OBS_SECRET"}})
    config = StaticZonesConfig.model_validate({"targets": {"oos": TARGET, "obs": other}})
    oos, obs = config.target("oos"), config.target("obs")
    assert (oos.name, oos.bucket, oos.prefix, oos.region) == ("oos", "tac-static", "zone/", "cloudgouv-eu-west-1")
    assert (obs.name, obs.bucket, obs.prefix, obs.region) == ("obs", "tac-obs", "", "eu-west-0")
    assert oos.state_key == "zone/.tacops-static/state.json"
    assert obs.key("v1/clusterIndex.json") == "v1/clusterIndex.json"
    assert config.retention == dt.timedelta(days=15)
    assert config.index_patterns == ["clusterIndex.json", "Config/config.json"]
    with pytest.raises(InvalidInputError, match="No target named oss"):
        config.target("oss")


def test_credentials_from_named_variables(monkeypatch):
    target = _config().target("oos")
    monkeypatch.delenv("OOS_SECRET", raising=False)
    monkeypatch.setenv("OOS_KEY", "AK")
    with pytest.raises(AuthenticationError, match="OOS_SECRET"):
        target.resolve_credentials()
    monkeypatch.setenv("OOS_SECRET", "s3cr3t")
    credentials = target.resolve_credentials()
    assert (credentials.access_key_id, credentials.secret_access_key) == ("AK", "s3cr3t")
    assert "s3cr3t" not in repr(credentials)


def test_credentials_file_must_be_private(tmp_path):
    path = tmp_path / "obs.credentials"
    path.write_text("[obs]\naws_access_key_id = AK\naws_secret_access_key = SK\n")
    path.chmod(0o644)
    target = _config(targets={"obs": dict(TARGET, credentials={"file": str(path), "profile": "obs"})}).target("obs")
    with pytest.raises(AuthenticationError, match="read by other users") as raised:
        target.resolve_credentials()
    assert raised.value.hint == f"Run: chmod 600 {path}"
    path.chmod(0o600)
    assert target.resolve_credentials().secret_access_key == "SK"
    wrong = _config(targets={"obs": dict(TARGET, credentials={"file": str(path), "profile": "nope"})})
    with pytest.raises(AuthenticationError, match="nope"):
        wrong.target("obs").resolve_credentials()


@pytest.mark.parametrize("document, key", [
    ({"targets": {"oos": dict(TARGET, endpoint="oos.example")}}, "targets.oos.endpoint"),
    ({"targets": {"oos": dict(TARGET, credentials={})}}, "targets.oos.credentials"),
    ({"targets": {"oos": TARGET}, "retention": "two weeks"}, "retention"),
    ({"targets": {"oos": TARGET}, "verify": {"pins": ["sha256/short"]}}, "verify.pins"),
    ({"targets": {"oos": TARGET}, "bucket": "x"}, "bucket"),
    ({"targets": {}}, "targets"),
])
def test_invalid_config_names_key(tmp_path, document, key):
    import yaml

    path = tmp_path / "static-zones.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InvalidInputError) as raised:
        load_config(path)
    assert key in raised.value.message
    assert str(path) in raised.value.message


def test_missing_config_file_hint(tmp_path):
    with pytest.raises(InvalidInputError) as raised:
        load_config(tmp_path / "absent.yaml")
    assert "absent.yaml" in raised.value.message
    assert "--config" in raised.value.hint


def test_durations():
    assert parse_duration("15d") == dt.timedelta(days=15)
    assert parse_duration("0s") == dt.timedelta(0)
    assert parse_duration(90) == dt.timedelta(seconds=90)
    with pytest.raises(ValueError):
        parse_duration("15 days")


def test_index_patterns_whole_names():
    patterns = ["clusterIndex.json", "Config/config.json"]
    assert index_rank("v1/clusterIndex.json", patterns) == 0
    assert index_rank("json/version-35/Config/config.json", patterns) == 1
    assert index_rank("json/version-35/Config/config.json.bak", patterns) is None
    assert index_rank("v1/myclusterIndex.json", patterns) is None
    assert index_rank("v1/2650/ab.json", patterns) is None
    assert matches("json/version-35/Links/a b.json", "*.json")


def test_paths_encoded_byte_for_byte():
    assert encode_path("json/liens utiles+FAQ 100%.json") == "json/liens%20utiles%2BFAQ%20100%25.json"
    assert encode_path("Strings/été.json") == "Strings/%C3%A9t%C3%A9.json"
    assert encode_path("Case/UPPER.JSON") == "Case/UPPER.JSON"


def test_redirects_compare_as_paths():
    assert normalize_location("http://127.0.0.1:8080/json/", "http://127.0.0.1:8080/json") == "/json/"
    assert normalize_location("https://front.example/json/", "https://front.example/json") == "/json/"
    assert normalize_location("/a%20b/", "https://front.example/a%20b") == "/a%20b/"
    assert normalize_location(None, "http://x/") is None


def test_url_list_files_and_directories():
    paths = url_paths(["json/version-35/Config/config.json", "v1/clusterIndex.json"], extra=["json/version-35"])
    assert "/json/version-35/Config/config.json" in paths
    assert {"/json", "/json/", "/json/version-35/Config", "/json/version-35/Config/", "/v1", "/v1/", "/"} <= set(paths)
    assert "/.tacops-static/state.json" in paths
    assert any(path.startswith("/tacops-parity-probe/") for path in paths)


def _answer(status=200, sha="a", content_type="application/json", encoding=None, cache=None, location=None,
            url="http://origin/x"):
    return Answer(url=url, status=status, headers=ObjectHeaders(content_type, encoding, cache), location=location,
                  sha256=sha)


def test_compare_names_each_field():
    assert compare("/x", _answer(), _answer(url="https://front/x")) == []
    differences = compare("/x", _answer(), _answer(sha="b", content_type="text/plain", encoding="gzip",
                                                   cache="no-cache"))
    assert {item.field for item in differences} == {"sha256", "content_type", "content_encoding", "cache_control"}
    redirect = compare("/d", _answer(301, sha="1", location="http://origin/d/", content_type="text/html; a"),
                       _answer(301, sha="2", location="https://front/d/", content_type="text/html",
                               url="https://front/d"))
    assert redirect == []
    wrong = compare("/d", _answer(301, location="/d/"), _answer(301, location="/e/"))
    assert [item.field for item in wrong] == ["location"]


STATE = {
    "objects": {"json/a.json": {}, "about/index.html": {}, "v1/clusterIndex.json": {}},
    "directories": {
        "": {"slash": {"status": 403}},
        "json": {"slash": {"status": 403}, "bare": {"status": 301, "location": "/json/"}},
        "about": {"slash": {"status": 200}, "bare": {"status": 301, "location": "/about/"}},
        "v1": {"slash": {"status": 404}, "bare": {"status": 302, "location": "/v1/"}},
    },
}


def test_front_rules_follow_origin():
    rules, count = directory_rules(STATE["objects"], STATE["directories"], ["index.html"])
    assert count == 4
    assert rules["redirect301"] == [("/about", "/about/"), ("/json", "/json/")]
    assert rules["redirect302"] == [("/v1", "/v1/")]
    assert rules["index"] == [("/about/", "/about/index.html")]
    assert rules["forbidden"] == ["/", "/json/"]
    assert rules["missing"] == ["/v1/"]


def test_front_config_passes_nginx_check(tmp_path):
    from tacops.staticzones.config import FrontSettings

    config = _config()
    front = FrontSettings(target="oos", server_names=["app-static.tousanticovid.gouv.fr"], listen="127.0.0.1:8443",
                          certificate=tmp_path / "front.crt", certificate_key=tmp_path / "front.key",
                          add_headers={"X-Content-Type-Options": "nosniff"},
                          # An address, so that nginx -t resolves no name (this machine reaches no DNS).
                          upstream="https://127.0.0.1:9443")
    text = render(front, config.target("oos"), STATE)
    assert "proxy_pass https://tacops_oos_bucket/tac-static/zone/;" in text
    assert "server 127.0.0.1:9443;" in text
    assert "proxy_set_header Host oos.cloudgouv-eu-west-1.outscale.com;" in text
    assert "proxy_ssl_name oos.cloudgouv-eu-west-1.outscale.com;" in text
    assert 'set $args "";' in text
    assert "location ^~ /.tacops-static/" in text
    nginx = Path("/usr/sbin/nginx")
    if not nginx.exists():
        pytest.skip("nginx is not installed (scripts/test.sh installs it)")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=test", "-days", "1", "-keyout", str(tmp_path / "front.key"), "-out",
                    str(tmp_path / "front.crt")], check=True, capture_output=True)
    (tmp_path / "front.conf").write_text(text)
    # A second zone's front fits in the same nginx: its names carry its target's name.
    other = config.target("oos").model_copy(update={"name": "obs-2"})
    second = front.model_copy(update={"target": "obs-2", "listen": "127.0.0.1:8444"})
    (tmp_path / "front-2.conf").write_text(render(second, other, STATE))
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; events {{}}\n"
                    f"http {{ access_log off; include {tmp_path}/front.conf; include {tmp_path}/front-2.conf; }}\n")
    checked = subprocess.run([str(nginx), "-t", "-c", str(main), "-e", str(tmp_path / "error.log")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_nginx_strings_quoted():
    assert nginx_string('/a "b"/') == '"/a \\"b\\"/"'
    with pytest.raises(InvalidInputError, match="nginx"):
        nginx_string("/price$/")


def test_scan_rejects_broken_links(tmp_path):
    (tmp_path / "zone" / "a b").mkdir(parents=True)
    (tmp_path / "zone" / "a b" / "été+1%.json").write_bytes(b"{}\n")
    files = scan(tmp_path / "zone")
    assert [item.path for item in files] == ["a b/été+1%.json"]
    assert files[0].sha256 == "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"
    (tmp_path / "zone" / "gone.json").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="gone.json"):
        scan(tmp_path / "zone")
    with pytest.raises(InvalidInputError, match="does not exist"):
        scan(tmp_path / "absent")


def test_remote_docroot_tar_stream(tmp_path):
    """Run bash in place of ssh: the same tar stream, extraction and error path."""
    from tacops.foundation.errors import UnreachableError

    (tmp_path / "www" / "v1").mkdir(parents=True)
    (tmp_path / "www" / "v1" / "clusterIndex.json").write_text("{}\n")
    assert parse_location("static-zone:/var/www/static") == ("static-zone", "/var/www/static")
    assert parse_location("/var/www/static") == (None, "/var/www/static")
    with stage(f"host:{tmp_path}/www", ssh_command=["bash", "-c"]) as tree:
        assert (tree.root / "v1" / "clusterIndex.json").read_text() == "{}\n"
        staged = tree.root
    assert not staged.exists()
    with pytest.raises(UnreachableError, match="host"):
        stage(f"host:{tmp_path}/absent", ssh_command=["bash", "-c"])


def test_lab_addresses_need_the_lab_route(monkeypatch):
    from tacops.foundation.errors import RouteGuardError
    from tacops.lab import guard
    from tacops.staticzones.http import guard_lab_address

    monkeypatch.setattr(guard, "route_device",
                        lambda address: ("eth0", f"{address} via 192.0.2.1 dev eth0"))
    with pytest.raises(RouteGuardError, match="10.213.77.14"):
        guard_lab_address("10.213.77.14")
    guard_lab_address("127.0.0.1")
    monkeypatch.setattr(guard, "route_device", lambda address: ("tacops0", f"{address} dev tacops0"))
    guard_lab_address("10.213.77.14")


def test_hash_cache_reuses_unchanged_files(tmp_path):
    from tacops.staticzones.source import HashCache

    root = tmp_path / "zone"
    root.mkdir()
    (root / "a.json").write_text("{}\n")
    (root / "b.json").write_text("[]\n")
    cache_file = tmp_path / "cache.json"
    first = scan(root, cache=HashCache(cache_file))
    assert sorted(json.loads(cache_file.read_text())) == ["a.json", "b.json"]
    # A cached entry is used as long as the file is untouched: plant a marker hash to see it.
    entries = json.loads(cache_file.read_text())
    entries["a.json"][4] = "0" * 64
    cache_file.write_text(json.dumps(entries))
    again = {item.path: item.sha256 for item in scan(root, cache=HashCache(cache_file))}
    assert again["a.json"] == "0" * 64
    assert again["b.json"] == {item.path: item.sha256 for item in first}["b.json"]
    # Rewriting the file, even to the same size and modification time, moves its change time.
    stat = (root / "a.json").stat()
    (root / "a.json").write_text("[]\n")
    os.utime(root / "a.json", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rewritten = {item.path: item.sha256 for item in scan(root, cache=HashCache(cache_file))}
    assert rewritten["a.json"] == rewritten["b.json"]
    # Files that are gone leave the cache; read=False ignores what it holds.
    (root / "b.json").unlink()
    scan(root, cache=HashCache(cache_file))
    assert sorted(json.loads(cache_file.read_text())) == ["a.json"]
    assert HashCache(cache_file, read=False).entries == {}


def test_publish_under_rejects_escaping_paths():
    from tacops.staticzones.operations import check_zone_path

    assert check_zone_path("/v1/") == "v1"
    assert check_zone_path("") == ""
    for bad in ("../x", "v1/../..", "v1//x", "./v1", "v1\\x"):
        with pytest.raises(InvalidInputError, match="--under"):
            check_zone_path(bad)


def test_tls_hint_names_the_cause():
    from tacops.staticzones.http import tls_hint

    assert "name" in tls_hint(Exception("IP address mismatch, certificate is not valid for '127.0.0.1'"))
    assert "verify.ca_file" in tls_hint(Exception("certificate verify failed: unable to get local issuer"))
