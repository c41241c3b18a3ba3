"""Jinja2 filters that let the runbooks read the description through tacops.

They run in the ansible-playbook process on the controller, so tacops must be
installed in the Python environment that runs ansible-playbook.
"""

from __future__ import annotations

import importlib
from functools import lru_cache


@lru_cache(maxsize=4)
def _description(path: str):
    from tacops.foundation.description import load_description

    return load_description(path or None)


def tacops_collector_params(host: str, description_path: str, profile: str, hsm_pin: str | None = None) -> dict:
    """Return the parameters of the fingerprint collector for ``host``."""
    from tacops.backup.fingerprint import params_for_host

    return params_for_host(_description(description_path), host, hsm_pin=hsm_pin, profile=profile)


def tacops_module_file(name: str) -> str:
    """Return the path of the tacops.backup module ``name`` (to copy it onto hosts)."""
    return importlib.import_module(f"tacops.backup.{name}").__file__


class FilterModule:
    def filters(self):
        return {
            "tacops_collector_params": tacops_collector_params,
            "tacops_module_file": tacops_module_file,
        }
