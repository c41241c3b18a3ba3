"""The operations behind the CLI: lab up, backup, sleep, restore, wake, verify.

Each operation reads as a straight run of stages; the progress callback announces each
stage in one line. Operations return result objects and raise typed errors; only the
CLI prints and exits.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from tacops.backup.custody import KeyMaterial, create_operator_secret, secret_file_path
from tacops.backup.manifest import BackupSetManifest
from tacops.backup.replicas import Replica, ReplicaSet
from tacops.foundation.errors import (
    AuthenticationError, CommandFailedError, IntegrityError, InvalidInputError, StaleBackupError, UnreachableError,
)
from tacops.foundation.i18n import _
from tacops.foundation.runner import raise_for_result, run_playbook
from tacops.orchestration.context import BACKUP_USER, REPOSITORY_PATH, Context

log = logging.getLogger(__name__)


def new_set_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ")


def _run(ctx: Context, playbook: str, extravars: dict[str, Any], *, limit: str | None = None,
         check_result: bool = True):
    ctx.write_inventory()
    if ctx.operator_secret_file:
        extravars = {**extravars, "tacops_operator_secret_file": str(ctx.operator_secret_file)}
    secrets = [Path(extravars["tacops_secrets_file"])] if "tacops_secrets_file" in extravars else []
    result = run_playbook(ctx.playbook(playbook), ctx.inventory_path, extravars=extravars, limit=limit,
                          on_event=ctx.on_event, extra_vars_files=secrets,
                          keep_stdout=ctx.work_dir / "logs" / f"{playbook.replace('/', '-')}.{new_set_id()}.log")
    if check_result:
        raise_for_result(result)
    return result


def replica_set(ctx: Context) -> ReplicaSet:
    return ReplicaSet([Replica(host, ctx.backup_transport(host), REPOSITORY_PATH) for host in ctx.backup_host_names()])


# lab up ---------------------------------------------------------------------------------


def lab_up(ctx: Context) -> dict[str, Any]:
    """Boot the lab, provision the demonstration CT system and seal fresh lab key material."""
    started = time.monotonic()
    ctx.lab.up(progress=ctx.progress)
    ctx.write_inventory()

    secret_path = secret_file_path(ctx.operator_secret_file)
    if not secret_path.exists():
        ctx.progress(_("Creating the operator secret of the lab in {path}").format(path=secret_path))
        create_operator_secret(secret_path)
    ctx.operator_secret_file = secret_path

    ctx.progress(_("Generating the lab key material (repository password, HSM PINs)"))
    material = KeyMaterial(
        repository_password=SecretStr(secrets.token_urlsafe(32)),
        hsm_pin=SecretStr(str(secrets.randbelow(10**8)).zfill(8)),
        hsm_so_pin=SecretStr(str(secrets.randbelow(10**8)).zfill(8)),
    )
    with ctx.secrets_file(material) as secrets_path:
        extravars = {
            "tacops_secrets_file": str(secrets_path),
            "tacops_lab_known_hosts": str(ctx.lab.known_hosts),
            "tacops_controller_pubkey": Path(str(ctx.lab.controller_key) + ".pub").read_text().strip(),
        }
        ctx.progress(_("Provisioning the demonstration CT system"))
        _run(ctx, "lab/provision.yml", extravars)
        ctx.progress(_("Preparing the backup hosts"))
        _run(ctx, "backup-hosts.yml", extravars)

    ctx.progress(_("Sealing the key material on every backup host"))
    secret = ctx.operator_secret()
    for host in ctx.backup_host_names():
        ctx.custody(host).write_keys(material, secret)
    return {"seconds": round(time.monotonic() - started, 1), "operator_secret_file": str(secret_path)}


# backup ---------------------------------------------------------------------------------


@dataclass
class BackupPlan:
    set_id: str
    hosts: dict[str, dict[str, Any]]
    replicas: list[str]
    os_image_exclude: list[str]


@dataclass
class BackupOutcome:
    set_id: str
    manifest: dict[str, Any]
    seconds: float
    fingerprints_dir: Path


def plan_backup(ctx: Context) -> BackupPlan:
    hosts = {}
    for name, host in ctx.description.ct_hosts(ctx.profile).items():
        hosts[name] = {
            "os_image": "/ (one file system)",
            "trees": list(host.trees),
            "databases": host.databases(),
            "hsm": [item.name for item in host.state if item.kind == "hsm"],
        }
    return BackupPlan(new_set_id(), hosts, ctx.backup_host_names(), list(ctx.description.os_image.exclude))


def backup(ctx: Context, *, keep_last: int | None = None, keep_within_days: int | None = None) -> BackupOutcome:
    started = time.monotonic()
    plan = plan_backup(ctx)

    ctx.progress(_("Opening the key material"))
    material, _custody_host = ctx.read_key_material()

    ctx.progress(_("Backing up {count} hosts into backup set {set_id}").format(count=len(plan.hosts),
                                                                              set_id=plan.set_id))
    with ctx.secrets_file(material) as secrets_path:
        result = _run(ctx, "backup.yml", {
            "tacops_set_id": plan.set_id,
            "tacops_secrets_file": str(secrets_path),
            "tacops_work_dir": str(ctx.work_dir),
            "tacops_operator_secret_file": str(ctx.operator_secret_file or ""),
            **({"tacops_keep_last": keep_last} if keep_last is not None else {}),
            **({"tacops_keep_within_days": keep_within_days} if keep_within_days is not None else {}),
        })
    manifest = result.facts.get("localhost", {}).get("tacops_result_set", {})
    return BackupOutcome(plan.set_id, manifest, round(time.monotonic() - started, 1),
                         ctx.work_dir / plan.set_id / "fingerprints")


# backups list ---------------------------------------------------------------------------


def _require_backup_hosts(ctx: Context) -> None:
    if not ctx.backup_host_names():
        raise InvalidInputError(
            _("Profile {profile} lists no backup host under its hosts.").format(profile=ctx.profile),
            hint=_("Backups, restores and checks act on the hosts of a profile that lists them, such as lab."))


def list_backup_sets(ctx: Context) -> tuple[list[BackupSetManifest], str]:
    """Return the manifests of every backup set, read from the first backup host that responds."""
    _require_backup_hosts(ctx)
    secret = ctx.operator_secret()
    failures = []
    for host in ctx.backup_host_names():
        try:
            return ctx.custody(host).list_manifests(secret), host
        except UnreachableError as error:
            failures.append(f"{host}: {error.message}")
    raise UnreachableError(_("No backup host responds:\n{details}").format(details="\n".join(failures)),
                           host=",".join(ctx.backup_host_names()))


def check_max_age(manifests: list[BackupSetManifest], max_age_hours: float, now: dt.datetime | None = None) -> None:
    now = now or dt.datetime.now(dt.timezone.utc)
    verified = [m for m in manifests if m.is_verified]
    if not verified:
        raise StaleBackupError(_("No verified backup set exists."),
                               hint=_("Run `tacops backup` and check its result."))
    newest = max(verified, key=lambda m: m.set_id)
    age = now - (newest.finished or newest.time)
    if age > dt.timedelta(hours=max_age_hours):
        raise StaleBackupError(
            _("The newest verified backup set {set_id} is {age} old (hours:minutes:seconds), more than "
              "--max-age {limit} hours.").format(set_id=newest.set_id, age=str(age).split(".")[0],
                                                 limit=max_age_hours),
            hint=_("Run `tacops backup`, or look at why the scheduled backup did not run."),
        )


# sleep ----------------------------------------------------------------------------------


def sleep(ctx: Context) -> dict[str, Any]:
    """Verify every replica, stop the CT units and, on the lab, destroy the CT hosts."""
    started = time.monotonic()
    material, _host = ctx.read_key_material()
    ctx.progress(_("Verifying every replica before anything stops"))
    with ctx.secrets_file(material) as secrets_path:
        result = _run(ctx, "sleep.yml", {"tacops_secrets_file": str(secrets_path)}, check_result=False)
    gate = [failure for failure in result.failures if failure["host"] == "localhost"]
    if gate:
        raise IntegrityError(
            _("Sleep refused, the CT system keeps running: {message}").format(message=gate[0]["message"]),
            hint=_("Repair or replace the failing replica, run `tacops backup`, then put the system to sleep."))
    raise_for_result(result)
    verification = result.facts.get("localhost", {}).get("tacops_result_verification", [])

    if ctx.profile == "lab":
        for host in ctx.ct_host_names():
            ctx.progress(_("Destroying lab host {host}").format(host=host))
            ctx.lab.destroy_host(host)
    return {"seconds": round(time.monotonic() - started, 1), "replicas": verification}


# restore --------------------------------------------------------------------------------


@dataclass
class RestoreOutcome:
    set_id: str
    mode: str
    replica: str
    hosts: dict[str, dict[str, Any]]
    verifications: list[dict[str, Any]]
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


def _select_hosts(ctx: Context, hosts: list[str] | None, roles: list[str] | None) -> list[str]:
    known = ctx.description.ct_hosts(ctx.profile)
    selected = list(known)
    if hosts:
        unknown = [h for h in hosts if h not in known]
        if unknown:
            raise InvalidInputError(_("Unknown host {hosts}; expected one of: {known}.").format(
                hosts=", ".join(unknown), known=", ".join(known)))
        selected = [h for h in selected if h in hosts]
    if roles:
        known_roles = {host.role for host in known.values()}
        unknown = [r for r in roles if r not in known_roles]
        if unknown:
            raise InvalidInputError(_("Unknown role {roles}; expected one of: {known}.").format(
                roles=", ".join(unknown), known=", ".join(sorted(known_roles))))
        selected = [h for h in selected if known[h].role in roles]
    return selected


def _pick_set(manifests: list[BackupSetManifest], set_id: str | None) -> BackupSetManifest:
    complete = [m for m in manifests if m.status == "complete"]
    if set_id:
        for manifest in complete:
            if manifest.set_id == set_id:
                return manifest
        raise InvalidInputError(_("Backup set {set_id} not found; known sets: {known}.").format(
            set_id=set_id, known=", ".join(m.set_id for m in complete) or "-"))
    if not complete:
        raise IntegrityError(_("No complete backup set found on the backup hosts."),
                             hint=_("Run `tacops backup` first."))
    return max(complete, key=lambda m: m.set_id)


def _refuse_running_hosts(ctx: Context, selected: list[str]) -> None:
    if ctx.profile != "lab":
        return
    status = ctx.lab.status()
    for host in selected:
        if status[host].running:
            raise InvalidInputError(
                _("Host {host} is running; a restore writes onto blank hosts only.").format(host=host),
                hint=_("Put the system to sleep first (tacops sleep), or choose other hosts with --host."))


def plan_restore(ctx: Context, *, mode: str, set_id: str | None, hosts: list[str] | None,
                 roles: list[str] | None) -> dict[str, Any]:
    """Return what a restore would do, after the same checks as the restore itself."""
    selected = _select_hosts(ctx, hosts, roles)
    manifests, source = list_backup_sets(ctx)
    manifest = _pick_set(manifests, set_id)
    _refuse_running_hosts(ctx, selected)
    return {
        "mode": mode,
        "set_id": manifest.set_id,
        "manifest_read_from": source,
        "replica_order": ctx.backup_host_names(),
        "hosts": {h: {"os_snapshot": manifest.hosts[h].os_snapshot, "app_snapshot": manifest.hosts[h].app_snapshot}
                  for h in selected},
    }


def _restic_env(password: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RESTIC_")}
    env["RESTIC_PASSWORD"] = password
    return env


def _restic_on_controller(ctx: Context, replica: str, password: str, args: list[str]) -> subprocess.CompletedProcess:
    """Run restic on the controller against ``replica`` over SFTP through the lab's SSH config."""
    address = str(ctx.description.profile(ctx.profile).hosts[replica].address)
    ctx.lab.check_route(address)
    sftp = f"ssh -F {ctx.ssh_config} {BACKUP_USER}@{replica} -s sftp"
    argv = ["restic", "--no-cache", "-r", f"sftp:{BACKUP_USER}@{replica}:{REPOSITORY_PATH}",
            "-o", f"sftp.command={sftp}", *args]
    completed = subprocess.run(argv, env=_restic_env(password), capture_output=True)
    if completed.returncode != 0:
        stderr = completed.stderr.decode(errors="replace")
        if "wrong password" in stderr:
            raise AuthenticationError(_("The repository password does not open the repository on {replica}.").format(
                replica=replica))
        raise CommandFailedError(_("restic {command} from {replica} failed: {stderr}").format(
            command=args[0], replica=replica, stderr=stderr[-1500:]), host="controller",
            command=" ".join(argv[:6]), returncode=completed.returncode, stderr=stderr)
    return completed


def _fetch_fingerprint(ctx: Context, replica: str, password: str, manifest: BackupSetManifest,
                       host: str) -> dict[str, Any]:
    """Read the fingerprint of ``host`` from its application image and keep a copy in the work dir."""
    dump = _restic_on_controller(ctx, replica, password, ["dump", manifest.hosts[host].app_snapshot,
                                                          "/var/backups/tacops/app/fingerprint.json"])
    fingerprints_dir = ctx.work_dir / manifest.set_id / "fingerprints"
    fingerprints_dir.mkdir(parents=True, exist_ok=True)
    (fingerprints_dir / f"{host}.json").write_bytes(dump.stdout)
    return json.loads(dump.stdout)


def _reapply_lost_attributes(root: Path, fingerprint: dict[str, Any]) -> dict[str, int]:
    """Re-apply what restic 0.14 does not restore: file flags (chattr) and holes of sparse files."""
    counts = {"flags": 0, "sparse": 0}
    for tree, family in (fingerprint.get("trees") or {}).items():
        for relative, entry in (family.get("items") or {}).items():
            target = root / tree.lstrip("/") / relative if relative not in ("", ".") else root / tree.lstrip("/")
            if entry.get("type") != "file" or not target.exists():
                continue
            if entry.get("sparse"):
                # Punching holes sets the mtime: put the recorded one back, or rsync and the
                # identity checks would see a changed file.
                subprocess.run(["fallocate", "--dig-holes", str(target)], check=False, capture_output=True)
                if entry.get("mtime_ns") is not None:
                    stat = target.stat()
                    os.utime(target, ns=(stat.st_atime_ns, int(entry["mtime_ns"])))
                counts["sparse"] += 1
            flags = entry.get("flags")
            if flags and any(letter in str(flags) for letter in "ia"):
                letters = "".join(letter for letter in "ia" if letter in str(flags))
                subprocess.run(["chattr", f"+{letters}", str(target)], check=False, capture_output=True)
                counts["flags"] += 1
    return counts


def _root_size(root: Path) -> int:
    completed = subprocess.run(["du", "-sb", "--one-file-system", str(root)], capture_output=True, text=True)
    try:
        return int(completed.stdout.split()[0])
    except (IndexError, ValueError):
        return 0


def restore(ctx: Context, *, mode: str, set_id: str | None = None, hosts: list[str] | None = None,
            roles: list[str] | None = None) -> RestoreOutcome:
    if mode not in ("operation", "sleep"):
        raise InvalidInputError(_("Invalid mode {mode!r}; expected operation or sleep.").format(mode=mode))
    started = time.monotonic()
    stages: dict[str, float] = {}
    selected = _select_hosts(ctx, hosts, roles)

    ctx.progress(_("Opening the key material and the manifest"))
    material, _custody_host = ctx.read_key_material()
    password = material.repository_password.get_secret_value()
    manifests, _source = list_backup_sets(ctx)
    manifest = _pick_set(manifests, set_id)
    _refuse_running_hosts(ctx, selected)

    ctx.progress(_("Choosing the first healthy replica"))
    stage = time.monotonic()
    replica, verifications = replica_set(ctx).first_healthy(password)
    stages["replica verification"] = round(time.monotonic() - stage, 1)
    ctx.progress(_("Restoring backup set {set_id} from {replica}").format(set_id=manifest.set_id,
                                                                          replica=replica.name))

    results: dict[str, dict[str, Any]] = {}
    stage = time.monotonic()
    for host in selected:
        snapshots = manifest.hosts[host]
        ctx.progress(_("Writing the OS image of {host} into a blank root").format(host=host))
        root = ctx.lab.prepare_blank_host(host)
        _restic_on_controller(ctx, replica.name, password, ["restore", snapshots.os_snapshot, "--target", str(root)])
        fingerprint = _fetch_fingerprint(ctx, replica.name, password, manifest, host)
        reapplied = _reapply_lost_attributes(root, fingerprint)
        units = list(ctx.description.ct_hosts(ctx.profile)[host].units)
        # The host first boots with its CT units disabled: its data comes back before anything serves.
        subprocess.run(["systemctl", f"--root={root}", "disable", *units], capture_output=True, check=False)
        results[host] = {"bytes_restored": _root_size(root), "reapplied": reapplied,
                         "os_snapshot": snapshots.os_snapshot, "app_snapshot": snapshots.app_snapshot}
        ctx.progress(_("Booting {host}").format(host=host))
        ctx.lab.boot_host(host)
    stages["OS images"] = round(time.monotonic() - stage, 1)

    ctx.progress(_("Bringing back the application images ({mode} mode)").format(mode=mode))
    stage = time.monotonic()
    with ctx.secrets_file(material) as secrets_path:
        _run(ctx, "restore.yml", {
            "tacops_secrets_file": str(secrets_path),
            "tacops_replica": replica.name,
            "tacops_mode": mode,
            "tacops_app_snapshots": {h: manifest.hosts[h].app_snapshot for h in selected},
        }, limit=",".join(selected))
    stages["application images"] = round(time.monotonic() - stage, 1)

    return RestoreOutcome(manifest.set_id, mode, replica.name, results,
                          [v.model_dump() if hasattr(v, "model_dump") else v.__dict__ for v in verifications],
                          round(time.monotonic() - started, 1), stages)


# wake -----------------------------------------------------------------------------------


def wake(ctx: Context, hosts: list[str] | None = None) -> dict[str, Any]:
    started = time.monotonic()
    selected = _select_hosts(ctx, hosts, None)
    ctx.progress(_("Enabling and starting the CT units"))
    _run(ctx, "wake.yml", {}, limit=",".join(selected))
    return {"seconds": round(time.monotonic() - started, 1)}


# verify ---------------------------------------------------------------------------------


def verify(ctx: Context, *, mode: str, set_id: str | None = None, hosts: list[str] | None = None,
           report_dir: Path | None = None):
    """Run the identity checks of the backup set's fingerprints against the hosts."""
    from tacops.checks.runner import run_checks

    selected = _select_hosts(ctx, hosts, None)
    for host in selected:
        ctx.lab.transport(host).run(["true"], timeout=30)
    manifests, _source = list_backup_sets(ctx)
    manifest = _pick_set(manifests, set_id)
    fingerprints_dir = ctx.work_dir / manifest.set_id / "fingerprints"
    material, _host = ctx.read_key_material()
    missing = [h for h in selected if not (fingerprints_dir / f"{h}.json").is_file()]
    if missing:
        password = material.repository_password.get_secret_value()
        replica, _v = replica_set(ctx).first_healthy(password)
        for host in missing:
            _fetch_fingerprint(ctx, replica.name, password, manifest, host)
    report_dir = report_dir or ctx.work_dir / manifest.set_id / f"verify-{mode}"
    report_dir.mkdir(parents=True, exist_ok=True)
    pins = {host: material.hsm_pin.get_secret_value() for host, item in ctx.description.ct_hosts(ctx.profile).items()
            if any(state.kind == "hsm" for state in item.state)}
    with ctx.private_file("checks-secrets.json", json.dumps({"hsm_pins": pins})) as secrets_path:
        ctx.progress(_("Running the identity checks ({mode} mode)").format(mode=mode))
        result = run_checks(fingerprints_dir, selected, ctx.ssh_config, mode,
                            junit_xml=report_dir / "checks.xml", secrets_file=secrets_path,
                            description=ctx.description_path)
    if not result.checks:
        raise CommandFailedError(_("No identity check ran, so nothing is proven: {message}").format(
            message=result.message), host="controller", command="pytest", returncode=result.exit_code)
    return result
