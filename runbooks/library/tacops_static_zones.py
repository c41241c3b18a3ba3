#!/usr/bin/python
"""Ansible module: publish the static zones to their buckets with tacops.

It runs on the controller (``connection: local``) with the Python that runs
ansible-playbook, which must have tacops installed.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: tacops_static_zones
short_description: Publish the static zones to object-storage buckets, index files last
description:
  - C(sync) reads the docroot (local, or HOST:/path over SSH), takes each file's headers
    from the origin, uploads what changed to every target, index files last, and deletes
    stale files once the retention window of the configuration has passed.
  - C(publish) puts a directory of new files (news, key figures, CLEA clusters) through
    the same path, with headers from the configuration's rules or from I(origin).
  - A target that fails is reported with the reason and the fix; the others complete.
options:
  action: {type: str, default: sync, choices: [sync, publish]}
  config: {type: path, required: true, description: static-zones configuration (YAML)}
  source: {type: str, required: true, description: docroot (sync) or directory of new files (publish)}
  origin: {type: str, description: URL of the origin; required for sync}
  targets: {type: list, elements: str, required: true}
  under: {type: str, default: "", description: publish only, path in the zone of the new files}
  prune_under: {type: list, elements: str, default: [], description: publish only}
  recheck: {type: bool, default: false, description: sync only, read every stored object back}
  require_one_index: {type: bool, default: false, description: publish only, reject a set without exactly one index}
"""

import traceback
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "default": "sync", "choices": ["sync", "publish"]},
            "config": {"type": "path", "required": True},
            "source": {"type": "str", "required": True},
            "origin": {"type": "str"},
            "targets": {"type": "list", "elements": "str", "required": True},
            "under": {"type": "str", "default": ""},
            "prune_under": {"type": "list", "elements": "str", "default": []},
            "recheck": {"type": "bool", "default": False},
            "require_one_index": {"type": "bool", "default": False},
        },
        required_if=[("action", "sync", ("origin",))],
        supports_check_mode=False,
    )
    params = module.params
    try:
        from tacops.foundation.errors import TacopsError
        from tacops.staticzones import operations
        from tacops.staticzones.cli import ssh_command_for
        from tacops.staticzones.config import load_config
    except ImportError as error:
        import sys

        module.fail_json(msg=f"tacops is not installed for {sys.executable}: {error}. "
                             "Run ansible-playbook from the tacops virtual environment.")
        return
    try:
        config = load_config(Path(params["config"]))
        targets = [config.target(name) for name in dict.fromkeys(params["targets"])]
        if params["action"] == "sync":
            result = operations.sync(config, source=params["source"], origin_url=params["origin"],
                                     targets=targets, ssh_command=ssh_command_for(params["source"]),
                                     recheck=params["recheck"])
        else:
            result = operations.publish(config, directory=Path(params["source"]), targets=targets,
                                        under=params["under"], origin_url=params["origin"],
                                        prune_under=params["prune_under"],
                                        require_one_index=params["require_one_index"])
    except TacopsError as error:
        module.fail_json(msg=error.message, hint=error.hint, exit_code=int(error.exit_code))
        return
    except Exception as error:  # noqa: BLE001 - reported with its traceback
        module.fail_json(msg=f"{type(error).__name__}: {error}", exception=traceback.format_exc())
        return
    summary = result.to_dict()
    changed = any(item["uploaded"] or item["deleted"] for item in summary["targets"])
    if not result.ok:
        failed = [item for item in summary["targets"] if not item["ok"]]
        module.fail_json(msg="; ".join(f"{item['target']}: {item['error']}" for item in failed),
                         hint=failed[0]["hint"], changed=changed, **summary)
        return
    module.exit_json(changed=changed, **summary)


if __name__ == "__main__":
    main()
