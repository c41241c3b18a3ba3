"""The static-zones configuration file: targets, index patterns, retention, front, pins.

One YAML file names every bucket the static zones are published to. Each target carries
its own endpoint, region, bucket, prefix and credentials source, so an operation that
fans out to several targets takes everything from the target object itself and never
from positional arguments that could be swapped. Credentials come from environment
variables or from a credentials file, never from the command line.
"""

from __future__ import annotations

import configparser
import datetime as dt
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tacops.foundation.errors import AuthenticationError, InvalidInputError
from tacops.foundation.i18n import _

DEFAULT_INDEX_PATTERNS = ["clusterIndex.json", "Config/config.json"]
STATE_DIRECTORY = ".tacops-static/"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: object) -> dt.timedelta:
    """Read ``15d``, ``12h``, ``30m``, ``0s`` or a number of seconds."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.timedelta(seconds=float(value))
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (write it as 15d, 12h, 30m or 0s)")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvCredentials(_Model):
    """Names of the environment variables that hold the keys (not the keys themselves)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


class CredentialsSource(_Model):
    env: EnvCredentials | None = None
    file: Path | None = None
    profile: str = "default"

    @model_validator(mode="after")
    def _exactly_one(self) -> "CredentialsSource":
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env (variable names) or file (a credentials file)")
        return self


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


class Target(_Model):
    """One bucket the static zones are published to."""

    name: str = ""
    endpoint: str
    region: str
    bucket: str
    prefix: str = ""
    credentials: CredentialsSource
    addressing_style: Literal["path", "virtual"] = "path"
    ca_bundle: Path | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+/?$", value):
            raise ValueError(f"endpoint must be http(s)://host[:port] with no path, not {value!r}")
        return value.rstrip("/")

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip("/")
        return f"{value}/" if value else ""

    @property
    def state_prefix(self) -> str:
        return self.prefix + STATE_DIRECTORY

    @property
    def state_key(self) -> str:
        return self.state_prefix + "state.json"

    def key(self, path: str) -> str:
        return self.prefix + path

    def where(self) -> str:
        return f"{self.endpoint}/{self.bucket}/{self.prefix}"

    def resolve_credentials(self) -> Credentials:
        """Read the keys from the environment or the credentials file; errors name the source."""
        source = self.credentials
        if source.env is not None:
            names = [source.env.access_key_id, source.env.secret_access_key]
            missing = [name for name in names if not os.environ.get(name)]
            if missing:
                raise AuthenticationError(
                    _("Target {target}: the environment variable {variable} is not set.").format(
                        target=self.name, variable=missing[0]),
                    hint=_("Export it before running tacops, or point the target at a credentials file."))
            token = os.environ.get(source.env.session_token) if source.env.session_token else None
            return Credentials(os.environ[names[0]], os.environ[names[1]], token)
        path = Path(source.file)  # type: ignore[arg-type]
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise AuthenticationError(
                _("Target {target}: cannot read the credentials file {path}: {error}").format(
                    target=self.name, path=path, error=error.strerror or error),
                hint=_("Check the path in the configuration and that this user may read the file.")) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuthenticationError(
                _("Target {target}: the credentials file {path} can be read by other users.").format(
                    target=self.name, path=path),
                hint=_("Run: chmod 600 {path}").format(path=path))
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text, source=str(path))
            section = parser[source.profile]
            return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"],
                               section.get("aws_session_token"))
        except (configparser.Error, KeyError) as error:
            raise AuthenticationError(
                _("Target {target}: the credentials file {path} has no usable profile {profile} ({error}).").format(
                    target=self.name, path=path, profile=source.profile, error=type(error).__name__),
                hint=_("Write a [{profile}] section with aws_access_key_id and aws_secret_access_key.").format(
                    profile=source.profile)) from None


class HeaderRule(_Model):
    """Headers for files published without an origin to read them from (``publish``)."""

    pattern: str
    content_type: str
    cache_control: str | None = None
    content_encoding: str | None = None


class FrontSettings(_Model):
    """The web front (nginx) that serves a target's bucket under the origin's names."""

    target: str
    server_names: list[str] = Field(min_length=1)
    listen: str = "443"
    certificate: Path
    certificate_key: Path
    directory_index: list[str] = ["index.html"]
    add_headers: dict[str, str] = {}
    # Where the front reaches the bucket when it differs from the target's endpoint
    # (a private address of the same storage service, for instance).
    upstream: str | None = None


class VerifySettings(_Model):
    pins: list[str] = []
    ca_file: Path | None = None
    origin_ca_file: Path | None = None
    # Paths requested in addition to the files, such as a directory the apps call.
    extra_paths: list[str] = []

    @field_validator("pins")
    @classmethod
    def _pins(cls, value: list[str]) -> list[str]:
        cleaned = []
        for pin in value:
            text = pin.strip()
            if text.startswith("sha256/"):
                text = text[len("sha256/"):]
            if not re.match(r"^[A-Za-z0-9+/]{43}=$", text):
                raise ValueError(f"not a base64 SHA-256 pin: {pin!r} (expected sha256/<44 base64 characters>)")
            cleaned.append(text)
        return cleaned


class StaticZonesConfig(_Model):
    targets: dict[str, Target] = Field(min_length=1)
    index_patterns: list[str] = list(DEFAULT_INDEX_PATTERNS)
    retention: dt.timedelta = dt.timedelta(days=15)
    concurrency: int = Field(default=16, ge=1, le=128)
    headers: list[HeaderRule] = []
    front: FrontSettings | None = None
    verify: VerifySettings = VerifySettings()

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> dt.timedelta:
        return parse_duration(value)

    @model_validator(mode="after")
    def _names(self) -> "StaticZonesConfig":
        named = {name: target.model_copy(update={"name": name}) for name, target in self.targets.items()}
        object.__setattr__(self, "targets", named)
        if self.front is not None and self.front.target not in named:
            raise ValueError(f"front.target {self.front.target!r} is not one of the targets: {', '.join(named)}")
        return self

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise InvalidInputError(
                _("No target named {name} in the static-zones configuration.").format(name=name),
                hint=_("Known targets: {names}.").format(names=", ".join(sorted(self.targets)))) from None


def load_config(path: Path) -> StaticZonesConfig:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInputError(
            _("Cannot read the static-zones configuration {path}: {error}").format(
                path=path, error=error.strerror or error),
            hint=_("Give the file with --config; docs/static-zones.md shows an example.")) from None
    except yaml.YAMLError as error:
        raise InvalidInputError(_("{path} is not valid YAML: {error}").format(path=path, error=error)) from None
    try:
        return StaticZonesConfig.model_validate(document or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or '(top)'}: {item['msg']}" for item in error.errors())
        raise InvalidInputError(
            _("The static-zones configuration {path} is invalid: {problems}").format(path=path, problems=problems),
            hint=_("Fix the key named above; docs/static-zones.md lists every key.")) from None
