"""Root filesystems of lab hosts: overlay mounts, per-host identity and mount cleanup."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

from tacops.foundation.errors import LabError


def mount_overlay(lower: Path, upper: Path, work: Path, merged: Path) -> None:
    for directory in (upper, work, merged):
        directory.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    completed = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
                               capture_output=True, text=True)
    if completed.returncode != 0:
        raise LabError(
            f"Mounting the overlay root {merged} failed: {completed.stderr.strip()}",
            hint="Check that the kernel has overlayfs and that the lab directory is on a local file system.",
        )


def is_mounted(path: Path) -> bool:
    return str(path) in mounts_under(path)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or under ``root`` in this mount namespace, deepest first."""
    prefix = str(root).rstrip("/")
    found: list[str] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            # Field 5 is the mount point, with spaces and other bytes escaped in octal.
            mount_point = line.split()[4].encode().decode("unicode_escape")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(mount_point)
    return sorted(set(found), key=lambda point: point.count("/"), reverse=True)


def unmount_all(root: Path) -> list[str]:
    """Unmount every mount under ``root``; return the errors met, if any."""
    errors: list[str] = []
    for mount_point in mounts_under(root):
        completed = subprocess.run(["umount", mount_point], capture_output=True, text=True)
        if completed.returncode != 0:
            # A lazy unmount detaches it now and frees it when the last user goes away.
            lazy = subprocess.run(["umount", "-l", mount_point], capture_output=True, text=True)
            if lazy.returncode != 0:
                errors.append(f"{mount_point}: {lazy.stderr.strip() or completed.stderr.strip()}")
    return errors


def write_identity(root: Path, host: str, hosts: dict[str, str]) -> None:
    """Give a fresh root its hostname, /etc/hosts, a new machine-id and new SSH host keys.

    ``hosts`` maps every lab host name to its address.
    """
    (root / "etc/hostname").write_text(f"{host}\n")
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "", "# Lab hosts"]
    lines += [f"{address}\t{name}" for name, address in hosts.items()]
    (root / "etc/hosts").write_text("\n".join(lines) + "\n")
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    mark_updated(root)

    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    completed = subprocess.run(["ssh-keygen", "-A", "-f", str(root)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise LabError(f"Generating SSH host keys in {root} failed: {completed.stderr.strip()}",
                       hint="Check that openssh-client is installed on this machine.")


def host_public_keys(root: Path) -> list[str]:
    """Public SSH host keys of a root, as 'type base64' lines."""
    keys = []
    for path in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
        words = path.read_text().split()
        if len(words) >= 2:
            keys.append(f"{words[0]} {words[1]}")
    return keys


def install_authorized_key(root: Path, public_key: str) -> None:
    """Add ``public_key`` to root's authorized_keys in ``root`` unless it is already there."""
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    authorized = ssh_dir / "authorized_keys"
    existing = authorized.read_text() if authorized.exists() else ""
    if public_key.strip() not in existing:
        if existing and not existing.endswith("\n"):
            existing += "\n"
        authorized.write_text(existing + public_key.strip() + "\n")
    os.chmod(authorized, 0o600)


def mark_updated(root: Path) -> None:
    """Write /etc/.updated and /var/.updated as systemd-update-done does after a first boot.

    Without them, units with ConditionNeedsUpdate (systemd-sysusers, ldconfig and others)
    run at the first boot of every fresh overlay and write into /etc and /var.
    """
    usr_mtime = (root / "usr").stat().st_mtime_ns
    content = (
        "# Written by tacops as systemd-update-done would: the timestamp of /usr in the base image.\n"
        f"TIMESTAMP_NSEC={usr_mtime // 1000 * 1000}\n"
    )
    for directory in ("etc", "var"):
        marker = root / directory / ".updated"
        marker.write_text(content)
        os.utime(marker, ns=(usr_mtime, usr_mtime))


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything under it, immutable and append-only files included.

    A root restored from a backup keeps the file flags of the original (chattr +i), and
    rmtree cannot delete such files until the flags are cleared.
    """
    if not path.exists() and not path.is_symlink():
        return
    try:
        shutil.rmtree(path)
        return
    except PermissionError:
        subprocess.run(["chattr", "-R", "-f", "-i", "-a", str(path)], capture_output=True, check=False)
    shutil.rmtree(path)
