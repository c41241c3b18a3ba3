"""The static zone generator writes a deterministic tree with the special files drills check."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tacops.lab.fixtures import static_tree


def tree_digest(root: Path) -> str:
    hasher = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        hasher.update(f"{path.relative_to(root)}:{stat.st_mode:o}:{stat.st_mtime_ns}".encode())
        if path.is_file():
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


def test_tree_deterministic_and_idempotent(tmp_path):
    first_root, second_root = tmp_path / "first", tmp_path / "second"
    first = static_tree.generate(first_root)
    static_tree.generate(second_root)
    assert first["changed"] is True
    assert tree_digest(first_root) == tree_digest(second_root)

    again = static_tree.generate(first_root)
    assert again["changed"] is False
    assert again["written"] == []


def test_tree_has_app_paths(tmp_path):
    static_tree.generate(tmp_path)
    for relative in [
        "json/version-35/Config/config.json",
        "json/version-35/Strings/strings-fr.json",
        "json/version-35/Strings/strings-en.json",
        "json/version-35/InfoCenter/info-center.json",
        "json/version-35/Risks/risks.json",
        "json/version-35/CertList/certlist.pb.gz",
        "json/version-35/Wallet/vaccin.png",
        "infos/v2/key-figures-nat.pb.gz",
        "infos/dep/75-centers.json",
        "maintenance/info-maintenance-v2.json",
        "v1/clusterIndex.json",
    ]:
        assert (tmp_path / relative).is_file(), relative
    file_count = sum(1 for path in tmp_path.rglob("*") if path.is_file())
    assert 200 <= file_count <= 1000


def test_tree_special_files(tmp_path):
    static_tree.generate(tmp_path)
    source, link = (tmp_path / name for name in static_tree.HARD_LINK_PAIR)
    assert os.path.samefile(source, link)

    sparse = (tmp_path / static_tree.SPARSE_PATH).stat()
    assert sparse.st_size == static_tree.SPARSE_BYTES
    assert sparse.st_blocks * 512 < static_tree.SPARSE_BYTES // 2

    assert os.getxattr(tmp_path / static_tree.XATTR_PATH, static_tree.XATTR_NAME) == static_tree.XATTR_VALUE


def test_second_run_keeps_ctimes(tmp_path):
    static_tree.generate(tmp_path)
    before = {path: path.lstat().st_ctime_ns for path in tmp_path.rglob("*")}
    static_tree.generate(tmp_path)
    after = {path: path.lstat().st_ctime_ns for path in tmp_path.rglob("*")}
    assert before == after
