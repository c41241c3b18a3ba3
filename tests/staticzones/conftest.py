"""Servers for the static-zones tests: Apache (origin), two SeaweedFS stores (OOS and OBS
stand-ins, each with its own keys), and an nginx front per store with TLS from a test CA."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tacops.lab.fixtures import static_tree

from .services import Apache, Nginx, SeaweedFS, TestCA, free_port, make_ca, new_keys, public_dir

SERVER_NAMES = ["app-static.tousanticovid.gouv.fr", "app.tousanticovid.gouv.fr"]

# File names that break naive publishers: spaces, plus, percent, case, non-ASCII.
SPECIAL_FILES = {
    "json/version-35/Links/liens utiles+FAQ 100%.json": b'{"links": ["a b", "c+d", "100%"]}\n',
    "json/version-35/Links/Case.json": b'{"case": "upper"}\n',
    "json/version-35/Links/case.json": b'{"case": "lower"}\n',
    "json/version-35/Strings/chaînes-spéciales-été.json": "{\"clé\": \"été\"}\n".encode("utf-8"),
    "about/index.html": b"<!doctype html><title>TousAntiCovid</title><p>static zones</p>\n",
    "about/notice.txt": b"plain text, typed by /etc/mime.types\n",
}


def write_tree(root: Path) -> None:
    static_tree.generate(root)
    for relative, content in SPECIAL_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    import gzip

    precompressed = root / "precompressed" / "strings-fr.json.gz"
    precompressed.parent.mkdir(parents=True, exist_ok=True)
    precompressed.write_bytes(gzip.compress(b'{"hello": "bonjour"}\n' * 50, mtime=0))
    for directory, _subdirectories, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


@dataclass
class Zones:
    root: Path
    docroot: Path
    apache: Apache
    stores: dict[str, SeaweedFS]
    ca: TestCA
    config_path: Path
    fronts: dict[str, Nginx]
    environment: dict[str, str]

    def config(self) -> dict:
        return yaml.safe_load(self.config_path.read_text(encoding="utf-8"))

    def write_config(self, document: dict, path: Path | None = None) -> Path:
        path = path or self.config_path
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def tacops(self, *arguments: str, config: Path | None = None, check: bool = False,
               env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "tacops.cli", "static-zones", "--config", str(config or self.config_path),
                   *arguments]
        result = subprocess.run(command, capture_output=True, text=True, env={**self.environment, **(env or {})},
                                timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def sync(self, *targets: str, **kwargs) -> subprocess.CompletedProcess:
        arguments = ["sync", "--from", str(self.docroot), "--origin", self.apache.url]
        for target in targets:
            arguments += ["--to", target]
        return self.tacops(*arguments, **kwargs)

    def front(self, target: str) -> Nginx:
        """Generate the front of a target with tacops, then start (or reload) its nginx."""
        document = self.config()
        document["front"]["target"] = target
        config = self.write_config(document, self.root / f"config-{target}.yaml")
        nginx = self.fronts.get(target)
        if nginx is None:
            run_dir = self.root / f"nginx-{target}"
            run_dir.mkdir(parents=True, exist_ok=True)
            nginx = Nginx(run_dir, run_dir / "front.conf", free_port())
        document["front"]["listen"] = f"127.0.0.1:{nginx.port}"
        self.write_config(document, config)
        self.tacops("front", "--output", str(nginx.server_config), config=config, check=True)
        if nginx.process is None:
            nginx.start()
            self.fronts[target] = nginx
        else:
            nginx.reload()
        return nginx

    def verify(self, target: str, *extra: str, config: Path | None = None) -> subprocess.CompletedProcess:
        nginx = self.fronts[target]
        return self.tacops("--json", "verify", "--origin", self.apache.url, "--front", nginx.url, "--from",
                           str(self.docroot), "--report", str(self.root / f"verify-{target}.json"), *extra,
                           config=config)


def _targets(stores: dict[str, SeaweedFS]) -> dict:
    return {
        "oos": {"endpoint": stores["oos"].endpoint, "region": "cloudgouv-eu-west-1", "bucket": "tac-static",
                "prefix": "zone", "credentials": {"env": {"access_key_id": "OOS_ACCESS_KEY_ID",
                                                          "secret_access_key": "OOS_SECRET_ACCESS_KEY"}}},
        "obs": {"endpoint": stores["obs"].endpoint, "region": "eu-west-0", "bucket": "tac-static-obs",
                "prefix": "", "credentials": {"file": "OBS_CREDENTIALS", "profile": "obs"}},
    }


@pytest.fixture(scope="package")
def zones():
    for binary in ("/usr/sbin/apache2", "/usr/sbin/nginx"):
        if not Path(binary).exists():
            pytest.fail(f"{binary} is missing: scripts/test.sh installs apache2 and nginx-light")
    root = public_dir("tacops-static-zones-")
    docroot = root / "docroot"
    write_tree(docroot)
    stores = {
        "oos": SeaweedFS(root / "oos", *new_keys("oos"), ["tac-static"]),
        "obs": SeaweedFS(root / "obs", *new_keys("obs"), ["tac-static-obs"]),
    }
    apache = Apache(docroot, free_port(), root / "apache")
    started: list = []
    try:
        apache.start()
        started.append(apache)
        for store in stores.values():
            store.start()
            started.append(store)
        ca = make_ca(root / "tls", SERVER_NAMES)
        credentials = root / "obs.credentials"
        credentials.write_text(f"[obs]\naws_access_key_id = {stores['obs'].access_key}\n"
                               f"aws_secret_access_key = {stores['obs'].secret_key}\n", encoding="utf-8")
        credentials.chmod(0o600)
        targets = _targets(stores)
        targets["obs"]["credentials"]["file"] = str(credentials)
        document = {
            "retention": "15d",
            "concurrency": 16,
            "targets": targets,
            "headers": [
                {"pattern": "*.json", "content_type": "application/json; charset=utf-8",
                 "cache_control": "public, max-age=300"},
            ],
            "front": {"target": "oos", "server_names": SERVER_NAMES, "listen": "127.0.0.1:0",
                      "certificate": str(ca.certificate), "certificate_key": str(ca.key)},
            "verify": {"pins": [f"sha256/{ca.spki_pin}"], "ca_file": str(ca.ca_certificate)},
        }
        environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        environment.update({"OOS_ACCESS_KEY_ID": stores["oos"].access_key,
                            "OOS_SECRET_ACCESS_KEY": stores["oos"].secret_key, "LANG": "C.UTF-8",
                            "TACOPS_STATE_DIR": str(root / "state"), "TACOPS_CACHE_DIR": str(root / "cache")})
        zones = Zones(root, docroot, apache, stores, ca, root / "static-zones.yaml", {}, environment)
        zones.write_config(document)
        yield zones
    finally:
        for nginx in locals().get("zones", None).fronts.values() if "zones" in locals() else []:
            nginx.stop()
        for service in reversed(started):
            service.stop()
        if not os.environ.get("TACOPS_KEEP_TEST_SERVERS_DIR"):
            shutil.rmtree(root, ignore_errors=True)
