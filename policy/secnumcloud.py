"""SecNumCloud-minded rules for the CT stacks, written for pulumi-policy 1.21.

Every violation message starts with the rule name and the URN it is about. Rule settings come
from the policy configuration (``pulumi preview --policy-pack-config FILE``) and fall back to
``DEFAULTS``, which match the tags and names the tacops programs use.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

SECRET_MASK = "[secret]"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

DEFAULTS: dict[str, Any] = {
    # OUTSCALE's government region and Flexible Engine's Paris region.
    "allowedRegions": ["cloudgouv-eu-west-1", "eu-west-0"],
    # Host names an endpoint may end with (OUTSCALE APIs and OOS, Flexible Engine APIs).
    "allowedEndpointSuffixes": [".outscale.com", ".prod-cloud-ocb.orange-business.com"],
    # tacops/role and tacops/environment are the Kubernetes labels of the Flexible Engine stack.
    "roleTagKeys": ["role", "tacops/role", "app.kubernetes.io/component"],
    "environmentTagKeys": ["environment", "tacops/environment"],
    # Roles allowed to own a public IP or an ingress open to the Internet (on 443 only).
    "publicRoles": ["public-load-balancer", "ingress"],
    "backupRoles": ["backup"],
    "staticZoneRoles": ["static-zone"],
    # Storage classes and volume types known to encrypt at rest; empty means "not checked".
    "encryptedStorageClasses": [],
    "encryptedVolumeTypes": [],
    # OOS and other S3-compatible stores may not offer default bucket encryption.
    "bucketEncryptionRequired": True,
}

_CONFIG_SCHEMA = PolicyConfigSchema(properties={
    key: {"type": "boolean"} if isinstance(value, bool) else {"type": "array", "items": {"type": "string"}}
    for key, value in DEFAULTS.items()})

_OPEN_RANGES = {"0.0.0.0/0", "::/0"}
_SECRET_WORDS = {"password", "passwd", "passphrase", "pin", "token", "secret", "apikey", "credentials"}
_SECRET_PAIRS = {("private", "key"), ("secret", "key"), ("access", "key"), ("api", "key"), ("so", "pin"),
                 ("client", "secret")}
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
# Types that accept tags even when the program sets none.
_TAGGABLE = {
    "outscale:index/vm:Vm", "outscale:index/net:Net", "outscale:index/subnet:Subnet",
    "outscale:index/securityGroup:SecurityGroup", "outscale:index/volume:Volume",
    "outscale:index/publicIp:PublicIp", "outscale:index/loadBalancer:LoadBalancer",
    "outscale:index/internetService:InternetService", "outscale:index/natService:NatService",
    "outscale:index/routeTable:RouteTable", "outscale:index/image:Image", "outscale:index/snapshot:Snapshot",
    "aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2", "aws:ec2/instance:Instance", "aws:ebs/volume:Volume",
    "aws:ec2/securityGroup:SecurityGroup", "aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet",
    "openstack:compute/instance:Instance", "openstack:networking/network:Network",
    "openstack:networking/secGroup:SecGroup",
}
_BUCKET_TYPES = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}


# Secret values as the rules see them.

def _mask_secrets(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask_secrets(item) for item in value]
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return SECRET_MASK
        return {key: _mask_secrets(item) for key, item in value.items()}
    return value


def show_secrets_as_masked() -> None:
    """Make every secret input reach the rules as ``SECRET_MASK`` instead of its plain value.

    pulumi-policy unwraps secrets before a rule sees them, so no rule could tell a secret from
    a plain value. This wraps the deserializer that its analyzer calls on each request.
    NOTE: this relies on ``pulumi_policy.policy.deserialize_properties`` (pulumi-policy 1.21);
    a release that renames it makes the plain-secret rule report every secret input.
    """
    from pulumi_policy import policy as policy_module

    original = policy_module.deserialize_properties

    def deserialize_masked(props: dict[str, Any], proxy_secrets: bool = False) -> dict[str, Any]:
        return original(_mask_secrets(props), proxy_secrets)

    policy_module.deserialize_properties = deserialize_masked


# Helpers over resource inputs.

def _plain(value: Any) -> Any:
    """Copy proxied inputs into plain dicts and lists; integral numbers become ints again."""
    if isinstance(value, float) and value.is_integer():
        # Protobuf carries every number as a double.
        return int(value)
    if isinstance(value, Mapping):
        return {key: _plain(value[key]) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value


def _settings(config: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULTS, **dict(config or {})}


def _violation(report: ReportViolation, rule: str, urn: str, message: str) -> None:
    report(f"[{rule}] {urn}: {message}", urn)


def _tags(resource_type: str, props: dict[str, Any]) -> dict[str, str] | None:
    """Return the tags or labels of a resource, or None when it carries none."""
    if resource_type.startswith("kubernetes:"):
        metadata = props.get("metadata") or {}
        return dict(metadata.get("labels") or {})
    tags = props.get("tags")
    if tags is None:
        return None
    if isinstance(tags, dict):
        return {str(key): str(value) for key, value in tags.items()}
    result: dict[str, str] = {}
    for tag in tags:
        if isinstance(tag, dict):
            result[str(tag.get("key"))] = str(tag.get("value"))
        elif isinstance(tag, str) and "=" in tag:
            # OpenStack tags are plain strings; "key=value" is the convention the programs use.
            key, value = tag.split("=", 1)
            result[key] = value
    return result


def _role(resource_type: str, props: dict[str, Any], settings: dict[str, Any]) -> str | None:
    tags = _tags(resource_type, props) or {}
    for key in settings["roleTagKeys"]:
        if tags.get(key):
            return tags[key]
    return None


def _words(name: str) -> list[str]:
    """Split camelCase, snake_case and SCREAMING_CASE names into lower-case words."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word.lower() for word in re.split(r"[\s_\-.]+", spaced) if word]


def looks_like_secret_name(name: str) -> bool:
    words = _words(name)
    if not words:
        return False
    if words[-1] in _SECRET_WORDS:
        return True
    return len(words) >= 2 and (words[-2], words[-1]) in _SECRET_PAIRS


def _is_plain_value(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, str) and value != "" and value != SECRET_MASK


def _plain_secret_paths(value: Any, path: str) -> list[str]:
    """Return the paths of inputs named like a secret that hold a plain value."""
    found: list[str] = []
    if isinstance(value, dict):
        # A name/value pair, as in a container's env list: the name says what the value is.
        if isinstance(value.get("name"), str) and "value" in value and looks_like_secret_name(value["name"]):
            if _is_plain_value(value["value"]):
                found.append(f"{path}({value['name']})")
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if looks_like_secret_name(key) and _is_plain_value(item):
                found.append(child)
            else:
                found += _plain_secret_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _plain_secret_paths(item, f"{path}[{index}]")
    return found


def _port_range(rule: dict[str, Any], low_key: str, high_key: str) -> tuple[Any, Any]:
    return rule.get(low_key), rule.get(high_key, rule.get(low_key))


def _is_open_range(cidr: Any) -> bool:
    if not isinstance(cidr, str):
        return False
    try:
        return str(ipaddress.ip_network(cidr, strict=False)) in _OPEN_RANGES
    except ValueError:
        return False


def _only_443(low: Any, high: Any) -> bool:
    return low == 443 and high == 443


# Rules on one resource.

def _check_region(args: ResourceValidationArgs, report: ReportViolation) -> None:
    _check_region_props(_plain(args.props), args.urn, _settings(args.get_config()), report)


def _check_region_props(props: dict[str, Any], urn: str, settings: dict[str, Any], report: ReportViolation) -> None:
    allowed_regions = settings["allowedRegions"]
    for key in ("region", "subregionName", "placementSubregionName", "availabilityZone"):
        value = props.get(key)
        if isinstance(value, str) and value and not any(value.startswith(region) for region in allowed_regions):
            _violation(report, "region-and-endpoints-from-configuration", urn,
                       f"{key} {value!r} is outside the allowed regions {allowed_regions}")
    endpoints = props.get("endpoints")
    if isinstance(endpoints, str):
        try:
            endpoints = json.loads(endpoints)
        except ValueError:
            endpoints = [endpoints]
    for url in _endpoint_urls(endpoints):
        host = re.sub(r"^[a-z]+://", "", url).split("/")[0].split(":")[0]
        if not any(host.endswith(suffix) for suffix in settings["allowedEndpointSuffixes"]):
            _violation(report, "region-and-endpoints-from-configuration", urn,
                       f"endpoint {url!r} is not under {settings['allowedEndpointSuffixes']}")


def _endpoint_urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if "." in value or "://" in value else []
    if isinstance(value, dict):
        return [url for item in value.values() for url in _endpoint_urls(item)]
    if isinstance(value, list):
        return [url for item in value for url in _endpoint_urls(item)]
    return []


def _check_public_exposure(args: ResourceValidationArgs, report: ReportViolation) -> None:
    settings = _settings(args.get_config())
    props = _plain(args.props)
    kind = args.resource_type
    public_role = _role(kind, props, settings) in settings["publicRoles"]

    def flag(message: str) -> None:
        _violation(report, "no-public-exposure", args.urn, message)

    if kind == "outscale:index/securityGroupRule:SecurityGroupRule" and props.get("flow") == "Inbound":
        rules = props.get("rules") or [{"ipRanges": [props.get("ipRange")], "fromPortRange": props.get("fromPortRange"),
                                        "toPortRange": props.get("toPortRange")}]
        for rule in rules:
            low, high = _port_range(rule, "fromPortRange", "toPortRange")
            if any(_is_open_range(cidr) for cidr in rule.get("ipRanges") or []) and not _only_443(low, high):
                flag(f"inbound rule open to the Internet on ports {low}-{high}; only 443 may be")
    elif kind in ("aws:ec2/securityGroup:SecurityGroup",):
        for rule in props.get("ingress") or []:
            low, high = _port_range(rule, "fromPort", "toPort")
            cidrs = (rule.get("cidrBlocks") or []) + (rule.get("ipv6CidrBlocks") or [])
            if any(_is_open_range(cidr) for cidr in cidrs) and not _only_443(low, high):
                flag(f"ingress open to the Internet on ports {low}-{high}; only 443 may be")
    elif kind == "aws:ec2/securityGroupRule:SecurityGroupRule" and props.get("type") == "ingress":
        cidrs = (props.get("cidrBlocks") or []) + (props.get("ipv6CidrBlocks") or [])
        low, high = _port_range(props, "fromPort", "toPort")
        if any(_is_open_range(cidr) for cidr in cidrs) and not _only_443(low, high):
            flag(f"ingress open to the Internet on ports {low}-{high}; only 443 may be")
    elif kind == "openstack:networking/secGroupRule:SecGroupRule" and props.get("direction") == "ingress":
        low, high = _port_range(props, "portRangeMin", "portRangeMax")
        if _is_open_range(props.get("remoteIpPrefix")) and not _only_443(low, high):
            flag(f"ingress open to the Internet on ports {low}-{high}; only 443 may be")
    elif kind == "kubernetes:networking.k8s.io/v1:NetworkPolicy":
        for rule in (props.get("spec") or {}).get("ingress") or []:
            open_source = any(_is_open_range((peer.get("ipBlock") or {}).get("cidr")) for peer in rule.get("from") or [])
            ports = [port.get("port") for port in rule.get("ports") or []]
            if open_source and (not ports or any(port != 443 for port in ports)):
                flag(f"ingress from the Internet on ports {ports or 'all'}; only 443 may be")
    elif kind == "kubernetes:core/v1:Service":
        spec = props.get("spec") or {}
        if spec.get("type") in ("LoadBalancer", "NodePort"):
            ports = [port.get("port") for port in spec.get("ports") or []]
            if not public_role or any(port != 443 for port in ports):
                flag(f"{spec.get('type')} service on ports {ports}; only a public role on 443 may be")
    elif kind in ("outscale:index/publicIp:PublicIp", "openstack:networking/floatingIp:FloatingIp",
                  "aws:ec2/eip:Eip") and not public_role:
        flag(f"public IP for role {_role(kind, props, settings)!r}; only {settings['publicRoles']} may own one")
    elif kind == "aws:ec2/instance:Instance" and props.get("associatePublicIpAddress") and not public_role:
        flag("instance with a public IP address")
    elif kind == "outscale:index/loadBalancer:LoadBalancer" and props.get("loadBalancerType") != "internal":
        ports = [listener.get("loadBalancerPort") for listener in props.get("listeners") or []]
        if not public_role or any(port != 443 for port in ports):
            flag(f"Internet-facing load balancer listening on {ports}; only a public role on 443 may be")


def _check_storage_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    settings = _settings(args.get_config())
    props = _plain(args.props)
    kind = args.resource_type

    def flag(message: str) -> None:
        _violation(report, "storage-encrypted", args.urn, message)

    if kind == "aws:ebs/volume:Volume" and not props.get("encrypted"):
        flag("volume without encrypted=true")
    elif kind == "aws:ec2/instance:Instance":
        devices = [props.get("rootBlockDevice") or {}] + list(props.get("ebsBlockDevices") or [])
        if any(not device.get("encrypted") for device in devices):
            flag("block device without encrypted=true")
    elif kind == "kubernetes:core/v1:PersistentVolumeClaim" and settings["encryptedStorageClasses"]:
        storage_class = (props.get("spec") or {}).get("storageClassName")
        if storage_class not in settings["encryptedStorageClasses"]:
            flag(f"storage class {storage_class!r} is not one of {settings['encryptedStorageClasses']}")
    elif kind == "kubernetes:apps/v1:StatefulSet" and settings["encryptedStorageClasses"]:
        for claim in (props.get("spec") or {}).get("volumeClaimTemplates") or []:
            storage_class = (claim.get("spec") or {}).get("storageClassName")
            if storage_class not in settings["encryptedStorageClasses"]:
                flag(f"volume claim template with storage class {storage_class!r}")
    elif kind == "openstack:blockstorage/volume:Volume" and settings["encryptedVolumeTypes"]:
        if props.get("volumeType") not in settings["encryptedVolumeTypes"]:
            flag(f"volume type {props.get('volumeType')!r} is not one of {settings['encryptedVolumeTypes']}")


def _check_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    settings = _settings(args.get_config())
    props = _plain(args.props)
    kind = args.resource_type
    if kind.startswith("pulumi:"):
        return
    tags = _tags(kind, props)
    if tags is None and kind not in _TAGGABLE:
        return
    tags = tags or {}
    for label, keys in (("role", settings["roleTagKeys"]), ("environment", settings["environmentTagKeys"])):
        if not any(tags.get(key) for key in keys):
            _violation(report, "tagged-with-role-and-environment", args.urn,
                       f"no {label} tag (one of {keys})")


def _check_backup_tenancy(args: ResourceValidationArgs, report: ReportViolation) -> None:
    settings = _settings(args.get_config())
    props = _plain(args.props)
    kind = args.resource_type
    if _role(kind, props, settings) not in settings["backupRoles"]:
        return
    if kind == "outscale:index/vm:Vm" and props.get("placementTenancy") != "dedicated":
        _violation(report, "backup-hosts-dedicated-tenancy", args.urn,
                   f"placementTenancy is {props.get('placementTenancy')!r}, not 'dedicated'")
    elif kind == "aws:ec2/instance:Instance" and props.get("tenancy") not in ("dedicated", "host"):
        _violation(report, "backup-hosts-dedicated-tenancy", args.urn,
                   f"tenancy is {props.get('tenancy')!r}, not 'dedicated' or 'host'")


def _check_image_digests(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = _plain(args.props)
    kind = args.resource_type.rsplit(":", 1)[-1]
    path = _POD_SPEC_PATHS.get(kind)
    if path is None or not args.resource_type.startswith("kubernetes:"):
        return
    spec: Any = props
    for key in path:
        spec = (spec or {}).get(key)
    spec = spec or {}
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            image = container.get("image", "")
            if not isinstance(image, str) or not _DIGEST.search(image):
                _violation(report, "images-pinned-by-digest", args.urn,
                           f"{group} {container.get('name')!r} uses image {image!r} without @sha256:<digest>")


def _check_plain_secrets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = _plain(args.props)
    for path in _plain_secret_paths(props, ""):
        _violation(report, "no-plain-secrets", args.urn, f"input {path} looks like a secret but is not one")
    if args.resource_type == "kubernetes:core/v1:Secret":
        for key in ("data", "stringData"):
            if key in props and props[key] != SECRET_MASK:
                _violation(report, "no-plain-secrets", args.urn, f"{key} is not a Pulumi secret")


# Rules on the whole stack.

def _stack_urn() -> str:
    project = os.environ.get("PULUMI_PROJECT", "project")
    stack = os.environ.get("PULUMI_STACK", "stack")
    return f"urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"


def _check_plain_secret_config(args: StackValidationArgs, report: ReportViolation) -> None:
    import pulumi.runtime

    # NOTE: the engine passes stack configuration in PULUMI_CONFIG and the secret keys in
    # PULUMI_CONFIG_SECRET_KEYS; without them this rule sees no configuration.
    config = pulumi.runtime.get_config_env()
    secret_keys = set(pulumi.runtime.get_config_secret_keys_env())
    for key in sorted(config):
        name = key.split(":", 1)[-1]
        if looks_like_secret_name(name) and key not in secret_keys and _is_plain_value(config[key]):
            _violation(report, "no-plain-secret-config", _stack_urn(),
                       f"configuration key {key} looks like a secret but is not set with --secret")


def _check_provider_regions(args: StackValidationArgs, report: ReportViolation) -> None:
    # Default providers are no resources of their own, so each is checked once through the
    # resources that use it; explicit providers are checked by the resource rule as well.
    settings = _settings(args.get_config())
    seen: set[str] = set()
    for resource in args.resources:
        provider = resource.provider
        if provider is None or provider.urn in seen:
            continue
        seen.add(provider.urn)
        _check_region_props(_plain(provider.props), provider.urn, settings, report)


def _check_bucket_exposure_and_encryption(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = _settings(args.get_config())
    buckets: dict[str, tuple[Any, dict[str, Any]]] = {}
    for resource in args.resources:
        if resource.resource_type in _BUCKET_TYPES:
            props = _plain(resource.props)
            buckets[props.get("bucket") or resource.name] = (resource, props)

    by_urn = {resource.urn: name for name, (resource, _props) in buckets.items()}

    def bucket_of(resource: Any, props: dict[str, Any]) -> Any:
        # A bucket's id is unknown before it exists, so the parent or a dependency names it.
        parent = resource.parent
        if parent is not None and parent.urn in by_urn:
            return by_urn[parent.urn]
        for dependency in resource.dependencies:
            if dependency.urn in by_urn:
                return by_urn[dependency.urn]
        return props.get("bucket")

    encrypted: set[str] = set()
    public: dict[str, str] = {}
    for resource in args.resources:
        props = _plain(resource.props)
        kind = resource.resource_type
        if kind.startswith("aws:s3/bucketServerSideEncryptionConfiguration"):
            encrypted.add(bucket_of(resource, props))
        elif kind.startswith("aws:s3/bucketAcl") and str(props.get("acl", "")).startswith("public-read"):
            public[bucket_of(resource, props)] = resource.urn
        elif kind == "aws:s3/bucketPolicy:BucketPolicy" and _policy_is_public(props.get("policy")):
            public[bucket_of(resource, props)] = resource.urn
    for name, (resource, props) in buckets.items():
        if str(props.get("acl", "")).startswith("public-read"):
            public[name] = resource.urn
        if props.get("serverSideEncryptionConfiguration"):
            encrypted.add(name)

    for name, urn in sorted(public.items(), key=lambda item: str(item[0])):
        bucket = buckets.get(name)
        role = _role(bucket[0].resource_type, bucket[1], settings) if bucket else None
        if role not in settings["staticZoneRoles"]:
            _violation(report, "no-public-read-bucket", urn,
                       f"bucket {name!r} (role {role!r}) is readable by anyone; only {settings['staticZoneRoles']} may be")
    if settings["bucketEncryptionRequired"]:
        for name, (resource, _props) in sorted(buckets.items(), key=lambda item: str(item[0])):
            if name not in encrypted:
                _violation(report, "storage-encrypted", resource.urn,
                           f"bucket {name!r} has no server-side encryption configuration")


def _policy_is_public(policy: Any) -> bool:
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError:
            return False
    if not isinstance(policy, dict):
        return False
    for statement in policy.get("Statement") or []:
        principal = statement.get("Principal")
        anyone = principal == "*" or (isinstance(principal, dict) and principal.get("AWS") in ("*", ["*"]))
        if statement.get("Effect") == "Allow" and anyone:
            return True
    return False


def _resource_policy(name: str, description: str, validate) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    config_schema=_CONFIG_SCHEMA)


POLICIES = [
    _resource_policy("region-and-endpoints-from-configuration",
                     "Regions, subregions and provider endpoints stay within the configured ones.", _check_region),
    _resource_policy("no-public-exposure",
                     "No public IP and no ingress from 0.0.0.0/0 except the public load balancer or ingress on 443.",
                     _check_public_exposure),
    _resource_policy("storage-encrypted", "Volumes and disks are encrypted where the platform allows it.",
                     _check_storage_encrypted),
    _resource_policy("tagged-with-role-and-environment", "Every taggable resource carries role and environment tags.",
                     _check_tags),
    _resource_policy("backup-hosts-dedicated-tenancy", "Backup hosts run on dedicated tenancy.",
                     _check_backup_tenancy),
    _resource_policy("images-pinned-by-digest", "Container images are pinned by sha256 digest.",
                     _check_image_digests),
    _resource_policy("no-plain-secrets", "Inputs named like secrets hold Pulumi secrets, not plain values.",
                     _check_plain_secrets),
    StackValidationPolicy(name="provider-region-and-endpoints-from-configuration",
                          description="Providers, default ones included, use the configured regions and endpoints.",
                          validate=_check_provider_regions, config_schema=_CONFIG_SCHEMA),
    StackValidationPolicy(name="no-plain-secret-config",
                          description="Configuration keys named like secrets are set with --secret.",
                          validate=_check_plain_secret_config, config_schema=_CONFIG_SCHEMA),
    StackValidationPolicy(name="buckets-private-and-encrypted",
                          description="Only static-zone buckets are public-read; buckets have default encryption "
                                      "where required.",
                          validate=_check_bucket_exposure_and_encryption, config_schema=_CONFIG_SCHEMA),
]
