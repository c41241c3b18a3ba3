"""The OUTSCALE stack: the CT system rebuilt identically on VMs, with ``pulumi_outscale``.

What is built, from the description's production profile and the stack configuration:

- one Net with one subnet per tier (front, app, data, admin) and two backup subnets;
- one security group per role. Each opens only its services' ports, to the roles that call
  them (``talks_to``), plus SSH from the admin roles. The public load balancer's group is the
  only one open to the world, on 443;
- the VMs of every role (374 in the production profile), OMI and VM type from configuration;
- a load balancer on 443 for the public API host names, passing TLS through to the
  ``load-balancer`` role, which holds the certificate the apps pin;
- the two backup hosts with dedicated tenancy on two subnets, in two dedicated groups when
  ``backupDedicatedGroups`` names them (``outscale_checks`` verifies the placement);
- OOS buckets for the static zones and the image exports, and the admin keypair.
"""

from __future__ import annotations

import pulumi
import pulumi_outscale as outscale

from tacops.foundation.description import SystemDescription, load_description
from tacops.infra import buckets, common
from tacops.infra.common import RoleSettings, SettingsError, StackSettings

PLATFORM = "outscale"
PUBLIC_LB_ROLE = "load-balancer"
BACKUP_ROLE = "backup"
BACKUP_SUBNETS = ("backup-a", "backup-b")
SUBNET_PREFIX = 20  # 4,091 usable addresses per tier: room for every role count far above production.
WORLD = "0.0.0.0/0"
HTTPS = 443
SSH = 22


class OutscaleSettings:
    """Stack settings of the OUTSCALE program: the shared ones plus the network, keypair and buckets."""

    def __init__(self, description: SystemDescription, config: common.ConfigSource) -> None:
        self.stack: StackSettings = common.read_stack_settings(description, PLATFORM, config)
        self.net_ip_range = config.get("netIpRange") or "10.40.0.0/16"
        self.subnets = common.tier_subnets(
            self.net_ip_range, ("front", "app", "data", "admin", *BACKUP_SUBNETS), SUBNET_PREFIX
        )
        region = self.stack.region
        subregions = config.get_object("subregions") or [f"{region}a", f"{region}b"]
        if len(subregions) < 2:
            raise SettingsError("config key 'subregions' must list at least two subregions, one per backup host")
        self.subregions: list[str] = list(subregions)
        self.admin_roles: tuple[str, ...] = tuple(config.get_object("adminRoles") or ["bastion-admin"])
        self.monitoring_roles: tuple[str, ...] = tuple(config.get_object("monitoringRoles") or ["monitoring"])
        self.admin_cidrs: list[str] = list(config.get_object("adminCidrs") or [])
        if WORLD in self.admin_cidrs:
            raise SettingsError("config key 'adminCidrs' must not contain 0.0.0.0/0: SSH is never open to the world")
        self.admin_public_key = config.get("adminPublicKey")
        self.static_zone_buckets: list[str] = list(config.get_object("staticZoneBuckets") or [])
        self.image_export_bucket = config.get("imageExportBucket") or "tacops-ct-image-exports"
        self.oos_endpoint = config.get("oosEndpoint") or f"https://oos.{region}.outscale.com"
        # Ids of dedicated groups the operators created beforehand (CreateDedicatedGroup), one
        # per backup host: each group has a physical server of its own.
        # NOTE: that the provider passes a group id through placement_tenancy, as OAPI's
        # Placement.Tenancy accepts, is unverified; outscale_checks proves the result.
        self.backup_dedicated_groups: list[str] = list(config.get_object("backupDedicatedGroups") or [])
        if self.backup_dedicated_groups and len(set(self.backup_dedicated_groups)) < 2:
            raise SettingsError("config key 'backupDedicatedGroups' must list two distinct dedicated group ids, or none")

        missing_omi = sorted(r.name for r in self.stack.roles.values() if r.count and not r.omi)
        if missing_omi:
            raise SettingsError(
                f"no OMI for roles {missing_omi}: set 'defaultOmi' or 'roles.<role>.omi' in the stack configuration"
            )
        for role in (*self.admin_roles, *self.monitoring_roles):
            if role not in self.stack.roles:
                raise SettingsError(f"config names role {role!r} as admin or monitoring role, but the description has no such role")
        backup = self.stack.roles[BACKUP_ROLE]
        if backup.count < 2:
            raise SettingsError(
                f"config key 'roles.backup.count' is {backup.count}; at least 2 backup hosts are needed, "
                "one per physical server"
            )
        for tier in ("front", "app", "data", "admin"):
            count = sum(r.count for r in self.stack.roles.values() if r.tier == tier)
            # OUTSCALE reserves the first four addresses and the last one of every subnet.
            if count > 2 ** (32 - SUBNET_PREFIX) - 5:
                raise SettingsError(f"tier {tier} has {count} VMs, more than one /{SUBNET_PREFIX} subnet holds")


def _tag_list(tags: dict[str, str], args_type: type, name: str) -> list:
    return [args_type(key=key, value=value) for key, value in {**tags, "Name": name}.items()]


class OutscaleNetwork(pulumi.ComponentResource):
    """The Net and its subnets: one per tier and two for the backup hosts, each in its own subregion."""

    def __init__(self, settings: OutscaleSettings, opts: pulumi.ResourceOptions) -> None:
        super().__init__("tacops:outscale:Network", "ct-network", None, opts)
        stack = settings.stack
        child = pulumi.ResourceOptions(parent=self)
        tags = common.shared_tags(stack, "network")

        self.net = outscale.Net(
            "ct-net", ip_range=settings.net_ip_range, tags=_tag_list(tags, outscale.NetTagArgs, "ct-net"), opts=child
        )
        self.subnets: dict[str, outscale.Subnet] = {}
        for name, ip_range in settings.subnets.items():
            subregion = settings.subregions[1] if name == BACKUP_SUBNETS[1] else settings.subregions[0]
            subnet_tags = {**tags, "tier": "backup" if name in BACKUP_SUBNETS else name}
            self.subnets[name] = outscale.Subnet(
                f"ct-subnet-{name}",
                net_id=self.net.id,
                ip_range=ip_range,
                subregion_name=subregion,
                tags=_tag_list(subnet_tags, outscale.SubnetTagArgs, f"ct-subnet-{name}"),
                opts=child,
            )
        self.register_outputs({"net_id": self.net.id})


class RoleSecurityGroups(pulumi.ComponentResource):
    """One security group per role, plus the public load balancer's, with their inbound rules.

    The rules reference the callers' security groups, not address ranges, so a VM accepts a
    port only from the VMs of a role that the description says calls it.
    """

    def __init__(
        self, description: SystemDescription, settings: OutscaleSettings, net: outscale.Net, opts: pulumi.ResourceOptions
    ) -> None:
        super().__init__("tacops:outscale:SecurityGroups", "ct-security-groups", None, opts)
        stack = settings.stack
        child = pulumi.ResourceOptions(parent=self)
        self.groups: dict[str, outscale.SecurityGroup] = {}
        self.rules: list[outscale.SecurityGroupRule] = []

        for role in stack.roles.values():
            name = common.resource_name(role.name)
            self.groups[role.name] = outscale.SecurityGroup(
                name,
                security_group_name=name,
                description=f"CT role {role.name}: ports of {', '.join(role.services) or 'no service'}",
                net_id=net.id,
                tags=_tag_list(common.role_tags(stack, role), outscale.SecurityGroupTagArgs, name),
                opts=child,
            )
        lb_tags = common.shared_tags(stack, "public-load-balancer", "public-load-balancer")
        self.public_lb = outscale.SecurityGroup(
            "ct-public-lb",
            security_group_name="ct-public-lb",
            description="Public load balancer of the CT API host names: HTTPS from anywhere",
            net_id=net.id,
            tags=_tag_list(lb_tags, outscale.SecurityGroupTagArgs, "ct-public-lb"),
            opts=child,
        )

        # The only rule open to the world.
        self.rules.append(self._rule("ct-public-lb-https-world", self.public_lb, HTTPS, ip_range=WORLD))

        for role in stack.roles.values():
            group = self.groups[role.name]
            for flow in common.inbound_flows(description, role.name, settings.monitoring_roles):
                for source in flow.sources:
                    self.rules.append(
                        self._rule(f"ct-{role.name}-{flow.port}-from-{source}", group, flow.port, source=self.groups[source])
                    )
            if role.name == PUBLIC_LB_ROLE:
                self.rules.append(self._rule(f"ct-{role.name}-{HTTPS}-from-public-lb", group, HTTPS, source=self.public_lb))
            ssh_sources = set(settings.admin_roles) - {role.name}
            if role.name == BACKUP_ROLE:
                # restic runs on each CT host and writes to the backup hosts over SFTP.
                ssh_sources |= {other for other in stack.roles if other != BACKUP_ROLE}
            for source in sorted(ssh_sources):
                self.rules.append(self._rule(f"ct-{role.name}-{SSH}-from-{source}", group, SSH, source=self.groups[source]))
            if role.name in settings.admin_roles:
                for index, cidr in enumerate(settings.admin_cidrs):
                    self.rules.append(self._rule(f"ct-{role.name}-{SSH}-admin-{index}", group, SSH, ip_range=cidr))
        self.register_outputs({})

    def _rule(
        self,
        name: str,
        group: outscale.SecurityGroup,
        port: int,
        *,
        source: outscale.SecurityGroup | None = None,
        ip_range: str | None = None,
    ) -> outscale.SecurityGroupRule:
        rule = outscale.SecurityGroupRuleRuleArgs(
            from_port_range=port,
            to_port_range=port,
            ip_protocol="tcp",
            ip_ranges=[ip_range] if ip_range else None,
            security_groups_members=(
                [outscale.SecurityGroupRuleRuleSecurityGroupsMemberArgs(security_group_id=source.id)] if source else None
            ),
        )
        return outscale.SecurityGroupRule(
            name, flow="Inbound", security_group_id=group.id, rules=[rule], opts=pulumi.ResourceOptions(parent=self)
        )


class RoleFleet(pulumi.ComponentResource):
    """The VMs of one role, named ``ct-<role>-<index>``, with the role's OMI, VM type and security group."""

    def __init__(
        self,
        stack: StackSettings,
        role: RoleSettings,
        subnets: list[outscale.Subnet],
        subregions: list[str],
        tenancies: list[str],
        group: outscale.SecurityGroup,
        keypair: outscale.Keypair,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__("tacops:outscale:RoleFleet", common.resource_name(role.name), None, opts)
        tags = common.role_tags(stack, role)
        self.vms: list[outscale.Vm] = []
        for index in range(1, role.count + 1):
            name = common.resource_name(role.name, index)
            # Backup hosts alternate between the two backup subnets, so consecutive hosts
            # never share a subnet or a subregion.
            position = (index - 1) % len(subnets)
            self.vms.append(
                outscale.Vm(
                    name,
                    image_id=role.omi,
                    vm_type=role.vm_type,
                    keypair_name=keypair.keypair_name,
                    security_group_ids=[group.id],
                    subnet_id=subnets[position].id,
                    placement_subregion_name=subregions[position],
                    placement_tenancy=tenancies[(index - 1) % len(tenancies)],
                    deletion_protection=role.tier in ("data", "backup"),
                    tags=_tag_list({**tags, "tier": role.tier}, outscale.VmTagArgs, name),
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
        self.register_outputs({"vm_ids": [vm.id for vm in self.vms]})


def build(description: SystemDescription | None = None, config: common.ConfigSource | None = None) -> dict:
    """Declare the OUTSCALE stack; return the created resources by kind, for tests and exports."""
    description = description or load_description()
    config = config or pulumi.Config()
    settings = OutscaleSettings(description, config)
    stack = settings.stack
    if stack.placeholders:
        pulumi.log.warn(
            f"{len(stack.placeholders)} OMI config keys are still placeholders (first: {stack.placeholders[0]}); "
            "set the OMIs of the restored images before 'pulumi up'"
        )

    provider = outscale.Provider("outscale", region=stack.region)
    opts = pulumi.ResourceOptions(provider=provider)

    network = OutscaleNetwork(settings, opts)
    groups = RoleSecurityGroups(description, settings, network.net, opts)

    keypair = outscale.Keypair(
        "ct-admin", keypair_name="ct-admin", public_key=settings.admin_public_key, opts=opts
    )

    fleets: dict[str, RoleFleet] = {}
    for role in stack.roles.values():
        if role.name == BACKUP_ROLE:
            subnets = [network.subnets[name] for name in BACKUP_SUBNETS]
            subregions = settings.subregions[:2]
            tenancies = settings.backup_dedicated_groups or ["dedicated"]
        else:
            subnets = [network.subnets[role.tier]]
            subregions = settings.subregions[:1]
            tenancies = ["default"]
        fleets[role.name] = RoleFleet(
            stack, role, subnets, subregions, tenancies, groups.groups[role.name], keypair, opts
        )

    lb_tags = common.shared_tags(stack, "public-load-balancer", "public-load-balancer")
    hosts = sorted(common.public_routes_by_host(description))
    load_balancer = outscale.LoadBalancer(
        "ct-public-api",
        load_balancer_name="ct-public-api",
        load_balancer_type="internet-facing",
        # TCP passthrough: TLS ends on the load-balancer role, which presents the
        # certificate whose public key the apps pin.
        listeners=[
            outscale.LoadBalancerListenerArgs(
                load_balancer_port=HTTPS, load_balancer_protocol="TCP", backend_port=HTTPS, backend_protocol="TCP"
            )
        ],
        subnets=[network.subnets["front"].id],
        security_groups=[groups.public_lb.id],
        tags=[outscale.LoadBalancerTagArgs(key=k, value=v) for k, v in {**lb_tags, "hosts": ",".join(hosts)}.items()],
        opts=opts,
    )
    backends = outscale.LoadBalancerVms(
        "ct-public-api-backends",
        load_balancer_name=load_balancer.load_balancer_name,
        backend_vm_ids=[vm.id for vm in fleets[PUBLIC_LB_ROLE].vms],
        opts=pulumi.ResourceOptions(provider=provider, parent=load_balancer),
    )

    oos = buckets.s3_compatible_provider("oos", stack.region, settings.oos_endpoint)
    bucket_opts = pulumi.ResourceOptions(provider=oos)
    static_buckets = [
        buckets.static_zone_bucket(
            f"ct-static-{name}", name, common.shared_tags(stack, "static-zone", "static-zone"), bucket_opts
        )
        for name in settings.static_zone_buckets
    ]
    export_bucket = buckets.private_bucket(
        "ct-image-exports", settings.image_export_bucket, common.shared_tags(stack, "backup", "image-export"), bucket_opts
    )

    pulumi.export("region", stack.region)
    pulumi.export("vm_count", stack.vm_total())
    pulumi.export("public_hosts", hosts)
    pulumi.export("backup_vm_ids", [vm.id for vm in fleets[BACKUP_ROLE].vms])
    return {
        "network": network,
        "security_groups": groups,
        "keypair": keypair,
        "fleets": fleets,
        "load_balancer": load_balancer,
        "load_balancer_backends": backends,
        "static_buckets": static_buckets,
        "export_bucket": export_bucket,
    }
