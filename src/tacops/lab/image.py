"""The lab's base image: a debootstrap root, packed once into the cache and unpacked per lab.

Every lab host boots from an overlay over the same read-only base. The base is neutral:
no hostname, no machine-id, no SSH host keys, and the services that provisioning enables
per host (nginx, apache2, postgresql) are installed but disabled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tacops.foundation.errors import LabError

log = logging.getLogger(__name__)

SUITE = "bookworm"
VARIANT = "minbase"
SOURCES_DIRS = (Path("/etc/apt/sources.list.d"), Path("/etc/apt"))

# Units that exist in the base but must stay off until provisioning enables them per host.
DISABLED_UNITS = (
    "nginx.service",
    "apache2.service",
    "apache-htcacheclean.service",
    "postgresql.service",
)

# tar options that keep file capabilities, ACLs and numeric ownership of the guest root.
TAR_KEEP = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner"]

NEUTRAL_RESOLV_CONF = "# Lab hosts have no DNS server: /etc/hosts names every lab host.\n"


@dataclass(frozen=True)
class BaseImageSpec:
    suite: str
    variant: str
    packages: tuple[str, ...]
    mirror: str

    @property
    def key(self) -> str:
        """SHA-256 of what decides the content of the image."""
        payload = json.dumps(
            {"suite": self.suite, "variant": self.variant, "packages": sorted(self.packages), "mirror": self.mirror},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


def find_mirror(suite: str = SUITE, sources_dirs: tuple[Path, ...] = SOURCES_DIRS) -> str:
    """Return the first apt source URI that serves ``suite`` (deb822 ``.sources`` or one-line ``.list``)."""
    files: list[Path] = []
    for directory in sources_dirs:
        if directory.is_dir():
            files.extend(sorted(directory.glob("*.sources")))
            files.extend(sorted(directory.glob("*.list")))
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line:
                        continue
                    name, _sep, value = line.partition(":")
                    fields[name.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() and suite in fields.get("suites", "").split():
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                words = [word for word in re.sub(r"\[[^]]*\]", "", line).split()]
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
    raise LabError(
        f"No apt source for suite {suite!r} found in {', '.join(str(d) for d in sources_dirs)}.",
        hint=f"Add a Debian mirror for {suite} to /etc/apt/sources.list.d, then run the command again.",
    )


def _run(argv: list[str], what: str, *, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    log.debug("run: %s", " ".join(argv))
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if completed.returncode != 0:
        output = (completed.stderr.strip() or completed.stdout.strip())[-2000:]
        raise LabError(
            f"{what} failed with exit code {completed.returncode}: {' '.join(argv[:6])} ...\n{output}",
            hint="Read the output above; check the apt mirror and free disk space, then run the command again.",
        )
    return completed


def _neutralize(root: Path) -> None:
    """Strip what makes a root belong to one machine and disable per-host services."""
    present = [unit for unit in DISABLED_UNITS if any(
        (root / directory / unit).exists() for directory in ("lib/systemd/system", "usr/lib/systemd/system")
    )]
    if present:
        _run(["chroot", str(root), "systemctl", "disable", *present], "Disabling services in the base image")
    _run(["chroot", str(root), "systemctl", "enable", "ssh.service"], "Enabling ssh in the base image")
    _run(["chroot", str(root), "apt-get", "clean"], "apt-get clean in the base image")

    lists = root / "var/lib/apt/lists"
    if lists.is_dir():
        for entry in lists.iterdir():
            if entry.is_file():
                entry.unlink()
    (root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
    (root / "etc/machine-id").write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/hostname").write_text("")
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text(NEUTRAL_RESOLV_CONF)


def build_base_tarball(spec: BaseImageSpec, cache: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Return the cached tarball of ``spec``, building it with debootstrap when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"base-{spec.suite}-{spec.key[:16]}.tar.zst"
    if tarball.exists():
        log.info("base image %s found in the cache", tarball)
        return tarball

    if progress:
        progress(f"Building the base image with debootstrap ({len(spec.packages)} packages, about 2 minutes)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="base-build-", dir=cache) as scratch:
        root = Path(scratch) / "root"
        argv = [
            "debootstrap", f"--variant={spec.variant}", f"--include={','.join(sorted(spec.packages))}",
            spec.suite, str(root), spec.mirror,
        ]
        _run(argv, "debootstrap of the base image", timeout=1800)
        _neutralize(root)
        partial = Path(scratch) / "base.tar.zst"
        _run(["tar", *TAR_KEEP, "-I", "zstd -T0 -3", "-C", str(root), "-cf", str(partial), "."],
             "Packing the base image")
        os.replace(partial, tarball)
    (cache / f"{tarball.name}.json").write_text(json.dumps(
        {"suite": spec.suite, "variant": spec.variant, "packages": sorted(spec.packages), "mirror": spec.mirror,
         "key": spec.key}, indent=2) + "\n")
    log.info("built base image %s in %.0f s", tarball, time.monotonic() - started)
    return tarball


def unpack_base(spec: BaseImageSpec, tarball: Path, lab_root: Path,
                progress: Callable[[str], None] | None = None) -> Path:
    """Return the unpacked lower directory for ``spec`` under ``lab_root``, unpacking it when needed.

    A marker file written after a complete unpack makes the directory reusable; a
    directory without the marker (an interrupted unpack) is deleted and unpacked again.
    """
    lower = lab_root / "base" / spec.key[:16]
    marker = lab_root / "base" / f"{spec.key[:16]}.complete"
    if lower.is_dir() and marker.exists():
        return lower
    base_dir = lab_root / "base"
    if base_dir.is_dir():
        for stale in base_dir.iterdir():
            if stale != lower and stale.is_dir():
                shutil.rmtree(stale)
            elif stale.is_file() and stale != marker:
                stale.unlink()
    if lower.exists():
        shutil.rmtree(lower)
    if progress:
        progress("Unpacking the base image")
    lower.mkdir(parents=True)
    _run(["tar", *TAR_KEEP, "-I", "zstd -T0", "-C", str(lower), "-xpf", str(tarball)], "Unpacking the base image")
    marker.write_text(spec.key + "\n")
    return lower
