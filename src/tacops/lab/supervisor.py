"""Supervisor of one lab host: runs systemd-nspawn and starts it again after a guest reboot.

Usage: ``python3 -m tacops.lab.supervisor --pid-file FILE --cgroup NAME -- systemd-nspawn ...``

systemd-nspawn exits with code 133 when the guest reboots; this loop turns that into a
real reboot. Any other exit code ends the supervisor with that code. SIGTERM is passed
on to systemd-nspawn, which powers the guest off. The pid of the running systemd-nspawn
is written to ``--pid-file`` so that the lab can report it.

Standard library only: the lab starts one of these per host.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

GUEST_REBOOT = 133
# Stop restarting a guest that reboots in a loop.
MAX_QUICK_RESTARTS = 5
QUICK_RESTART_SECONDS = 10


def cgroup_hierarchies() -> list[tuple[str, str]]:
    """(mount point, own cgroup path) of the hierarchies that systemd guests use.

    These are the named ``systemd`` hierarchy of a hybrid or legacy layout and the cgroup2
    hierarchy, wherever each is mounted.
    """
    own: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="ascii") as cgroups:
        for line in cgroups:
            _hierarchy_id, controllers, path = line.rstrip("\n").split(":", 2)
            own[controllers] = path
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            before, _separator, after = line.partition(" - ")
            mount_point = before.split()[4]
            fs_type, _source, options = (after.split() + ["", ""])[:3]
            if fs_type == "cgroup2" and "" in own:
                found.append((mount_point, own[""]))
            elif fs_type == "cgroup" and "name=systemd" in options.split(",") and "name=systemd" in own:
                found.append((mount_point, own["name=systemd"]))
    return found


def enter_own_cgroup(name: str) -> None:
    """Move this process into a cgroup of its own, named ``tacops-lab/NAME`` under its current one.

    systemd-nspawn with --keep-unit puts the guest under the caller's cgroup. Guests that
    share one would create and delete each other's unit cgroups: such units then fail
    with status 219/CGROUP.
    """
    for mount_point, current in cgroup_hierarchies():
        directory = os.path.join(mount_point, current.lstrip("/"), "tacops-lab", name)
        try:
            os.makedirs(directory, exist_ok=True)
            with open(os.path.join(directory, "cgroup.procs"), "w", encoding="ascii") as procs:
                procs.write(f"{os.getpid()}\n")
        except OSError as error:
            print(f"tacops supervisor: cannot use cgroup {directory}: {error}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tacops.lab.supervisor")
    parser.add_argument("--pid-file", required=True, help="file that receives the pid of systemd-nspawn")
    parser.add_argument("--cgroup", required=True, help="name of the cgroup of this host, under tacops-lab/")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the systemd-nspawn command, after --")
    arguments = parser.parse_args(argv)
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        parser.error("missing command after --")

    enter_own_cgroup(arguments.cgroup)
    child: subprocess.Popen[bytes] | None = None
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    quick_restarts = 0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(command)
        with open(arguments.pid_file, "w", encoding="ascii") as pid_file:
            pid_file.write(f"{child.pid}\n")
        returncode = child.wait()
        print(f"tacops supervisor: systemd-nspawn exited with code {returncode}", file=sys.stderr, flush=True)
        if stopping or returncode != GUEST_REBOOT:
            try:
                os.unlink(arguments.pid_file)
            except FileNotFoundError:
                pass
            return returncode
        quick_restarts = quick_restarts + 1 if time.monotonic() - started < QUICK_RESTART_SECONDS else 0
        if quick_restarts > MAX_QUICK_RESTARTS:
            print("tacops supervisor: the guest rebooted too often in a row; giving up", file=sys.stderr, flush=True)
            return returncode


if __name__ == "__main__":
    sys.exit(main())
