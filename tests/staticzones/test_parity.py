"""Sync, front and verify against real servers: Apache (origin), two SeaweedFS stores with
their own keys, and an nginx front per store with TLS from a test CA.

The tests share one set of servers and run in file order: each starts from the state the
previous one left (the bucket published, the fronts running)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import SPECIAL_FILES


def _bucket(zones, target):
    document = zones.config()["targets"][target]
    prefix = document["prefix"].strip("/")
    return zones.stores[target].client(), document["bucket"], f"{prefix}/" if prefix else ""


def _docroot_files(zones) -> dict[str, bytes]:
    files = {}
    for path in sorted(zones.docroot.rglob("*")):
        if path.is_file():
            files[path.relative_to(zones.docroot).as_posix()] = path.read_bytes()
    return files


def _json(result) -> dict:
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


def test_sync_two_targets_identical(zones):
    result = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url,
                          "--to", "oos", "--to", "obs")
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = _json(result)
    files = _docroot_files(zones)
    assert outcome["files"] == len(files)
    assert {item["target"]: item["ok"] for item in outcome["targets"]} == {"oos": True, "obs": True}

    for target in ("oos", "obs"):
        client, bucket, prefix = _bucket(zones, target)
        keys = {item["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for item in page.get("Contents", []) if ".tacops-static/" not in item["Key"]}
        # Every path byte for byte, the awkward names included.
        assert keys == {prefix + path for path in files}
        for special in SPECIAL_FILES:
            body = client.get_object(Bucket=bucket, Key=prefix + special)["Body"].read()
            assert body == files[special]
        # Headers come from what Apache returns: gzip only where Apache announces it,
        # never from mod_deflate (Apache compresses JSON on the fly for clients that accept it).
        head = client.head_object(Bucket=bucket, Key=prefix + "precompressed/strings-fr.json.gz")
        assert head.get("ContentEncoding") == "gzip"
        head = client.head_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")
        assert head["ContentType"] == "application/json; charset=utf-8"
        assert head.get("ContentEncoding") is None
        assert head["CacheControl"] == "no-cache, max-age=0"
        head = client.head_object(Bucket=bucket, Key=prefix + "infos/v2/key-figures-nat.pb.gz")
        assert (head["ContentType"], head.get("ContentEncoding")) == ("application/x-protobuf", None)

        nginx = zones.front(target)
        checked = zones.verify(target)
        report = _json(checked)
        assert checked.returncode == 0, json.dumps(report["differences"][:20], indent=1) + checked.stderr
        assert report["identical"] is True
        assert report["tls"]["pin_ok"] is True
        assert report["urls_checked"] > len(files)
        assert nginx.url.startswith("https://")


def test_resync_unchanged_uploads_nothing(zones):
    result = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url,
                          "--to", "oos")
    assert result.returncode == 0, result.stderr
    outcome = _json(result)["targets"][0]
    assert outcome["uploaded"] == 0
    assert outcome["skipped"] == len(_docroot_files(zones))
    assert outcome["index_published"] == []


def test_verify_reports_faults_by_url(zones):
    client, bucket, prefix = _bucket(zones, "oos")
    changed = "json/version-35/Risks/risks.json"
    retyped = "json/version-35/Links/liens utiles+FAQ 100%.json"
    missing = "json/version-35/Strings/chaînes-spéciales-été.json"
    original = (zones.docroot / changed).read_bytes()
    flipped = original[:10] + bytes([original[10] ^ 0x01]) + original[11:]
    head = client.head_object(Bucket=bucket, Key=prefix + changed)
    client.put_object(Bucket=bucket, Key=prefix + changed, Body=flipped, ContentType=head["ContentType"],
                      CacheControl=head["CacheControl"], Metadata=head["Metadata"])
    client.copy_object(Bucket=bucket, Key=prefix + retyped, CopySource={"Bucket": bucket, "Key": prefix + retyped},
                       MetadataDirective="REPLACE", ContentType="text/plain", CacheControl="public, max-age=300")
    client.delete_object(Bucket=bucket, Key=prefix + missing)

    checked = zones.verify("oos")
    assert checked.returncode == 3, checked.stdout + checked.stderr
    report = _json(checked)
    found = {(item["url"], item["field"]) for item in report["differences"]}
    assert ("/" + changed, "sha256") in found
    assert ("/" + retyped, "content_type") in found
    assert ("/" + missing, "status") in found
    missing_item = next(item for item in report["differences"]
                        if item["url"] == "/" + missing and item["field"] == "status")
    assert (missing_item["origin"], missing_item["front"]) == (200, 404)
    # Nothing else differs.
    assert {url for url, _field in found} == {"/" + changed, "/" + retyped, "/" + missing}
    saved = json.loads((zones.root / "verify-oos.json").read_text(encoding="utf-8"))
    assert saved["identical"] is False
    assert len(saved["differences"]) == len(report["differences"])

    # --recheck reads every object back and repairs the three.
    result = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url,
                          "--to", "oos", "--recheck")
    assert result.returncode == 0, result.stderr
    assert _json(result)["targets"][0]["uploaded"] == 3
    assert zones.verify("oos").returncode == 0


def test_wrong_pin_is_reported(zones):
    document = zones.config()
    document["verify"]["pins"] = ["sha256/" + "A" * 43 + "="]
    config = zones.write_config(document, zones.root / "wrong-pin.yaml")
    checked = zones.verify("oos", config=config)
    assert checked.returncode == 3
    report = _json(checked)
    assert report["tls"]["pin_ok"] is False
    assert zones.ca.spki_pin in report["tls"]["pins_presented"]
    assert report["differences"] == []
    # A pin on the CA's key matches too, as it does for the apps.
    document["verify"]["pins"] = [f"sha256/{zones.ca.ca_spki_pin}"]
    config = zones.write_config(document, zones.root / "ca-pin.yaml")
    assert zones.verify("oos", config=config).returncode == 0


def test_verify_http_front_or_down_front(zones):
    from .services import free_port

    # The origin itself as a plain-HTTP "front": every URL matches, but no key meets the pins.
    plain = zones.tacops("--json", "verify", "--origin", zones.apache.url, "--front", zones.apache.url, "--from",
                         str(zones.docroot), "--report", str(zones.root / "verify-http.json"))
    assert plain.returncode == 3, plain.stdout + plain.stderr
    report = _json(plain)
    assert report["differences"] == []
    assert report["tls"]["pin_ok"] is False
    down = zones.tacops("verify", "--origin", zones.apache.url, "--front", f"https://127.0.0.1:{free_port()}/",
                        "--from", str(zones.docroot), "--report", str(zones.root / "verify-down.json"))
    assert down.returncode == 4, down.stdout + down.stderr
    assert "is unreachable" in down.stderr


def _add_iteration(zones, iteration: int, files: int) -> list[str]:
    directory = zones.docroot / "v1" / str(iteration)
    directory.mkdir(parents=True)
    directory.chmod(0o755)
    prefixes = [f"{number:04x}" for number in range(files)]
    for prefix in prefixes:
        path = directory / f"{prefix}.json"
        path.write_text(json.dumps({"iteration": iteration, "prefix": prefix,
                                    "pad": hashlib.sha256(prefix.encode()).hexdigest() * 8}) + "\n")
        path.chmod(0o644)
    index = zones.docroot / "v1" / "clusterIndex.json"
    index.write_text(json.dumps({"iteration": iteration, "prefixes": prefixes}) + "\n")
    return prefixes


def test_index_never_before_data(zones):
    client, bucket, prefix = _bucket(zones, "obs")
    iteration = 2653
    _add_iteration(zones, iteration, 600)
    observations = {"old": 0, "new": 0, "incomplete": []}
    done = threading.Event()

    def watch():
        while not done.is_set():
            index = json.loads(client.get_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")["Body"].read())
            if index["iteration"] != iteration:
                observations["old"] += 1
                time.sleep(0.005)
                continue
            observations["new"] += 1
            present = {item["Key"] for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=f"{prefix}v1/{iteration}/") for item in page.get("Contents", [])}
            named = {f"{prefix}v1/{iteration}/{name}.json" for name in index["prefixes"]}
            if named - present:
                observations["incomplete"].append(len(named - present))
            if observations["new"] >= 3:
                return

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = zones.tacops("sync", "--from", str(zones.docroot), "--origin", zones.apache.url, "--to", "obs")
    finally:
        time.sleep(0.5)
        done.set()
        watcher.join(timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert observations["old"] > 0, "the watcher never saw the bucket during the sync"
    assert observations["new"] > 0
    assert observations["incomplete"] == []


def test_killed_target_keeps_previous_set(zones):
    store = zones.stores["obs"]
    client, bucket, prefix = _bucket(zones, "obs")
    before_index = client.get_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")["Body"].read()
    before_state = json.loads(client.get_object(Bucket=bucket, Key=prefix + ".tacops-static/state.json")["Body"].read())
    iteration = 2654
    _add_iteration(zones, iteration, 3000)
    command = [sys.executable, "-m", "tacops.cli", "static-zones", "--config", str(zones.config_path), "--json",
               "sync", "--from", str(zones.docroot), "--origin", zones.apache.url, "--to", "oos", "--to", "obs"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=zones.environment)
    killed = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}v1/{iteration}/", MaxKeys=50)
            if listing.get("KeyCount", 0) >= 20:
                store.kill()
                killed = True
                break
            time.sleep(0.05)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
        if store.process is None or store.process.poll() is not None:
            store.start()
    assert killed, "the sync finished before the store could be killed"
    assert process.returncode == 4, stdout + stderr
    outcome = {item["target"]: item for item in json.loads(stdout)["targets"]}
    assert outcome["oos"]["ok"] is True
    assert outcome["obs"]["ok"] is False
    assert "obs" in outcome["obs"]["error"]
    assert "obs" in stderr

    # The store is back (same data): the previous index and every file of the previous set are intact.
    client = store.client()
    assert client.get_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")["Body"].read() == before_index
    present = {item["Key"]: item["Size"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix) for item in page.get("Contents", [])}
    for path, entry in before_state["objects"].items():
        assert present.get(prefix + path) == entry["size"], path

    rerun = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url, "--to", "obs")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    finished = _json(rerun)["targets"][0]
    assert finished["skipped"] >= 20
    assert "v1/clusterIndex.json" in finished["index_published"]
    zones.front("obs")
    assert zones.verify("obs").returncode == 0
    zones.front("oos")
    assert zones.verify("oos").returncode == 0


def test_wrong_credentials_spare_other_target(zones):
    (zones.docroot / "maintenance" / "extra-note.json").write_text('{"note": 1}\n')
    result = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url,
                          "--to", "oos", "--to", "obs", env={"OOS_SECRET_ACCESS_KEY": "not-the-secret"})
    assert result.returncode == 6, result.stdout + result.stderr
    outcome = {item["target"]: item for item in _json(result)["targets"]}
    assert outcome["oos"]["ok"] is False
    assert "oos" in outcome["oos"]["error"]
    assert "credentials" in outcome["oos"]["error"]
    assert "not-the-secret" not in result.stdout + result.stderr
    assert outcome["obs"]["ok"] is True
    assert outcome["obs"]["uploaded"] == 1

    missing = zones.tacops("sync", "--from", str(zones.docroot), "--origin", zones.apache.url, "--to", "oos",
                           env={"OOS_ACCESS_KEY_ID": ""})
    assert missing.returncode == 6
    assert "OOS_ACCESS_KEY_ID" in missing.stdout + missing.stderr
    assert zones.sync("oos").returncode == 0


def test_unreachable_target_is_named(zones):
    from .services import free_port

    document = zones.config()
    document["targets"]["oos"]["endpoint"] = f"http://127.0.0.1:{free_port()}"
    config = zones.write_config(document, zones.root / "unreachable.yaml")
    result = zones.tacops("sync", "--from", str(zones.docroot), "--origin", zones.apache.url, "--to", "oos",
                          config=config)
    assert result.returncode == 4, result.stdout + result.stderr
    assert "oos" in result.stderr
    assert "unreachable" in result.stderr


def _state(zones, target):
    client, bucket, prefix = _bucket(zones, target)
    return client.get_object(Bucket=bucket, Key=prefix + ".tacops-static/state.json")["Body"].read()


def test_unreadable_file_stops_sync(zones):
    before = _state(zones, "oos")
    docroot = zones.root / "docroot-broken"
    shutil.copytree(zones.docroot, docroot, symlinks=True)
    (docroot / "json" / "version-35" / "Risks" / "risks-next.json").symlink_to(docroot / "nowhere.json")
    (docroot / "json" / "version-35" / "Risks" / "risks.json").write_text('{"changed": true}\n')
    result = zones.tacops("sync", "--from", str(docroot), "--origin", zones.apache.url, "--to", "oos")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "json/version-35/Risks/risks-next.json" in result.stderr
    assert _state(zones, "oos") == before

    (docroot / "json" / "version-35" / "Risks" / "risks-next.json").unlink()
    unreadable = docroot / "json" / "version-35" / "Risks" / "secret.json"
    unreadable.write_text("{}\n")
    unreadable.chmod(0o000)
    for directory in [zones.root, *docroot.rglob("*")]:
        if directory.is_dir():
            directory.chmod(0o755)
    (zones.root / "static-zones.yaml").chmod(0o644)
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m", "tacops.cli",
               "static-zones", "--config", str(zones.config_path), "sync", "--from", str(docroot), "--origin",
               zones.apache.url, "--to", "oos"]
    result = subprocess.run(command, capture_output=True, text=True, env=zones.environment, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "json/version-35/Risks/secret.json" in result.stderr
    assert _state(zones, "oos") == before


def test_rewritten_header_blocks_index(zones, tmp_path):
    """SeaweedFS replaces Content-Type application/octet-stream by a guess from the extension."""
    client, bucket, prefix = _bucket(zones, "oos")
    before = client.get_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")["Body"].read()
    batch = tmp_path / "batch"
    (batch / "CertList").mkdir(parents=True)
    (batch / "CertList" / "certlist-next.pb.gz").write_bytes(b"\x1f\x8b\x08\x00payload")
    (batch / "clusterIndex.json").write_text('{"iteration": 9999}\n')
    document = zones.config()
    document["headers"] = [{"pattern": "*.pb.gz", "content_type": "application/octet-stream"},
                           {"pattern": "*.json", "content_type": "application/json; charset=utf-8"}]
    config = zones.write_config(document, zones.root / "octet.yaml")
    result = zones.tacops("publish", "--from", str(batch), "--under", "v1", "--to", "oos", config=config)
    assert result.returncode == 5, result.stdout + result.stderr
    assert "certlist-next.pb.gz" in result.stderr
    assert "application/octet-stream" in result.stderr
    assert client.get_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")["Body"].read() == before
    client.delete_object(Bucket=bucket, Key=prefix + "v1/CertList/certlist-next.pb.gz")


def test_publish_clea_batch_prunes(zones, tmp_path):
    client, bucket, prefix = _bucket(zones, "oos")
    batch = tmp_path / "clea"
    (batch / "2660").mkdir(parents=True)
    for name in ("0a", "0b", "0c"):
        (batch / "2660" / f"{name}.json").write_text(json.dumps({"prefix": name}) + "\n")
    (batch / "clusterIndex.json").write_text(json.dumps({"iteration": 2660, "prefixes": ["0a", "0b", "0c"]}) + "\n")
    (batch / "extra-index").mkdir()
    (batch / "extra-index" / "clusterIndex.json").write_text("{}\n")
    refused = zones.tacops("publish", "--from", str(batch), "--under", "v1", "--to", "oos", "--require-one-index")
    assert refused.returncode == 2
    assert "exactly one index" in refused.stderr
    shutil.rmtree(batch / "extra-index")

    old = {item["Key"] for item in client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}v1/2650/")["Contents"]}
    assert old
    kept = zones.tacops("--json", "publish", "--from", str(batch), "--under", "v1", "--to", "oos",
                        "--require-one-index", "--prune-under", "v1")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    outcome = _json(kept)["targets"][0]
    assert outcome["index_published"] == ["v1/clusterIndex.json"]
    assert outcome["deleted"] == []
    assert outcome["stale_kept"] > len(old)
    head = client.head_object(Bucket=bucket, Key=prefix + "v1/2660/0a.json")
    assert head["ContentType"] == "application/json; charset=utf-8"
    assert {item["Key"] for item in client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}v1/2650/")["Contents"]} \
        == old
    # Files outside --prune-under are left alone whatever the set holds.
    assert client.head_object(Bucket=bucket, Key=prefix + "json/version-35/Config/config.json")

    document = zones.config()
    document["retention"] = "0s"
    config = zones.write_config(document, zones.root / "no-retention.yaml")
    pruned = zones.tacops("--json", "publish", "--from", str(batch), "--under", "v1", "--to", "oos",
                          "--prune-under", "v1", config=config)
    assert pruned.returncode == 0, pruned.stderr
    outcome = _json(pruned)["targets"][0]
    assert outcome["uploaded"] == 0
    assert any(path.startswith("v1/2650/") for path in outcome["deleted"])
    assert client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}v1/2650/").get("KeyCount", 0) == 0
    assert client.head_object(Bucket=bucket, Key=prefix + "v1/2660/0c.json")
    assert client.head_object(Bucket=bucket, Key=prefix + "json/version-35/Config/config.json")


def test_sync_leaves_published_files_alone(zones):
    """After the data jobs switch to publish, a sync from the old docroot rolls nothing back."""
    client, bucket, prefix = _bucket(zones, "oos")
    published = client.get_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")["Body"].read()
    assert json.loads(published)["iteration"] == 2660
    result = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url,
                          "--to", "oos")
    assert result.returncode == 0, result.stdout + result.stderr
    outcome = _json(result)["targets"][0]
    assert outcome["kept_published"] >= 1
    assert "v1/clusterIndex.json" not in outcome["index_published"]
    assert client.get_object(Bucket=bucket, Key=prefix + "v1/clusterIndex.json")["Body"].read() == published
    assert client.head_object(Bucket=bucket, Key=prefix + "v1/2660/0a.json")
    state = json.loads(_state(zones, "oos"))
    assert "v1/2660/0a.json" not in state["stale"]
    assert state["objects"]["v1/2660/0a.json"]["via"] == "publish"
    # The older iterations the publish pruned come back from the docroot.
    assert client.head_object(Bucket=bucket, Key=prefix + "v1/2650/" + sorted(
        path.name for path in (zones.docroot / "v1" / "2650").iterdir())[0])


def test_sync_keeps_stale_files(zones):
    removed = "json/version-35/Attestations/form.json"
    client, bucket, prefix = _bucket(zones, "obs")
    content = (zones.docroot / removed).read_bytes()
    (zones.docroot / removed).unlink()
    try:
        kept = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url,
                            "--to", "obs")
        assert kept.returncode == 0, kept.stderr
        assert _json(kept)["targets"][0]["stale_kept"] >= 1
        assert client.head_object(Bucket=bucket, Key=prefix + removed)
        document = zones.config()
        document["retention"] = "0s"
        config = zones.write_config(document, zones.root / "no-retention.yaml")
        pruned = zones.tacops("--json", "sync", "--from", str(zones.docroot), "--origin", zones.apache.url,
                              "--to", "obs", config=config)
        assert pruned.returncode == 0, pruned.stderr
        assert removed in _json(pruned)["targets"][0]["deleted"]
        with pytest.raises(Exception):
            client.head_object(Bucket=bucket, Key=prefix + removed)
    finally:
        (zones.docroot / removed).write_bytes(content)
        (zones.docroot / removed).chmod(0o644)


def test_runbook_sync_plain_ansible(zones):
    (zones.docroot / "maintenance" / "runbook-note.json").write_text('{"from": "ansible"}\n')
    (zones.docroot / "maintenance" / "runbook-note.json").chmod(0o644)
    runbook = Path(__file__).resolve().parents[2] / "runbooks" / "static-zones.yml"
    playbook = str(Path(sys.executable).with_name("ansible-playbook"))
    extra = json.dumps({"tacops_static_config": str(zones.config_path), "tacops_static_source": str(zones.docroot),
                        "tacops_static_origin": zones.apache.url, "tacops_static_targets": ["oos", "obs"]})
    result = subprocess.run([playbook, str(runbook), "-e", extra], capture_output=True, text=True,
                            env={**zones.environment, "ANSIBLE_NOCOLOR": "1"}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed=1" in result.stdout
    for target in ("oos", "obs"):
        client, bucket, prefix = _bucket(zones, target)
        assert client.get_object(Bucket=bucket, Key=prefix + "maintenance/runbook-note.json")["Body"].read() \
            == b'{"from": "ansible"}\n'
    again = subprocess.run([playbook, str(runbook), "-e", extra], capture_output=True, text=True,
                           env={**zones.environment, "ANSIBLE_NOCOLOR": "1"}, timeout=600)
    assert again.returncode == 0, again.stdout
    assert "changed=0" in again.stdout, again.stdout
