"""Benchmark: tacops backup, restore and verify on the lab, against plain tools in one run.

Run as root on a machine where the lab works:

    /opt/tacops/venv/bin/python bench/bench_backup.py --output docs/benchmarks.md

It rebuilds the lab (fresh repositories), then measures on the same hosts and data:
a full `tacops backup` (two replicas, written and verified), the fingerprint alone, one
`restic backup` to one repository, that backup followed by `restic copy` to a second
repository, `tar | zstd | ssh` of the same trees to one host, a `tacops backup` with
nothing changed, a restore and a verify. Each result is a ratio against a baseline
measured in this run. Peak memory comes from getrusage: the tacops process itself, and
the largest of its children.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tacops.backup import fingerprint
from tacops.backup.custody import CustodyStore, operator_secret
from tacops.foundation.description import load_description
from tacops.foundation.transport import SSHTransport
from tacops.lab import Lab

BENCH_DIR = "/srv/tacops/bench"
RUN_TACOPS = ("import json, resource, sys; from tacops.cli import main; rc = main(sys.argv[1:]); "
              "print(json.dumps({'rc': rc, 'self_kib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
              "'children_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}), file=sys.stderr)")


def timed_tacops(*args: str) -> dict:
    """Run tacops in a child Python that reports its own and its children's peak RSS."""
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-c", RUN_TACOPS, *args], capture_output=True, text=True)
    seconds = time.monotonic() - started
    last = completed.stderr.strip().splitlines()[-1]
    usage = json.loads(last)
    if usage["rc"] != 0:
        raise SystemExit(f"tacops {' '.join(args)} failed ({usage['rc']}):\n{completed.stderr[-3000:]}")
    return {"seconds": seconds, "self_mib": usage["self_kib"] / 1024, "children_mib": usage["children_kib"] / 1024}


def parallel(function, items) -> float:
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(items)) as pool:
        for future in [pool.submit(function, item) for item in items]:
            future.result()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks.md"))
    args = parser.parse_args()

    description = load_description()
    lab = Lab(description)
    ct_hosts = description.ct_hosts()
    excludes = list(description.os_image.exclude)
    results: dict[str, dict] = {}

    print("rebuilding the lab (fresh repositories)", flush=True)
    timed_tacops("lab", "up")
    secret = operator_secret()
    material = CustodyStore(SSHTransport("backup-a", lab.ssh_config, user="tacops-backup")).read_keys(secret)
    password = material.repository_password.get_secret_value()
    pin = material.hsm_pin.get_secret_value()

    print("full tacops backup", flush=True)
    results["tacops backup (full)"] = timed_tacops("backup")

    print("fingerprint alone", flush=True)

    def collect(host: str) -> None:
        params = fingerprint.params_for_host(description, host, hsm_pin=pin)
        fingerprint.collect(lab.transport(host), params)

    results["fingerprint (all hosts, parallel)"] = {"seconds": parallel(collect, list(ct_hosts))}

    def restic_on_host(host: str, repository: str, paths: list[str]) -> None:
        address = str(description.profile("lab").hosts["backup-a"].address)
        sftp = (f"ssh -i /root/.ssh/tacops_backup -o UserKnownHostsFile=/etc/tacops/backup_known_hosts "
                f"-o StrictHostKeyChecking=yes tacops-backup@{address} -s sftp")
        exclude_args = " ".join(f"--exclude {shlex.quote(pattern)}" for pattern in excludes)
        command = (f"IFS= read -r RESTIC_PASSWORD && export RESTIC_PASSWORD && restic --no-cache "
                   f"-r sftp:tacops-backup@{address}:{repository} -o sftp.command={shlex.quote(sftp)} "
                   f"backup --quiet --one-file-system --host {host} {exclude_args} "
                   + " ".join(shlex.quote(path) for path in paths))
        lab.transport(host).run(["bash", "-c", command], input=(password + "\n").encode(), accept=(0, 3))

    backup_a = SSHTransport("backup-a", lab.ssh_config, user="tacops-backup")
    backup_b = SSHTransport("backup-b", lab.ssh_config, user="tacops-backup")
    for transport in (backup_a, backup_b):
        transport.run(f"rm -rf {BENCH_DIR} && mkdir -p {BENCH_DIR}")
    init = f"IFS= read -r RESTIC_PASSWORD && export RESTIC_PASSWORD && restic --no-cache -r {BENCH_DIR}/one init"
    backup_a.run(["bash", "-c", init], input=(password + "\n").encode())

    print("restic backup to one repository", flush=True)
    trees = {host: ["/"] + list(item.trees) for host, item in ct_hosts.items()}
    results["restic backup, one repository"] = {
        "seconds": parallel(lambda host: restic_on_host(host, f"{BENCH_DIR}/one", trees[host]), list(ct_hosts))}

    print("restic copy to a second repository", flush=True)
    # restic 0.14 takes one sftp.command for both repositories, so the copy reads and
    # writes the two backup hosts' repositories through their roots on this machine: the
    # measure is restic's decrypt and re-encrypt cost without the network.
    source = lab.host_root("backup-a") / BENCH_DIR.lstrip("/") / "one"
    target = lab.host_root("backup-b") / BENCH_DIR.lstrip("/") / "two"
    environment = {"RESTIC_PASSWORD": password, "RESTIC_FROM_PASSWORD": password, "PATH": "/usr/bin:/bin"}
    copy_started = time.monotonic()
    subprocess.run(["restic", "--no-cache", "-r", str(target), "init", "--from-repo", str(source),
                    "--copy-chunker-params"], env=environment, check=True, capture_output=True)
    subprocess.run(["restic", "--no-cache", "-r", str(target), "copy", "--from-repo", str(source)],
                   env=environment, check=True, capture_output=True)
    copy_seconds = time.monotonic() - copy_started
    results["restic backup + restic copy"] = {
        "seconds": results["restic backup, one repository"]["seconds"] + copy_seconds}

    print("tar | zstd | ssh to one host", flush=True)

    def tar_to_backup_a(host: str) -> None:
        paths = " ".join(shlex.quote(path) for path in trees[host])
        pipeline = (f"set -o pipefail; ssh -F {lab.ssh_config} {host} "
                    f"{shlex.quote(f'tar --one-file-system --xattrs --acls -cf - {paths} 2>/dev/null; test $? -le 1')} "
                    f"| zstd -q -T1 | ssh -F {lab.ssh_config} tacops-backup@backup-a "
                    f"{shlex.quote(f'cat > {BENCH_DIR}/{host}.tar.zst')}")
        subprocess.run(["bash", "-c", pipeline], check=True)

    results["tar | zstd | ssh, one host"] = {"seconds": parallel(tar_to_backup_a, list(ct_hosts))}
    for host in ("backup-a", "backup-b"):
        lab.transport(host).run(f"rm -rf {BENCH_DIR}")

    print("tacops backup with nothing changed", flush=True)
    results["tacops backup (nothing changed)"] = timed_tacops("backup")

    print("sleep, restore, verify", flush=True)
    results["tacops sleep"] = timed_tacops("sleep")
    results["tacops restore (operation mode)"] = timed_tacops("restore", "--mode", "operation")
    results["tacops verify"] = timed_tacops("verify")

    write_report(args.output, results)
    print(args.output.read_text())
    return 0


def cell(text: str) -> str:
    """Escape the pipes of a Markdown table cell (the names of shell pipelines have some)."""
    return text.replace("|", "\\|")


def write_report(path: Path, results: dict[str, dict]) -> None:
    full = results["tacops backup (full)"]["seconds"]
    fingerprint_seconds = results["fingerprint (all hosts, parallel)"]["seconds"]
    one = results["restic backup, one repository"]["seconds"]
    restore = results["tacops restore (operation mode)"]["seconds"]
    peak_self = max(item.get("self_mib", 0) for item in results.values())
    peak_children = max(item.get("children_mib", 0) for item in results.values())
    rows = [
        ("two replicas written and verified, fingerprint counted apart / one restic backup",
         (full - fingerprint_seconds) / one, "≤ 1.3"),
        ("restic backup + restic copy / one restic backup", results["restic backup + restic copy"]["seconds"] / one,
         "(reference)"),
        ("tar | zstd | ssh / one restic backup", results["tar | zstd | ssh, one host"]["seconds"] / one,
         "(reference)"),
        ("tacops backup, nothing changed / full", results["tacops backup (nothing changed)"]["seconds"] / full,
         "≤ 0.25"),
        ("restore / full backup", restore / full, "≤ 1.0"),
        ("verify / restore", results["tacops verify"]["seconds"] / restore, "≤ 0.3"),
    ]
    machine = f"{platform.node()}: {platform.machine()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores"
    lines = [
        "# Benchmarks",
        "",
        "## Backup, restore and verify on the lab",
        "",
        f"Run on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine}, Debian 12, restic "
        f"{subprocess.run(['restic', 'version'], capture_output=True, text=True).stdout.split()[1]}, with "
        "`python bench/bench_backup.py` (four CT hosts of the lab profile, about 600 MB each, two backup hosts).",
        "",
        "| measure | seconds |",
        "|---|---|",
    ]
    lines += [f"| {cell(name)} | {item['seconds']:.1f} |" for name, item in results.items()]
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    lines += [f"| {cell(name)} | {value:.2f} | {target} |" for name, value, target in rows]
    lines += ["", f"Peak memory: the tacops process {peak_self:.0f} MiB (target ≤ 300 MiB); the largest child "
              f"process (ansible-playbook, restic, ssh, pytest) {peak_children:.0f} MiB.", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
