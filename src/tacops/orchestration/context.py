"""The context of every operation: the description, the lab, the inventory and the secrets."""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import yaml

from tacops.backup.custody import CustodyStore, KeyMaterial, operator_secret
from tacops.foundation.description import SystemDescription, default_description_path, load_description
from tacops.foundation.errors import UnreachableError
from tacops.foundation.i18n import _
from tacops.foundation.inventory import write_inventory
from tacops.foundation.paths import runbooks_dir, state_dir
from tacops.foundation.transport import SSHTransport

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
BACKUP_USER = "tacops-backup"
REPOSITORY_PATH = "/srv/tacops/repository"
CUSTODY_PATH = "/srv/tacops/custody"


def _no_progress(message: str) -> None:
    log.info("%s", message)


@dataclass
class Context:
    description: SystemDescription
    description_path: Path
    profile: str = "lab"
    operator_secret_file: Path | None = None
    progress: Progress = _no_progress
    on_event: Callable[[dict], None] | None = None
    _lab: object | None = field(default=None, repr=False)

    @classmethod
    def load(cls, description_path: str | Path | None = None, **kwargs) -> "Context":
        path = Path(description_path) if description_path else default_description_path()
        return cls(description=load_description(path), description_path=path, **kwargs)

    # The lab and the files derived from the description.

    @property
    def lab(self):
        if self._lab is None:
            from tacops.lab import Lab

            self._lab = Lab(self.description, profile=self.profile)
        return self._lab

    @property
    def ssh_config(self) -> Path:
        return self.lab.ssh_config

    @property
    def work_dir(self) -> Path:
        return state_dir() / "work"

    @property
    def inventory_path(self) -> Path:
        return state_dir() / "inventory" / f"{self.profile}.yml"

    def write_inventory(self) -> Path:
        return write_inventory(self.description, self.inventory_path, profile=self.profile,
                               ssh_config=self.ssh_config, description_path=self.description_path)

    def playbook(self, name: str) -> Path:
        return runbooks_dir() / name

    def backup_host_names(self) -> list[str]:
        return list(self.description.backup_hosts(self.profile))

    def ct_host_names(self) -> list[str]:
        return list(self.description.ct_hosts(self.profile))

    def backup_transport(self, host: str) -> SSHTransport:
        return SSHTransport(host, self.ssh_config, user=BACKUP_USER)

    # Key custody: the operator's secret opens the key material kept on each backup host.

    def operator_secret(self) -> bytes:
        return operator_secret(self.operator_secret_file)

    def custody(self, host: str) -> CustodyStore:
        return CustodyStore(self.backup_transport(host), base=CUSTODY_PATH)

    def read_key_material(self) -> tuple[KeyMaterial, str]:
        """Unseal the key material from the first backup host that responds; return it with that host."""
        secret = self.operator_secret()
        failures: list[str] = []
        for host in self.backup_host_names():
            try:
                return self.custody(host).read_keys(secret), host
            except UnreachableError as error:
                failures.append(f"{host}: {error.message}")
                log.warning("key custody on %s unreachable: %s", host, error.message)
        raise UnreachableError(
            _("No backup host holds readable key material:\n{details}").format(details="\n".join(failures)),
            host=",".join(self.backup_host_names()),
            hint=_("Start at least one backup host, then run the command again."),
        )

    @contextmanager
    def private_file(self, name: str, content: str) -> Iterator[Path]:
        """Write ``content`` to a 0600 file in a private directory for one run, then delete it."""
        base = Path("/run/tacops") if Path("/run").is_dir() else Path(tempfile.gettempdir())
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory = Path(tempfile.mkdtemp(prefix="secrets-", dir=base))
        path = directory / name
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(content)
            yield path
        finally:
            path.unlink(missing_ok=True)
            directory.rmdir()

    def secrets_file(self, material: KeyMaterial):
        """Write the key material as playbook variables to a private 0600 file for one run."""
        return self.private_file("secrets.yml", yaml.safe_dump({
            "tacops_repository_password": material.repository_password.get_secret_value(),
            "tacops_hsm_pin": material.hsm_pin.get_secret_value(),
            "tacops_hsm_so_pin": material.hsm_so_pin.get_secret_value(),
        }))

