"""Run a Pulumi program of tacops under Pulumi mocks and record every resource it declares.

The programs cannot reach a cloud here: ``pulumi.runtime.set_mocks`` stands in for the
engine. The mock returns each resource's inputs as its state, so the assertions read the
inputs as the engine would receive them: camelCased keys, numbers as floats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "tacops-ct"


@dataclass
class Registration:
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    registrations: list[Registration] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.registrations.append(Registration(args.typ, args.name, dict(args.inputs)))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, type_token: str) -> list[Registration]:
        return [item for item in self.registrations if item.type == type_token]

    def named(self, name: str, type_token: str | None = None) -> Registration:
        """Return the one resource called ``name`` (of ``type_token``: names repeat across types)."""
        matches = [item for item in self.registrations
                   if item.name == name and (type_token is None or item.type == type_token)]
        assert len(matches) == 1, f"expected one resource named {name} of type {type_token}, found {len(matches)}"
        return matches[0]


def committed_config(stack: str) -> dict[str, Any]:
    """Return the plain (non-secure) configuration of ``Pulumi.<stack>.yaml``."""
    raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {key: value for key, value in raw.items() if "secure" not in json.dumps(value)}


def start(stack: str, config: dict[str, Any], secrets: dict[str, Any] | None = None) -> RecordingMocks:
    """Install fresh mocks and the given configuration (keys as ``project:key``)."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    values = {**config, **(secrets or {})}
    encoded = {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}
    pulumi.runtime.set_all_config(encoded, list(secrets or {}))
    return mocks


def all_resources(root: Any) -> list[pulumi.Resource]:
    """Collect every resource reachable from ``root`` (dicts, lists and component attributes)."""
    found: dict[int, pulumi.Resource] = {}

    def visit(value: Any) -> None:
        if isinstance(value, pulumi.Resource):
            if id(value) in found:
                return
            found[id(value)] = value
            if isinstance(value, pulumi.ComponentResource):
                for attribute in vars(value).values():
                    visit(attribute)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    visit(root)
    return list(found.values())


def after_all(result: Any, check) -> pulumi.Output:
    """Return an Output that runs ``check`` once every resource of ``result`` is registered.

    A test must return it: without that dependency, the check races the registrations.
    """
    urns = [resource.urn for resource in all_resources(result)]
    return pulumi.Output.all(*urns).apply(lambda _: check())
