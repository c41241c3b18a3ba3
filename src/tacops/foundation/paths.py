"""Locations of the state, caches and reports of tacops on the controller."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """Root of tacops state (lab, locks, reports); TACOPS_STATE_DIR overrides it."""
    return Path(os.environ.get("TACOPS_STATE_DIR", "/var/lib/tacops"))


def cache_dir() -> Path:
    """Cache of lab base images; TACOPS_CACHE_DIR overrides it."""
    return Path(os.environ.get("TACOPS_CACHE_DIR", "/var/cache/tacops"))


def lab_dir() -> Path:
    return state_dir() / "lab"


def reports_dir() -> Path:
    return state_dir() / "reports"


def runbooks_dir() -> Path:
    """The Ansible runbooks: beside the package in a checkout, or TACOPS_RUNBOOKS_DIR."""
    override = os.environ.get("TACOPS_RUNBOOKS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "runbooks"
