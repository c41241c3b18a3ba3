"""Key custody: sealing, the operator secret file and the custody folder."""

from __future__ import annotations

import os
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tacops.backup.custody import (
    MAGIC,
    CustodyStore,
    KeyMaterial,
    create_operator_secret,
    operator_secret,
    seal,
    unseal,
)
from tacops.backup.manifest import BackupSetManifest
from tacops.foundation.errors import AuthenticationError, IntegrityError, InvalidInputError
from tacops.foundation.transport import LocalTransport

SECRET = b"operator secret for tests"


def test_seal_round_trip() -> None:
    blob = seal(b"repository password", SECRET)
    assert blob.startswith(MAGIC)
    assert b"repository password" not in blob
    assert unseal(blob, SECRET) == b"repository password"
    assert seal(b"repository password", SECRET) != blob


def test_unseal_wrong_secret_fails() -> None:
    blob = seal(b"data", SECRET)
    with pytest.raises(AuthenticationError) as raised:
        unseal(blob, b"another secret", what="keys.sealed")
    assert "keys.sealed" in raised.value.message
    assert "--operator-secret-file" in raised.value.hint
    assert "TACOPS_OPERATOR_SECRET_FILE" in raised.value.hint


@pytest.mark.parametrize("offset", [len(MAGIC) + 1, len(MAGIC) + 20, -1, -20])
def test_unseal_tampered_blob_fails(offset: int) -> None:
    blob = bytearray(seal(b"data that matters", SECRET))
    blob[offset] ^= 0x01
    with pytest.raises(AuthenticationError):
        unseal(bytes(blob), SECRET)


def test_unseal_rejects_unknown_format() -> None:
    with pytest.raises(IntegrityError, match="not a sealed tacops file"):
        unseal(b"TACOPS-SEALED-9\n" + bytes(60), SECRET)


def test_key_material_repr_hides_values() -> None:
    material = KeyMaterial(repository_password="restic-pass", hsm_pin="1234", hsm_so_pin="987654")
    for text in (repr(material), str(material)):
        assert "restic-pass" not in text
        assert "1234" not in text
        assert "987654" not in text
    assert KeyMaterial.from_json(material.to_json()).hsm_so_pin.get_secret_value() == "987654"


def test_operator_secret_rejects_mode_0644(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("abc\n")
    path.chmod(0o644)
    with pytest.raises(InvalidInputError) as raised:
        operator_secret(path)
    assert str(path) in raised.value.message
    assert "chmod 600" in raised.value.hint

    path.chmod(0o600)
    assert operator_secret(path) == b"abc"


def test_operator_secret_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = create_operator_secret(tmp_path / "config" / "operator-secret")
    monkeypatch.setenv("TACOPS_OPERATOR_SECRET_FILE", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(operator_secret()) == 44


def test_operator_secret_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        operator_secret(tmp_path / "absent")


def test_create_operator_secret_never_overwrites(tmp_path: Path) -> None:
    path = create_operator_secret(tmp_path / "secret")
    before = path.read_bytes()
    with pytest.raises(InvalidInputError, match="already exists"):
        create_operator_secret(path)
    assert path.read_bytes() == before


def test_custody_store_round_trip(tmp_path: Path) -> None:
    store = CustodyStore(LocalTransport("backup-a"), str(tmp_path / "custody"))
    material = KeyMaterial(repository_password="restic-pass", hsm_pin="1234")
    store.write_keys(material, SECRET)
    keys_file = tmp_path / "custody" / "keys.sealed"
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert b"restic-pass" not in keys_file.read_bytes()
    assert store.read_keys(SECRET).repository_password.get_secret_value() == "restic-pass"
    with pytest.raises(AuthenticationError):
        store.read_keys(b"wrong")

    for set_id in ("20261205T201500Z", "20261204T201500Z"):
        manifest = BackupSetManifest(set_id=set_id, started=datetime.now(timezone.utc), tacops_version="0.1.0",
                                     restic_version="0.14.0")
        store.write_manifest(manifest, SECRET)
    assert store.list_set_ids() == ["20261204T201500Z", "20261205T201500Z"]
    assert [manifest.set_id for manifest in store.list_manifests(SECRET)] == store.list_set_ids()
    assert not [name for name in os.listdir(tmp_path / "custody" / "sets") if ".tmp." in name]

    with pytest.raises(IntegrityError, match="not found"):
        store.read_manifest("20200101T000000Z", SECRET)
    with pytest.raises(InvalidInputError):
        store.read_manifest("../keys", SECRET)
