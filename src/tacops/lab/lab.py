"""The lab: real systemd hosts (systemd-nspawn), each in its own network namespace.

Layout under the lab root::

    state.json                    hosts, their roots and supervisor pids
    base/<key>/                   unpacked base image, the read-only lower layer
    hosts/<name>/upper, work      overlay layers of the host; merged/ is its root
    hosts/<name>/restored-<n>/    a blank root that a restore fills (see prepare_blank_host)
    hosts/<name>/console.log      output of systemd-nspawn and its supervisor
    ssh/                          controller key, known_hosts, ssh_config
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tacops.foundation import paths
from tacops.foundation.description import LabHost, LabNetwork, SystemDescription
from tacops.foundation.errors import LabError, RouteGuardError
from tacops.foundation.transport import SSHTransport
from tacops.lab import guard, hostfs, image, network, sshconf
from tacops.lab import supervisor as supervisor_module

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

REQUIRED_TOOLS = ("systemd-nspawn", "debootstrap", "ip", "zstd", "tar", "ssh", "ssh-keygen", "mount", "umount")
# Harmless systemd-nspawn and guest output, left out when a console log is quoted in an error.
NOISE = (
    "Some capabilities will not be set",
    "Failed to set fd limit",
    "Attempted to remove disk file system under /run/systemd/nspawn/propagate",
)
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class HostStatus:
    """State of one lab host; ``pid`` is that of its systemd-nspawn process."""

    name: str
    address: str
    role: str
    running: bool
    pid: int | None
    root: str  # "overlay", "restored" or "absent"
    ssh_ok: bool


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    state = Path(f"/proc/{pid}/stat")
    try:
        # A zombie has exited: only its parent's wait is missing.
        return state.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _filter_noise(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not any(noise in line for noise in NOISE))


class Lab:
    """The lab of one profile of the description, kept under ``root``.

    NOTE: there is one lab per machine, because the bridge and the ``tacops-`` network
    namespaces have fixed names, and calls from two processes at once are not locked
    against each other: the caller holds the tacops lock.
    """

    def __init__(self, description: SystemDescription, profile: str = "lab", root: Path | None = None,
                 cache: Path | None = None) -> None:
        self.description = description
        self.profile_name = profile
        profile_obj = description.profile(profile)
        if profile_obj.network is None or not profile_obj.hosts:
            raise LabError(
                f"Profile {profile!r} has no lab network or no hosts, so it cannot be built as a lab.",
                hint="Use a profile with 'network' and 'hosts' (for example 'lab').",
            )
        self.network: LabNetwork = profile_obj.network
        self.hosts: dict[str, LabHost] = dict(profile_obj.hosts)
        self.base_packages = tuple(profile_obj.base_packages)
        self.root = Path(root) if root is not None else paths.lab_dir()
        self.cache = Path(cache) if cache is not None else paths.cache_dir()

    # Paths

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def ssh_config(self) -> Path:
        return self.ssh_dir / "ssh_config"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def controller_key(self) -> Path:
        return self.ssh_dir / "id_ed25519"

    def _host_dir(self, host: str) -> Path:
        return self.root / "hosts" / host

    def _overlay_root(self, host: str) -> Path:
        return self._host_dir(host) / "merged"

    def _pid_file(self, host: str) -> Path:
        return self._host_dir(host) / "nspawn.pid"

    def _console_log(self, host: str) -> Path:
        return self._host_dir(host) / "console.log"

    # State file

    def _load_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as error:
            log.warning("lab state file %s is unreadable (%s); treating the lab as stale", self.state_file, error)
            return {}

    def _save_state(self, state: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".partial")
        partial.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        os.replace(partial, self.state_file)

    def _host_state(self, state: dict, host: str) -> dict:
        self._require_host(host)
        return state.setdefault("hosts", {}).setdefault(host, {"root_kind": "absent", "root": None})

    def _require_host(self, host: str) -> LabHost:
        try:
            return self.hosts[host]
        except KeyError:
            raise LabError(
                f"Host {host!r} is not a host of lab profile {self.profile_name!r}.",
                hint=f"Use one of: {', '.join(self.hosts)}.",
            ) from None

    # Public API

    def up(self, progress: Progress | None = None) -> None:
        """Build the network, the hosts' roots and SSH files, then boot every host.

        A lab left by an earlier run (running or stale) is torn down first. When a step
        fails or is interrupted, whatever this call created is removed before the error
        is raised again.
        """
        say = progress or (lambda _message: None)
        self._check_prerequisites()
        if self._leftovers():
            say("Removing the lab left by an earlier run")
            self.down()
        try:
            self._build(say)
        except BaseException:
            log.error("lab up failed; removing what it created")
            try:
                self.down()
            except Exception:  # the original error matters more than a cleanup failure
                log.exception("cleanup after a failed lab up failed too")
            raise

    def down(self) -> None:
        """Stop every host, then remove mounts, network, host roots and the state file.

        Works from the state file and also by name (namespaces with the ``tacops-``
        prefix, the bridge, mounts and nspawn processes under the lab root), so it cleans
        up after a crash or an interrupted ``up``. The cached base tarball and the
        unpacked base stay.
        """
        state = self._load_state()
        errors: list[str] = []
        for host in list(self.hosts):
            self._stop(host, state.get("hosts", {}).get(host, {}))
        self._kill_strays()
        self._close_ssh_masters()
        self._remove_cgroups()
        errors += hostfs.unmount_all(self.root / "hosts")
        errors += network.remove_network(self.network.bridge)
        hosts_dir = self.root / "hosts"
        if hosts_dir.exists() and not hostfs.mounts_under(hosts_dir):
            hostfs.remove_tree(hosts_dir)
        self.state_file.unlink(missing_ok=True)
        for path in (self.ssh_config, self.known_hosts):
            path.unlink(missing_ok=True)
        if errors:
            raise LabError("Lab teardown left something behind: " + "; ".join(errors),
                           hint="Remove what is listed by hand (ip netns delete, ip link delete, umount).")

    def status(self) -> dict[str, HostStatus]:
        state = self._load_state()
        result: dict[str, HostStatus] = {}
        for name, host in self.hosts.items():
            entry = state.get("hosts", {}).get(name, {})
            pid = self._nspawn_pid(name)
            running = pid is not None and self._supervisor_alive(entry)
            ssh_ok = False
            if running:
                try:
                    self.check_route(str(host.address))
                    ssh_ok = self.transport(name).is_reachable(timeout=10)
                except RouteGuardError:
                    ssh_ok = False
            result[name] = HostStatus(name=name, address=str(host.address), role=host.role, running=running,
                                      pid=pid if running else None, root=entry.get("root_kind", "absent"),
                                      ssh_ok=ssh_ok)
        return result

    def is_up(self) -> bool:
        """True when the state file exists and every host's supervisor and nspawn are alive."""
        state = self._load_state()
        if not state:
            return False
        return all(self._supervisor_alive(state.get("hosts", {}).get(name, {})) and self._nspawn_pid(name)
                   for name in self.hosts)

    def transport(self, host: str) -> SSHTransport:
        self._require_host(host)
        return SSHTransport(host, self.ssh_config)

    def check_route(self, address: str) -> None:
        try:
            guard.verify_route(address, self.network.bridge)
        except guard.RouteRejected as error:
            raise RouteGuardError(
                f"Connection to {address} rejected: {error}.",
                hint="Start the lab with 'tacops lab up'; the lab only connects to addresses on its own bridge.",
            ) from None

    def destroy_host(self, host: str) -> None:
        """Power the host off and delete its root; its network namespace stays."""
        state = self._load_state()
        entry = self._host_state(state, host)
        self._stop(host, entry)
        self._delete_roots(host)
        entry.update(root_kind="absent", root=None, supervisor_pid=None)
        self._save_state(state)

    def prepare_blank_host(self, host: str) -> Path:
        """Create a new empty root for ``host`` and record it as the host's root.

        The host is powered off first. The overlay root is never reused, so whatever the
        caller writes (a restore) is all the host will have at its next boot.
        """
        state = self._load_state()
        entry = self._host_state(state, host)
        self._stop(host, entry)
        host_dir = self._host_dir(host)
        host_dir.mkdir(parents=True, exist_ok=True)
        number = 1
        while (host_dir / f"restored-{number}").exists():
            number += 1
        blank = host_dir / f"restored-{number}"
        blank.mkdir(mode=0o755)
        entry.update(root_kind="restored", root=str(blank), supervisor_pid=None)
        self._save_state(state)
        return blank

    def boot_host(self, host: str, timeout: float = 120) -> None:
        """Boot ``host`` from its recorded root and wait until it runs with SSH up.

        On a restored root, only root's authorized_keys is touched: the controller key is
        added back, as a rescue system would, so the controller can log in.
        """
        state = self._load_state()
        entry = self._host_state(state, host)
        if self._supervisor_alive(entry) and self._nspawn_pid(host):
            raise LabError(f"Host {host} is already running.", hint=f"Stop it first with stop_host({host!r}).")
        root = self._ensure_root(host, entry)
        if entry["root_kind"] == "restored":
            if not (root / "sbin/init").exists() and not (root / "lib/systemd/systemd").exists():
                raise LabError(
                    f"The restored root {root} of {host} has no init (sbin/init or lib/systemd/systemd).",
                    hint="Restore a complete root file system into it before booting.",
                )
            hostfs.install_authorized_key(root, self._controller_public_key())
            self._warn_if_host_keys_differ(host, root)
        entry["supervisor_pid"] = self._start(host, root)
        self._save_state(state)
        self._wait_booted(host, timeout)

    def stop_host(self, host: str) -> None:
        state = self._load_state()
        entry = self._host_state(state, host)
        self._stop(host, entry)
        entry["supervisor_pid"] = None
        self._save_state(state)

    def host_root(self, host: str) -> Path | None:
        self._require_host(host)
        entry = self._load_state().get("hosts", {}).get(host, {})
        return Path(entry["root"]) if entry.get("root") else None

    # Building

    def _check_prerequisites(self) -> None:
        if os.geteuid() != 0:
            raise LabError("The lab needs root (network namespaces, mounts, systemd-nspawn).",
                           hint="Run tacops as root.")
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing:
            raise LabError(f"Tools missing for the lab: {', '.join(missing)}.",
                           hint="Install them: apt-get install systemd-container debootstrap iproute2 zstd "
                                "openssh-client.")

    def _leftovers(self) -> bool:
        return bool(self.state_file.exists() or network.lab_namespaces()
                    or network.link_exists(self.network.bridge) or hostfs.mounts_under(self.root / "hosts")
                    or self._stray_nspawn_pids())

    def _build(self, say: Progress) -> None:
        started = time.monotonic()
        network.check_subnet_free(self.network.subnet, self.network.bridge)
        spec = image.BaseImageSpec(image.SUITE, image.VARIANT, self.base_packages, image.find_mirror())
        tarball = image.build_base_tarball(spec, self.cache, say)
        lower = image.unpack_base(spec, tarball, self.root, say)

        state: dict = {"profile": self.profile_name, "bridge": self.network.bridge, "lower": str(lower),
                       "hosts": {}}
        self._save_state(state)
        public_key = sshconf.ensure_controller_key(self.controller_key)

        say(f"Creating the lab network {self.network.bridge} ({self.network.subnet})")
        network.create_bridge(self.network.bridge, self.network.gateway, self.network.subnet)
        addresses = {name: str(host.address) for name, host in self.hosts.items()}
        for index, (name, host) in enumerate(self.hosts.items(), start=1):
            network.create_host_network(name, index, self.network.bridge, host.address, self.network.subnet)

        say(f"Preparing the roots of {len(self.hosts)} hosts")
        for name in self.hosts:
            host_dir = self._host_dir(name)
            hostfs.mount_overlay(lower, host_dir / "upper", host_dir / "work", self._overlay_root(name))
            state["hosts"][name] = {"root_kind": "overlay", "root": str(self._overlay_root(name)),
                                    "supervisor_pid": None}
            self._save_state(state)

        def prepare(name: str) -> None:
            merged = self._overlay_root(name)
            hostfs.write_identity(merged, name, addresses)
            hostfs.install_authorized_key(merged, public_key)

        # ssh-keygen spends most of its time on the RSA host key, so hosts are prepared in parallel.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(prepare, self.hosts))
        known = {name: (addresses[name], hostfs.host_public_keys(self._overlay_root(name))) for name in self.hosts}
        sshconf.write_known_hosts(self.known_hosts, known)
        sshconf.write_ssh_config(self.ssh_config, hosts=addresses, bridge=self.network.bridge,
                                 identity=self.controller_key, known_hosts=self.known_hosts,
                                 control_path_dir=self._control_dir())

        say(f"Booting {len(self.hosts)} hosts")
        for name in self.hosts:
            state["hosts"][name]["supervisor_pid"] = self._start(name, self._overlay_root(name))
            self._save_state(state)
        for name in self.hosts:
            self._wait_booted(name, timeout=120)
            say(f"Host {name} is running")
        log.info("lab up in %.1f s", time.monotonic() - started)

    def _control_dir(self) -> Path:
        directory = sshconf.control_dir(self.root)
        directory.mkdir(mode=0o700, exist_ok=True)
        return directory

    def _controller_public_key(self) -> str:
        return sshconf.ensure_controller_key(self.controller_key)

    def _ensure_root(self, host: str, entry: dict) -> Path:
        kind = entry.get("root_kind", "absent")
        if kind == "absent" or not entry.get("root"):
            raise LabError(f"Host {host} has no root file system (it was destroyed).",
                           hint=f"Call prepare_blank_host({host!r}) and restore a root into it, then boot it.")
        root = Path(entry["root"])
        if kind == "overlay" and not hostfs.is_mounted(root):
            lower = self._load_state().get("lower")
            if not lower:
                raise LabError(f"The lower layer of {host}'s overlay is unknown.", hint="Run 'tacops lab up'.")
            host_dir = self._host_dir(host)
            hostfs.mount_overlay(Path(lower), host_dir / "upper", host_dir / "work", root)
        if not root.is_dir():
            raise LabError(f"The root {root} of {host} does not exist.", hint="Run 'tacops lab up' again.")
        return root

    def _warn_if_host_keys_differ(self, host: str, root: Path) -> None:
        recorded = set()
        if self.known_hosts.exists():
            for line in self.known_hosts.read_text().splitlines():
                words = line.split()
                if len(words) >= 3 and words[0].split(",")[0] == host:
                    recorded.add(f"{words[1]} {words[2]}")
        if recorded and not recorded & set(hostfs.host_public_keys(root)):
            log.warning("the restored root of %s has SSH host keys that differ from the lab's known_hosts; "
                        "SSH to it will fail host key checking", host)

    # Processes

    def _start(self, host: str, root: Path) -> int:
        """Start the supervisor of ``host`` detached from this process; return its pid."""
        self._close_ssh_master(host)
        host_dir = self._host_dir(host)
        host_dir.mkdir(parents=True, exist_ok=True)
        command = [
            "systemd-nspawn", "--boot", "--register=no", "--keep-unit", "--console=read-only",
            "-D", str(root), "-M", host, f"--network-namespace-path={network.netns_path(host)}",
        ]
        supervisor = str(Path(__file__).with_name("supervisor.py"))
        argv = [sys.executable, supervisor, "--pid-file", str(self._pid_file(host)), "--cgroup", host,
                "--", *command]
        with open(self._console_log(host), "ab") as console:
            console.write(f"\n--- tacops: starting {host} from {root} ---\n".encode())
            console.flush()
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console, stderr=console,
                                       start_new_session=True, close_fds=True)
        log.info("started host %s (supervisor pid %d, root %s)", host, process.pid, root)
        return process.pid

    def _is_our_supervisor(self, pid: int, host: str) -> bool:
        return str(self._pid_file(host)) in _cmdline(pid)

    def _supervisor_alive(self, entry: dict) -> bool:
        pid = entry.get("supervisor_pid")
        return bool(pid) and _pid_alive(pid) and any("supervisor.py" in part for part in _cmdline(pid))

    def _nspawn_pid(self, host: str) -> int | None:
        try:
            pid = int(self._pid_file(host).read_text().strip())
        except (OSError, ValueError):
            return None
        cmdline = _cmdline(pid)
        if _pid_alive(pid) and cmdline and cmdline[0].endswith("systemd-nspawn") and host in cmdline:
            return pid
        return None

    def _stray_nspawn_pids(self) -> list[int]:
        """Pids of systemd-nspawn processes whose root lies under this lab's root."""
        hosts_dir = str(self.root / "hosts") + "/"
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            cmdline = _cmdline(int(entry.name))
            if cmdline and cmdline[0].endswith("systemd-nspawn") and "-D" in cmdline:
                root = cmdline[cmdline.index("-D") + 1] if cmdline.index("-D") + 1 < len(cmdline) else ""
                if root.startswith(hosts_dir):
                    found.append(int(entry.name))
        return found

    def _stop(self, host: str, entry: dict) -> None:
        """Power ``host`` off: TERM to its supervisor (passed on to nspawn), then KILL after a timeout."""
        pids = []
        supervisor_pid = entry.get("supervisor_pid")
        if supervisor_pid and _pid_alive(supervisor_pid) and self._is_our_supervisor(supervisor_pid, host):
            pids.append(supervisor_pid)
        nspawn_pid = self._nspawn_pid(host)
        if nspawn_pid:
            pids.append(nspawn_pid)
        if not pids:
            self._close_ssh_master(host)
            return
        for pid in pids:
            self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(_pid_alive(pid) for pid in pids):
            time.sleep(0.2)
        for pid in pids:
            if _pid_alive(pid):
                log.warning("host %s: pid %d did not stop within %.0f s; killing it", host, pid, STOP_TIMEOUT)
                self._signal(pid, signal.SIGKILL)
        self._pid_file(host).unlink(missing_ok=True)
        self._close_ssh_master(host)

    def _kill_strays(self) -> None:
        pids = self._stray_nspawn_pids()
        for pid in pids:
            log.warning("stopping stray systemd-nspawn pid %d of this lab", pid)
            self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(_pid_alive(pid) for pid in pids):
            time.sleep(0.2)
        for pid in pids:
            if _pid_alive(pid):
                self._signal(pid, signal.SIGKILL)

    @staticmethod
    def _remove_cgroups() -> None:
        """Remove the empty cgroups that the supervisors and their guests left under tacops-lab/."""
        for mount_point, current in supervisor_module.cgroup_hierarchies():
            top = Path(mount_point) / current.lstrip("/") / "tacops-lab"
            if not top.is_dir():
                continue
            for directory, _subdirectories, _files in os.walk(top, topdown=False):
                try:
                    os.rmdir(directory)
                except OSError as error:
                    log.warning("cannot remove cgroup %s: %s", directory, error)

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def _close_ssh_master(self, host: str) -> None:
        """Close every SSH master connection to ``host``, whatever the user.

        A powered-off guest never answers, so a master left behind would make the next
        connection hang instead of reconnecting after the next boot.
        """
        directory = sshconf.control_dir(self.root)
        if host not in self.hosts or not directory.is_dir():
            return
        for socket_path in directory.glob(f"{self.hosts[host].address}-*"):
            self._exit_master(socket_path)

    def _close_ssh_masters(self) -> None:
        directory = sshconf.control_dir(self.root)
        if not directory.is_dir():
            return
        for socket_path in directory.iterdir():
            self._exit_master(socket_path)
        shutil.rmtree(directory, ignore_errors=True)

    @staticmethod
    def _exit_master(socket_path: Path) -> None:
        # The host argument is required by ssh but unused with -S.
        try:
            subprocess.run(["ssh", "-S", str(socket_path), "-O", "exit", "lab-host"], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            log.warning("closing the SSH master %s timed out", socket_path)
        socket_path.unlink(missing_ok=True)

    def _wait_booted(self, host: str, timeout: float) -> None:
        """Wait until ``host`` responds over SSH and systemd reports running or degraded."""
        address = str(self.hosts[host].address)
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            entry = self._load_state().get("hosts", {}).get(host, {})
            if not self._supervisor_alive(entry):
                raise LabError(f"Host {host} stopped while booting.\n{self._console_tail(host)}",
                               hint=f"Read the console log {self._console_log(host)}.")
            self.check_route(address)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LabError(f"Host {host} did not finish booting within {timeout:.0f} s (last: {last}).\n"
                               f"{self._console_tail(host)}",
                               hint=f"Read the console log {self._console_log(host)}.")
            argv = ["ssh", "-F", str(self.ssh_config), "-o", "ConnectTimeout=5", host,
                    "systemctl is-system-running --wait"]
            try:
                completed = subprocess.run(argv, capture_output=True, text=True, timeout=max(5.0, remaining),
                                           stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                last = "timed out"
                continue
            answer = completed.stdout.strip()
            if answer in ("running", "degraded"):
                if answer == "degraded":
                    log.warning("host %s booted degraded (some units failed)", host)
                return
            last = answer or completed.stderr.strip()[-300:]
            time.sleep(0.5)

    def _console_tail(self, host: str, lines: int = 30) -> str:
        try:
            text = self._console_log(host).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(_filter_noise(text).splitlines()[-lines:])

    def _delete_roots(self, host: str) -> None:
        host_dir = self._host_dir(host)
        hostfs.unmount_all(host_dir)
        for name in ("merged", "upper", "work"):
            hostfs.remove_tree(host_dir / name)
        for restored in host_dir.glob("restored-*"):
            hostfs.remove_tree(restored)
