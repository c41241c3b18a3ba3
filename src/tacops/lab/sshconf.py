"""The lab's SSH client files: controller key, known_hosts and ssh_config with the route guard."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from pathlib import Path

from tacops.foundation.errors import LabError
from tacops.lab import guard


def ensure_controller_key(private_key: Path) -> str:
    """Create the controller's ed25519 key pair when missing; return the public key line."""
    public_key = private_key.with_name(private_key.name + ".pub")
    if not (private_key.exists() and public_key.exists()):
        private_key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_key.unlink(missing_ok=True)
        public_key.unlink(missing_ok=True)
        completed = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "tacops-lab-controller", "-f", str(private_key)],
            capture_output=True, text=True,
        )
        if completed.returncode != 0:
            raise LabError(f"Creating the controller key {private_key} failed: {completed.stderr.strip()}",
                           hint="Check that openssh-client is installed on this machine.")
    return public_key.read_text().strip()


def control_dir(lab_root: Path) -> Path:
    """Directory of SSH control sockets, kept short because a socket path has at most 107 bytes.

    Sockets are named ADDRESS-PORT-USER so that the lab can close those of one host.
    """
    digest = hashlib.sha256(str(lab_root.resolve()).encode()).hexdigest()[:8]
    return Path("/run") / f"tacops-ssh-{digest}"


def write_known_hosts(path: Path, entries: dict[str, tuple[str, list[str]]]) -> None:
    """Write one line per host key, under the host name and its address.

    ``entries`` maps a host name to (address, ['type base64', ...]).
    """
    lines = []
    for name, (address, keys) in entries.items():
        for key in keys:
            lines.append(f"{name},{address} {key}")
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def write_ssh_config(path: Path, *, hosts: dict[str, str], bridge: str, identity: Path, known_hosts: Path,
                     control_path_dir: Path) -> None:
    """Write one Host block per lab host; each connection goes through the route guard."""
    proxy = " ".join(shlex.quote(part) for part in (sys.executable, guard.__file__)) + f" %h %p --bridge {bridge}"
    blocks = ["# Written by tacops for its lab; rewritten by every 'tacops lab up'.", ""]
    for name, address in hosts.items():
        blocks += [
            f"Host {name}",
            f"  HostName {address}",
            "  User root",
            f"  IdentityFile {identity}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {known_hosts}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  BatchMode yes",
            "  ConnectTimeout 10",
            "  ControlMaster auto",
            f"  ControlPath {control_path_dir}/%h-%p-%r",
            "  ControlPersist 120",
            f"  ProxyCommand {proxy}",
            "",
        ]
    path.write_text("\n".join(blocks))
