#!/usr/bin/python
"""Ansible module: initialise, replicate, verify and seal tacops backup sets.

It runs on the controller (``connection: local``) with the Python that runs
ansible-playbook, which must have tacops installed.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: tacops_replicas
short_description: Replicate, verify and seal tacops backup sets
description:
  - C(init) creates the restic repository on the primary replica (the first backup host)
    and copies it to the other replicas, so that every replica has the same repository id.
  - C(finish) copies the new repository files from the primary to every other replica
    (each file checked against its SHA-256 name), verifies every replica, seals the
    manifest of the backup set on each backup host and applies the retention policy
    identically to every replica.
  - C(verify) verifies every replica of the newest backup set and fails when one does not
    pass and I(require_all) is true.
options:
  action: {type: str, required: true, choices: [init, finish, verify]}
  secrets_file: {type: path, required: true, description: 0600 YAML file with tacops_repository_password}
  operator_secret_file: {type: path, description: file with the operator secret that seals manifests}
  ssh_config: {type: path, required: true}
  backup_hosts: {type: list, elements: str, required: true}
  repository_path: {type: str, default: /srv/tacops/repository}
  custody_path: {type: str, default: /srv/tacops/custody}
  user: {type: str, default: tacops-backup}
  set_id: {type: str}
  hosts: {type: dict, description: per CT host, the restic summaries of its app and os images}
  keep_last: {type: int, default: 7}
  keep_within_days: {type: int, default: 30}
  require_all: {type: bool, default: true}
"""

import datetime as dt
import time
import traceback

import yaml
from ansible.module_utils.basic import AnsibleModule


def _replica_set(params):
    from tacops.backup.replicas import Replica, ReplicaSet
    from tacops.foundation.transport import SSHTransport

    return ReplicaSet([Replica(host, SSHTransport(host, params["ssh_config"], user=params["user"]),
                               params["repository_path"]) for host in params["backup_hosts"]])


def _custody(params, host):
    from tacops.backup.custody import CustodyStore
    from tacops.foundation.transport import SSHTransport

    return CustodyStore(SSHTransport(host, params["ssh_config"], user=params["user"]), base=params["custody_path"])


def _verification_dict(verification):
    return {
        "replica": verification.replica,
        "ok": verification.ok,
        "reachable": verification.reachable,
        "files_checked": verification.files_checked,
        "bytes_checked": verification.bytes_checked,
        "bad_files": [vars(item) if hasattr(item, "__dict__") else item for item in verification.bad_files],
        "check_ok": verification.check_ok,
        "error": verification.error,
        "seconds": round(verification.duration, 2),
    }


def _ansible_version():
    from ansible.release import __version__

    return __version__


def _finish(module, params, password, secret):
    from tacops.backup import restic
    from tacops.backup.manifest import BackupSetManifest, HostEntry, ReplicaEntry, RetentionPolicy, set_time
    from tacops.backup.retention import apply_retention, plan_retention
    from tacops import __version__

    replicas = _replica_set(params)
    started = time.monotonic()

    mirrored = replicas.mirror_all()
    verifications = replicas.verify_all(password)
    failed = [v for v in verifications if not v.ok]
    if failed:
        module.fail_json(msg="Replica verification failed after the backup: "
                         + "; ".join(f"{v.replica}: {v.reason()}" for v in failed),
                         replicas=[_verification_dict(v) for v in verifications])
    ids = replicas.snapshot_ids(password)
    if len({tuple(sorted(listing)) for listing in ids.values()}) > 1:
        module.fail_json(msg="The replicas hold different snapshots after the mirror: "
                         + "; ".join(f"{name}: {len(listing)} snapshots" for name, listing in ids.items()))

    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    primary_ids = ids[replicas.primary.name]

    def full_id(short):
        # restic 0.14 prints the short snapshot id in its backup summary.
        matches = [snapshot for snapshot in primary_ids if snapshot.startswith(short)]
        if len(matches) != 1:
            module.fail_json(msg=f"Snapshot {short} is not in the primary replica {replicas.primary.name}.")
        return matches[0]

    hosts = {}
    for host, result in (params["hosts"] or {}).items():
        if not result:
            module.fail_json(msg=f"Host {host} has no backup result; its backup tasks did not run.")
        app, os_image = result["app"], result["os"]
        hosts[host] = HostEntry(
            os_snapshot=full_id(os_image["snapshot_id"]), app_snapshot=full_id(app["snapshot_id"]),
            fingerprint_sha256=result["fingerprint_sha256"],
            bytes_read=int(app.get("total_bytes_processed", 0)) + int(os_image.get("total_bytes_processed", 0)),
            bytes_added=int(app.get("data_added", 0)) + int(os_image.get("data_added", 0)),
            files=int(app.get("total_files_processed", 0)) + int(os_image.get("total_files_processed", 0)),
        )
    set_snapshots = {entry.os_snapshot for entry in hosts.values()} | {entry.app_snapshot for entry in hosts.values()}
    replica_records = {}
    for verification in verifications:
        name = verification.replica
        replica_records[name] = ReplicaEntry(
            repository_id=restic.cat_config(replicas.by_name(name).repository, password).get("id", ""),
            snapshot_ids=sorted(set(ids[name]) & set_snapshots), files=verification.files_checked, bytes=verification.bytes_checked,
            verified=True, verified_at=now,
            mirror_bytes=getattr(mirrored.get(name), "bytes_copied", 0) if name in mirrored else 0,
        )
    manifest = BackupSetManifest(
        set_id=params["set_id"], started=params.get("started") or set_time(params["set_id"]).isoformat(), finished=now,
        tacops_version=__version__, restic_version=restic.version(replicas.primary.transport),
        ansible_version=_ansible_version(),
        hosts=hosts, replicas=replica_records,
        retention=RetentionPolicy(keep_last=params["keep_last"], keep_within_days=params["keep_within_days"]),
        status="complete",
    )
    manifest.validate()
    for name in params["backup_hosts"]:
        _custody(params, name).write_manifest(manifest, secret)

    existing = _custody(params, params["backup_hosts"][0]).list_manifests(secret)
    plan = plan_retention(existing, params["keep_last"], params["keep_within_days"], dt.datetime.now(dt.timezone.utc))
    retained = apply_retention(replicas, password, plan) if plan.forget else None
    for name in params["backup_hosts"]:
        for old in plan.forget:
            _custody(params, name).delete_manifest(old.set_id)

    module.exit_json(changed=True, manifest=manifest.model_dump(mode="json"),
                     replicas=[_verification_dict(v) for v in verifications],
                     forgotten=[item.set_id for item in plan.forget], forgotten_snapshots=len(retained.forgotten_snapshots) if retained else 0,
                     seconds=round(time.monotonic() - started, 1))


def _verify(module, params, password, secret):
    replicas = _replica_set(params)
    verifications = replicas.verify_all(password)
    manifests = []
    for host in params["backup_hosts"]:
        try:
            manifests = _custody(params, host).list_manifests(secret)
            break
        except Exception:  # noqa: BLE001 - the next backup host may answer
            continue
    complete = [m for m in manifests if m.status == "complete"]
    result = [_verification_dict(v) for v in verifications]
    if not complete:
        module.fail_json(msg="No complete backup set found: run a backup before putting the system to sleep.",
                         replicas=result)
    newest = max(complete, key=lambda m: m.set_id)
    ids = replicas.snapshot_ids(password) if all(v.ok for v in verifications) else {}
    for record in result:
        wanted = set(newest.host_snapshot_ids())
        if record["ok"] and not wanted.issubset(set(ids.get(record["replica"], []))):
            record["ok"] = False
            record["error"] = f"snapshots of backup set {newest.set_id} missing"
    failed = [r for r in result if not r["ok"]]
    if failed and params["require_all"]:
        module.fail_json(
            msg="Replica verification failed, so the system stays up: "
                + "; ".join(f"{r['replica']}: {r['error'] or r['bad_files']}" for r in failed),
            replicas=result, set_id=newest.set_id)
    module.exit_json(changed=False, replicas=result, set_id=newest.set_id)


def main():
    module = AnsibleModule(argument_spec=dict(
        action=dict(type="str", required=True, choices=["init", "finish", "verify"]),
        secrets_file=dict(type="path", required=True),
        operator_secret_file=dict(type="path"),
        ssh_config=dict(type="path", required=True),
        backup_hosts=dict(type="list", elements="str", required=True),
        repository_path=dict(type="str", default="/srv/tacops/repository"),
        custody_path=dict(type="str", default="/srv/tacops/custody"),
        user=dict(type="str", default="tacops-backup"),
        set_id=dict(type="str"),
        started=dict(type="str"),
        hosts=dict(type="dict"),
        keep_last=dict(type="int", default=7),
        keep_within_days=dict(type="int", default=30),
        require_all=dict(type="bool", default=True),
    ))
    params = module.params
    try:
        from tacops.backup.custody import operator_secret
        from tacops.foundation.errors import TacopsError

        with open(params["secrets_file"], encoding="utf-8") as handle:
            password = yaml.safe_load(handle)["tacops_repository_password"]
        module.no_log_values.add(password)
        secret = operator_secret(params.get("operator_secret_file") or None)
        if params["action"] == "init":
            from tacops.backup import restic

            replicas = _replica_set(params)
            results = replicas.init_replicas(password)
            # Open the primary now, so that a wrong password stops the run with a clear
            # error before the CT hosts' restic runs fail behind no_log.
            restic.cat_config(replicas.primary.repository, password)
            module.exit_json(changed=bool(results), replicas=sorted(results))
        elif params["action"] == "finish":
            _finish(module, params, password, secret)
        else:
            _verify(module, params, password, secret)
    except TacopsError as error:
        module.fail_json(msg=error.message + (f" ({error.hint})" if error.hint else ""),
                         error_type=type(error).__name__)
    except Exception as error:  # noqa: BLE001 - reported to Ansible with the traceback
        module.fail_json(msg=f"{type(error).__name__}: {error}", exception=traceback.format_exc())


if __name__ == "__main__":
    main()
