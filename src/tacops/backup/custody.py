"""Key custody: key material and manifests sealed with a secret the operator holds.

A sealed file is ``header || AES-256-GCM(ciphertext || tag)``. The header is the magic
line ``TACOPS-SEALED-1\\n``, a random 16-byte scrypt salt and a random 12-byte nonce.
The whole header is the associated data, so changing any byte of the file makes opening
it fail. The key is scrypt(secret, salt, n=2**15, r=8, p=1), which needs 32 MiB and took
0.08 s per seal on a 2-core Debian 12 test machine, so guessing a weak secret is slow.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from tacops.backup.manifest import BackupSetManifest, is_set_id, list_sets
from tacops.foundation.errors import AuthenticationError, IntegrityError, InvalidInputError
from tacops.foundation.i18n import _
from tacops.foundation.transport import Transport

log = logging.getLogger(__name__)

MAGIC = b"TACOPS-SEALED-1\n"
SALT_SIZE = 16
NONCE_SIZE = 12
HEADER_SIZE = len(MAGIC) + SALT_SIZE + NONCE_SIZE
TAG_SIZE = 16
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1

SECRET_FILE_VARIABLE = "TACOPS_OPERATOR_SECRET_FILE"
DEFAULT_SECRET_FILE = Path("/root/.config/tacops/operator-secret")
DEFAULT_BASE = "/srv/tacops/custody"


def _derive_key(secret: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(secret)


def seal(plaintext: bytes, secret: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` with a key derived from the operator secret."""
    if not secret:
        raise InvalidInputError(_("The operator secret is empty."))
    salt = os.urandom(SALT_SIZE)
    nonce = os.urandom(NONCE_SIZE)
    header = MAGIC + salt + nonce
    return header + AESGCM(_derive_key(secret, salt)).encrypt(nonce, plaintext, header)


def unseal(blob: bytes, secret: bytes, *, what: str = "the sealed file") -> bytes:
    """Return the plaintext of a sealed blob; ``what`` names the blob in errors.

    Raises IntegrityError when the blob is not a sealed tacops file, and
    AuthenticationError when the secret does not open it. AES-GCM cannot tell a wrong
    secret from an altered file, so that message names both causes.
    """
    if not blob.startswith(MAGIC) or len(blob) < HEADER_SIZE + TAG_SIZE:
        raise IntegrityError(
            _("{what} is not a sealed tacops file (missing header {magic!r}).").format(what=what, magic=MAGIC),
        )
    salt = blob[len(MAGIC):len(MAGIC) + SALT_SIZE]
    nonce = blob[len(MAGIC) + SALT_SIZE:HEADER_SIZE]
    try:
        return AESGCM(_derive_key(secret, salt)).decrypt(nonce, blob[HEADER_SIZE:], blob[:HEADER_SIZE])
    except InvalidTag:
        raise AuthenticationError(
            _("The operator secret does not open {what}, or the file was altered.").format(what=what),
            hint=_("Pass the operator secret file that was used when the backup was made, with "
                   "--operator-secret-file or TACOPS_OPERATOR_SECRET_FILE."),
        ) from None


class KeyMaterial(BaseModel):
    """The secrets a restore needs; their repr and str show only asterisks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repository_password: SecretStr
    hsm_pin: SecretStr | None = None
    hsm_so_pin: SecretStr | None = None

    def to_json(self) -> bytes:
        """Serialize with the secret values in clear, only ever to be sealed."""
        values = {
            "repository_password": self.repository_password.get_secret_value(),
            "hsm_pin": self.hsm_pin.get_secret_value() if self.hsm_pin else None,
            "hsm_so_pin": self.hsm_so_pin.get_secret_value() if self.hsm_so_pin else None,
        }
        return json.dumps(values).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> "KeyMaterial":
        try:
            return cls.model_validate_json(data)
        except ValidationError:
            # The error text could quote a secret value, so it is not included.
            raise IntegrityError(_("The unsealed key material is not valid key material.")) from None


# Writes standard input to a file atomically: a temporary file in the same folder,
# mode 0600, flushed to disk, then renamed over the final name.
_WRITE_ATOMIC = r"""
set -eu
umask 077
target=$1
mkdir -p "$(dirname "$target")"
tmp="$target.tmp.$$"
cat > "$tmp"
chmod 0600 "$tmp"
sync "$tmp"
mv -f "$tmp" "$target"
"""

_MISSING = 66


class CustodyStore:
    """The custody folder on one backup host: ``keys.sealed`` and ``sets/<set-id>.sealed``."""

    def __init__(self, transport: Transport, base: str = DEFAULT_BASE) -> None:
        self.transport = transport
        self.base = base.rstrip("/")

    @property
    def keys_path(self) -> str:
        return f"{self.base}/keys.sealed"

    def manifest_path(self, set_id: str) -> str:
        if not is_set_id(set_id):
            raise InvalidInputError(
                _("Invalid backup set id {set_id!r}; expected a UTC time such as 20261204T201500Z.").format(
                    set_id=set_id))
        return f"{self.base}/sets/{set_id}.sealed"

    def _write(self, path: str, blob: bytes) -> None:
        self.transport.run(["sh", "-c", _WRITE_ATOMIC, "write", path], input=blob, timeout=120)
        log.info("wrote %s on %s (%d bytes sealed)", path, self.transport.host, len(blob))

    def _read(self, path: str) -> bytes:
        script = 'if [ -f "$1" ]; then exec cat -- "$1"; else exit 66; fi'
        result = self.transport.run(["sh", "-c", script, "read", path], accept=(0, _MISSING), timeout=120)
        if result.returncode == _MISSING:
            raise IntegrityError(
                _("{path} not found on {host}.").format(path=path, host=self.transport.host),
                hint=_("Read custody from another backup host, or check that a backup ran."),
            )
        return result.stdout

    def write_keys(self, material: KeyMaterial, secret: bytes) -> None:
        self._write(self.keys_path, seal(material.to_json(), secret))

    def read_keys(self, secret: bytes) -> KeyMaterial:
        what = f"{self.transport.host}:{self.keys_path}"
        return KeyMaterial.from_json(unseal(self._read(self.keys_path), secret, what=what))

    def write_manifest(self, manifest: BackupSetManifest, secret: bytes) -> None:
        self._write(self.manifest_path(manifest.set_id), seal(manifest.to_json(), secret))

    def read_manifest(self, set_id: str, secret: bytes) -> BackupSetManifest:
        path = self.manifest_path(set_id)
        what = f"{self.transport.host}:{path}"
        manifest = BackupSetManifest.from_json(unseal(self._read(path), secret, what=what), source=what)
        if manifest.set_id != set_id:
            raise IntegrityError(
                _("{what} contains the manifest of set {other}, not of set {set_id}.").format(
                    what=what, other=manifest.set_id, set_id=set_id))
        return manifest

    def list_set_ids(self) -> list[str]:
        """Return the ids of the sealed manifests, oldest first; needs no secret."""
        script = 'if [ -d "$1" ]; then exec ls -1 -- "$1"; fi'
        result = self.transport.run(["sh", "-c", script, "list", f"{self.base}/sets"], timeout=120)
        ids = []
        for name in result.text.split():
            if name.endswith(".sealed") and is_set_id(name[: -len(".sealed")]):
                ids.append(name[: -len(".sealed")])
        return sorted(ids)

    def list_manifests(self, secret: bytes) -> list[BackupSetManifest]:
        return list_sets(self.read_manifest(set_id, secret) for set_id in self.list_set_ids())

    def delete_manifest(self, set_id: str) -> None:
        """Delete a set's manifest, after retention forgot its snapshots."""
        self.transport.run(["rm", "-f", "--", self.manifest_path(set_id)], timeout=120)


def secret_file_path(path: str | Path | None = None) -> Path:
    """Return the operator secret file: ``path``, else TACOPS_OPERATOR_SECRET_FILE, else the default."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(SECRET_FILE_VARIABLE) or DEFAULT_SECRET_FILE)


def operator_secret(path: str | Path | None = None) -> bytes:
    """Read the operator secret (the file's content without surrounding white space).

    Raises InvalidInputError when the file is missing, empty, or readable or writable by
    group or others.
    """
    secret_path = secret_file_path(path)
    try:
        mode = secret_path.stat().st_mode
    except FileNotFoundError:
        raise InvalidInputError(
            _("Operator secret file {path} not found.").format(path=secret_path),
            hint=_("Pass the file that contains the operator secret with --operator-secret-file or "
                   "TACOPS_OPERATOR_SECRET_FILE; on the lab, `tacops lab up` creates one."),
        ) from None
    if not stat.S_ISREG(mode):
        raise InvalidInputError(_("Operator secret file {path} is not a regular file.").format(path=secret_path))
    if mode & 0o077:
        raise InvalidInputError(
            _("Operator secret file {path} has mode {mode:o}: group or others can access it.").format(
                path=secret_path, mode=stat.S_IMODE(mode)),
            hint=_("Run: chmod 600 {path}").format(path=secret_path),
        )
    secret = secret_path.read_bytes().strip()
    if not secret:
        raise InvalidInputError(_("Operator secret file {path} is empty.").format(path=secret_path))
    return secret


def create_operator_secret(path: str | Path) -> Path:
    """Create a new operator secret file (32 random bytes, base64, mode 0600) for the lab.

    Raises InvalidInputError when the file exists: overwriting it would lock every
    sealed file out.
    """
    secret_path = Path(path)
    secret_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InvalidInputError(
            _("Operator secret file {path} already exists; it was not overwritten.").format(path=secret_path),
            hint=_("Files sealed with the old secret can only be opened with it. Move it away first if you "
                   "really want a new one."),
        ) from None
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")
    log.info("created operator secret file %s", secret_path)
    return secret_path
