"""The Flexible Engine stack: the CT system on Kubernetes (CCE) with the same public interface.

From the description and the stack configuration this program declares, in one namespace:
a Deployment per CT service (a CronJob for the batch jobs), Services, one Ingress that
exposes exactly the description's public routes on the same host names with the TLS key
the apps pin, HorizontalPodAutoscalers on the public API services, NetworkPolicies that
allow only the ``talks_to`` flows, PodDisruptionBudgets and Secrets from secret config.

Not deployed as workloads: ``public-load-balancer`` (the Ingress takes its place),
``static-zone`` (served from OBS buckets) and the data stores. The data stores are either
Flexible Engine managed services (``datastores: managed``) or StatefulSets
(``datastores: statefulset``). The CCE node network and its security group go through
``pulumi_openstack``.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_openstack as openstack

from tacops.foundation.description import SystemDescription, load_description
from tacops.infra import buckets, common
from tacops.infra.common import SettingsError, StackSettings

PLATFORM = "flexible-engine"
DATASTORES = ("postgresql", "mongodb", "kafka", "elasticsearch")
NOT_WORKLOADS = ("public-load-balancer", "static-zone")
INGRESS_ENTRY = "public-load-balancer"
PART_OF = common.SYSTEM_TAG
DIGEST = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
# NOTE: the production schedules of the batch jobs are not public; these are defaults.
DEFAULT_SCHEDULES = {"robert-server-batch": "0 */6 * * *", "clea-batch": "*/30 * * * *"}
DEFAULT_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
RUN_AS = 10001  # Any non-root id works: every writable path is a mounted volume.
HSM_PIN_DIR = "/var/run/secrets/tacops/hsm"
MANAGED_NOTE = (
    "Placeholder: this component creates nothing. The real resources need the SDK that "
    "'pulumi package add terraform-provider flexibleenginecloud/flexibleengine' generates, "
    "which exists only in the operators' GitLab."
)


class FlexibleEngineSettings:
    """Stack settings of the Flexible Engine program."""

    def __init__(self, description: SystemDescription, config: common.ConfigSource) -> None:
        self.stack: StackSettings = common.read_stack_settings(description, PLATFORM, config)
        self.namespace = config.get("namespace") or "tousanticovid-ct"
        self.datastores = config.get("datastores") or "managed"
        if self.datastores not in ("managed", "statefulset"):
            raise SettingsError(f"config key 'datastores' is {self.datastores!r}; expected 'managed' or 'statefulset'")
        self.schedules: dict[str, str] = {**DEFAULT_SCHEDULES, **(config.get_object("schedules") or {})}
        self.workloads = [
            name for name in description.services if name not in (*NOT_WORKLOADS, *DATASTORES)
        ]
        self.in_cluster_stores = list(DATASTORES) if self.datastores == "statefulset" else []

        images = config.get_object("images") or {}
        needed = self.workloads + self.in_cluster_stores
        missing = [name for name in needed if name not in images]
        if missing:
            raise SettingsError(f"config key 'images' has no image for {missing}; give 'name@sha256:<digest>' for each")
        unpinned = sorted(name for name in needed if not DIGEST.match(str(images[name])))
        if unpinned:
            raise SettingsError(f"config key 'images' pins no digest for {unpinned}; use 'name@sha256:<64 hex digits>'")
        self.images: dict[str, str] = {name: images[name] for name in needed}

        self.replicas: dict[str, int] = {
            name: common.as_count(value, f"replicas.{name}") for name, value in (config.get_object("replicas") or {}).items()
        }
        self.autoscaling: dict[str, dict[str, int]] = {}
        for service, bounds in (config.get_object("autoscaling") or {}).items():
            minimum = common.as_count(bounds.get("minReplicas", 2), f"autoscaling.{service}.minReplicas")
            maximum = common.as_count(bounds.get("maxReplicas", 10), f"autoscaling.{service}.maxReplicas")
            cpu = common.as_count(bounds.get("cpuUtilization", 70), f"autoscaling.{service}.cpuUtilization")
            if not 1 <= minimum <= maximum:
                raise SettingsError(
                    f"config key 'autoscaling.{service}' needs 1 <= minReplicas <= maxReplicas, got {minimum} and {maximum}"
                )
            if service not in common.public_services(description):
                raise SettingsError(f"config key 'autoscaling.{service}' names no public API service")
            self.autoscaling[service] = {"min": minimum, "max": maximum, "cpu": cpu}

        self.resources: dict[str, Any] = config.get_object("resources") or {}
        self.probe_ports: dict[str, int] = {
            name: int(port) for name, port in (config.get_object("probePorts") or {}).items()
        }
        for name in self.workloads:
            if name not in self.schedules and common.management_port(description, name) is None and name not in self.probe_ports:
                raise SettingsError(f"service {name} lists no port to probe; set 'probePorts.{name}' in the stack config")

        self.hsm: dict[str, str] = config.get_object("hsm") or {}
        if self.hsm and self.hsm.get("service") not in self.workloads:
            raise SettingsError(f"config key 'hsm.service' is {self.hsm.get('service')!r}; expected a CT service")
        self.ingress_class = config.get("ingressClassName") or "nginx"
        self.ingress_namespace = config.get("ingressControllerNamespace") or "ingress-nginx"
        self.monitoring_namespace = config.get("monitoringNamespace")
        self.managed_cidr = config.get("managedServicesCidr") or "10.60.0.0/20"
        self.object_storage_cidrs: list[str] = list(config.get_object("objectStorageCidrs") or [])
        self.node_network_cidr = config.get("nodeNetworkCidr") or "10.50.0.0/20"
        self.elb_cidrs: list[str] = list(config.get_object("elbCidrs") or [])
        self.admin_cidrs: list[str] = list(config.get_object("adminCidrs") or [])
        if "0.0.0.0/0" in self.admin_cidrs + self.elb_cidrs:
            raise SettingsError("config keys 'adminCidrs' and 'elbCidrs' must not contain 0.0.0.0/0")
        self.storage_class = config.get("storageClassName") or "csi-disk"
        self.storage_sizes: dict[str, str] = config.get_object("storageSizes") or {}
        self.tls_certificate = config.get("tlsCertificate") or ""
        self.static_zone_buckets: list[str] = list(config.get_object("staticZoneBuckets") or [])
        self.obs_endpoint = config.get("obsEndpoint") or f"https://oss.{self.stack.region}.prod-cloud-ocb.orange-business.com"


class KubernetesNames:
    """Labels and selectors of the CT workloads, from the description's roles."""

    def __init__(self, description: SystemDescription, settings: FlexibleEngineSettings) -> None:
        self.runners = common.service_roles(description)
        self.environment = settings.stack.environment

    def selector(self, service: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": PART_OF}

    def labels(self, service: str) -> dict[str, str]:
        role = "+".join(self.runners.get(service) or ["none"])
        return {
            **self.selector(service),
            "tacops/role": role,
            "tacops/service": service,
            "tacops/environment": self.environment,
        }

    def metadata(self, name: str, service: str, namespace: str | pulumi.Output) -> dict:
        return {"name": name, "namespace": namespace, "labels": self.labels(service)}


def _probe(description: SystemDescription, settings: FlexibleEngineSettings, service: str, kind: str) -> dict | None:
    ports = {port.port: port.purpose for port in description.services[service].ports}
    port = settings.probe_ports.get(service) or common.management_port(description, service)
    if port is None:
        return None
    timing = {"periodSeconds": 10, "timeoutSeconds": 3, "failureThreshold": 3}
    if kind == "liveness":
        timing["initialDelaySeconds"] = 60
    if ports.get(port) == common.MANAGEMENT_PURPOSE or service in settings.probe_ports:
        # Spring Boot serves these health groups on the management port when it runs on Kubernetes.
        return {"httpGet": {"path": f"/actuator/health/{kind}", "port": port}, **timing}
    return {"tcpSocket": {"port": port}, **timing}


def _security_context() -> tuple[dict, dict]:
    pod = {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    container = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return pod, container


def _pod_template(
    description: SystemDescription,
    settings: FlexibleEngineSettings,
    names: KubernetesNames,
    service: str,
    *,
    probes: bool,
    restart_policy: str | None = None,
    extra_volumes: list[dict] | None = None,
    extra_mounts: list[dict] | None = None,
    env: list[dict] | None = None,
) -> dict:
    pod_context, container_context = _security_context()
    container: dict[str, Any] = {
        "name": service,
        "image": settings.images[service],
        "imagePullPolicy": "IfNotPresent",
        "ports": [
            {"name": port.purpose[:15], "containerPort": port.port, "protocol": "TCP"}
            for port in description.services[service].ports
        ],
        "resources": settings.resources.get(service) or settings.resources.get("default") or DEFAULT_RESOURCES,
        "securityContext": container_context,
        "envFrom": [{"secretRef": {"name": f"ct-{service}-env", "optional": True}}],
        "env": env or [],
        # A read-only root filesystem leaves /tmp as the only scratch space the JVM needs.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *(extra_mounts or [])],
    }
    if probes:
        for kind in ("readiness", "liveness"):
            probe = _probe(description, settings, service, kind)
            if probe is not None:
                container[f"{kind}Probe"] = probe
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": pod_context,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}, *(extra_volumes or [])],
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return {"metadata": {"labels": names.labels(service)}, "spec": spec}


class CtWorkloads(pulumi.ComponentResource):
    """Deployments, CronJobs, Services, PodDisruptionBudgets and Secrets of the CT services."""

    def __init__(
        self,
        description: SystemDescription,
        settings: FlexibleEngineSettings,
        names: KubernetesNames,
        namespace: k8s.core.v1.Namespace,
        config: Any,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__("tacops:flexibleengine:Workloads", "ct-workloads", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace.metadata["name"]
        self.deployments: dict[str, k8s.apps.v1.Deployment] = {}
        self.cron_jobs: dict[str, k8s.batch.v1.CronJob] = {}
        self.services: dict[str, k8s.core.v1.Service] = {}
        self.budgets: list[k8s.policy.v1.PodDisruptionBudget] = []
        self.secrets: list[k8s.core.v1.Secret] = []

        # Secret environment of each service: {service: {NAME: value}} from secret config.
        service_secrets = config.get_secret_object("serviceSecrets")
        for service in settings.workloads:
            values = (
                service_secrets.apply(lambda d, s=service: {k: str(v) for k, v in (d or {}).get(s, {}).items()})
                if service_secrets is not None
                else {}
            )
            self.secrets.append(
                k8s.core.v1.Secret(
                    f"ct-{service}-env",
                    metadata=names.metadata(f"ct-{service}-env", service, ns),
                    type="Opaque",
                    string_data=values,
                    opts=child,
                )
            )

        hsm_service = settings.hsm.get("service")
        if hsm_service:
            self.secrets.append(
                k8s.core.v1.Secret(
                    "ct-hsm-pin",
                    metadata=names.metadata("ct-hsm-pin", hsm_service, ns),
                    type="Opaque",
                    string_data={"pin": config.require_secret("hsmPin")},
                    opts=child,
                )
            )

        for service in settings.workloads:
            volumes, mounts, env = [], [], []
            if service == hsm_service:
                # The PKCS#11 module and the token come from configuration, never from the image.
                volumes.append({"name": "hsm-pin", "secret": {"secretName": "ct-hsm-pin", "defaultMode": 0o400}})
                mounts.append({"name": "hsm-pin", "mountPath": HSM_PIN_DIR, "readOnly": True})
                env = [
                    {"name": "PKCS11_MODULE", "value": settings.hsm["pkcs11Module"]},
                    {"name": "PKCS11_TOKEN_LABEL", "value": settings.hsm.get("tokenLabel", "")},
                    {"name": "PKCS11_PIN_FILE", "value": f"{HSM_PIN_DIR}/pin"},
                ]
            if service in settings.schedules:
                template = _pod_template(
                    description, settings, names, service, probes=False, restart_policy="OnFailure",
                    extra_volumes=volumes, extra_mounts=mounts, env=env,
                )
                self.cron_jobs[service] = k8s.batch.v1.CronJob(
                    service,
                    metadata=names.metadata(service, service, ns),
                    spec={
                        "schedule": settings.schedules[service],
                        "concurrencyPolicy": "Forbid",
                        "successfulJobsHistoryLimit": 3,
                        "failedJobsHistoryLimit": 3,
                        "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}},
                    },
                    opts=child,
                )
                continue

            template = _pod_template(
                description, settings, names, service, probes=True,
                extra_volumes=volumes, extra_mounts=mounts, env=env,
            )
            bounds = settings.autoscaling.get(service)
            replicas = bounds["min"] if bounds else settings.replicas.get(service, 2)
            self.deployments[service] = k8s.apps.v1.Deployment(
                service,
                metadata=names.metadata(service, service, ns),
                spec={
                    "replicas": replicas,
                    "selector": {"matchLabels": names.selector(service)},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                    "template": template,
                },
                # The HorizontalPodAutoscaler owns the replica count once the Deployment exists.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["spec.replicas"] if bounds else None),
            )
            self.budgets.append(
                k8s.policy.v1.PodDisruptionBudget(
                    service,
                    metadata=names.metadata(service, service, ns),
                    spec={"maxUnavailable": 1, "selector": {"matchLabels": names.selector(service)}},
                    opts=child,
                )
            )
            ports = description.services[service].ports
            if ports:
                self.services[service] = k8s.core.v1.Service(
                    service,
                    metadata=names.metadata(service, service, ns),
                    spec={
                        "type": "ClusterIP",
                        "selector": names.selector(service),
                        "ports": [
                            {"name": p.purpose[:15], "port": p.port, "targetPort": p.port, "protocol": "TCP"} for p in ports
                        ],
                    },
                    opts=child,
                )
        self.register_outputs({})


class InClusterDataStores(pulumi.ComponentResource):
    """StatefulSets of PostgreSQL, MongoDB, Kafka and Elasticsearch, selected by ``datastores: statefulset``."""

    def __init__(
        self,
        description: SystemDescription,
        settings: FlexibleEngineSettings,
        names: KubernetesNames,
        namespace: k8s.core.v1.Namespace,
        opts: pulumi.ResourceOptions,
    ) -> None:
        super().__init__("tacops:flexibleengine:InClusterDataStores", "ct-datastores", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace.metadata["name"]
        self.stateful_sets: dict[str, k8s.apps.v1.StatefulSet] = {}
        self.services: dict[str, k8s.core.v1.Service] = {}
        self.budgets: list[k8s.policy.v1.PodDisruptionBudget] = []
        for store in settings.in_cluster_stores:
            ports = description.services[store].ports
            role = names.runners[store][0]
            template = _pod_template(
                description, settings, names, store, probes=False,
                extra_mounts=[{"name": "data", "mountPath": "/data"}],
            )
            container = template["spec"]["containers"][0]
            for kind, delay in (("readiness", 10), ("liveness", 60)):
                container[f"{kind}Probe"] = {
                    "tcpSocket": {"port": ports[0].port}, "initialDelaySeconds": delay, "periodSeconds": 10,
                }
            self.services[store] = k8s.core.v1.Service(
                store,
                metadata=names.metadata(store, store, ns),
                spec={
                    "clusterIP": "None",
                    "selector": names.selector(store),
                    "ports": [{"name": p.purpose[:15], "port": p.port, "targetPort": p.port} for p in ports],
                },
                opts=child,
            )
            self.stateful_sets[store] = k8s.apps.v1.StatefulSet(
                store,
                metadata=names.metadata(store, store, ns),
                spec={
                    "serviceName": store,
                    "replicas": settings.replicas.get(store, 3),
                    "selector": {"matchLabels": names.selector(store)},
                    "template": template,
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data", "labels": names.labels(store)},
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "storageClassName": settings.storage_class,
                                "resources": {"requests": {"storage": settings.storage_sizes.get(role, "50Gi")}},
                            },
                        }
                    ],
                },
                opts=child,
            )
            self.budgets.append(
                k8s.policy.v1.PodDisruptionBudget(
                    store,
                    metadata=names.metadata(store, store, ns),
                    spec={"maxUnavailable": 1, "selector": {"matchLabels": names.selector(store)}},
                    opts=child,
                )
            )
        self.register_outputs({})


class FlexibleEngineManaged(pulumi.ComponentResource):
    """A Flexible-Engine-only resource this program cannot create here: its intended inputs, as outputs.

    NOTE: a placeholder. It records what the generated Flexible Engine SDK would create
    (``terraform_type`` with ``intended`` inputs) so previews and reviews show it; the real
    resource needs that SDK, which only the operators' GitLab can generate.
    """

    def __init__(self, name: str, terraform_type: str, intended: dict, tags: dict, opts: pulumi.ResourceOptions) -> None:
        super().__init__("tacops:flexibleengine:ManagedPlaceholder", name, None, opts)
        self.terraform_type = terraform_type
        self.intended = intended
        self.register_outputs(
            {"terraformType": terraform_type, "intended": intended, "tags": tags, "created": False, "note": MANAGED_NOTE}
        )


def _managed_resources(
    description: SystemDescription, settings: FlexibleEngineSettings, opts: pulumi.ResourceOptions
) -> list[FlexibleEngineManaged]:
    """Declare the placeholders: the CCE cluster always, the managed data stores when selected."""
    stack = settings.stack

    def databases(kind: str) -> list[str]:
        return sorted({item.name for s in description.services.values() for item in s.state if item.kind == kind})

    # NOTE: the Terraform type names come from the provider's documentation and are
    # unverified against the generated SDK.
    placeholders = [
        FlexibleEngineManaged(
            "ct-cce-cluster", "flexibleengine_cce_cluster_v3",
            {"region": stack.region, "flavor": "cce.s2.medium", "containerNetworkType": "vpc-router"},
            common.shared_tags(stack, "kubernetes"), opts,
        ),
        FlexibleEngineManaged(
            "ct-cce-node-pool", "flexibleengine_cce_node_pool_v3",
            {"region": stack.region, "autoscaling": True, "subnetCidr": settings.node_network_cidr},
            common.shared_tags(stack, "kubernetes"), opts,
        ),
    ]
    if settings.datastores == "managed":
        for name, terraform_type, engine, extra in (
            ("postgresql", "flexibleengine_rds_instance_v3", "PostgreSQL", {"databases": databases("postgresql")}),
            ("mongodb", "flexibleengine_dds_instance_v3", "DDS-Community", {"databases": databases("mongodb")}),
            ("kafka", "flexibleengine_dms_kafka_instance", "kafka", {"ports": [p.port for p in description.services["kafka"].ports]}),
            ("elasticsearch", "flexibleengine_css_cluster_v1", "elasticsearch", {"indices": databases("elasticsearch")}),
        ):
            role = common.service_roles(description)[name][0]
            placeholders.append(
                FlexibleEngineManaged(
                    f"ct-managed-{name}", terraform_type,
                    {"region": stack.region, "engine": engine, "role": role, "allowedCidr": settings.node_network_cidr, **extra},
                    common.role_tags(stack, stack.roles[role]), opts,
                )
            )
    return placeholders


def _network_policies(
    description: SystemDescription,
    settings: FlexibleEngineSettings,
    names: KubernetesNames,
    ns: pulumi.Output,
    opts: pulumi.ResourceOptions,
) -> list[k8s.networking.v1.NetworkPolicy]:
    """Deny everything, then allow DNS and exactly the description's ``talks_to`` flows."""
    in_cluster = set(settings.workloads) | set(settings.in_cluster_stores)
    entry = description.services[INGRESS_ENTRY]
    policies = [
        k8s.networking.v1.NetworkPolicy(
            "ct-default-deny",
            metadata={"name": "ct-default-deny", "namespace": ns, "labels": names.labels("none")},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=opts,
        ),
        k8s.networking.v1.NetworkPolicy(
            "ct-allow-dns",
            metadata={"name": "ct-allow-dns", "namespace": ns, "labels": names.labels("none")},
            spec={
                "podSelector": {},
                "policyTypes": ["Egress"],
                "egress": [
                    {
                        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
            opts=opts,
        ),
    ]
    for service in sorted(in_cluster):
        ports = description.services[service].ports
        ingress = []
        for caller in common.callers(description, service):
            if caller in in_cluster and ports:
                ingress.append(
                    {
                        "from": [{"podSelector": {"matchLabels": names.selector(caller)}}],
                        "ports": [{"protocol": "TCP", "port": p.port} for p in ports],
                    }
                )
        if service in entry.talks_to and ports:
            serving = [p for p in ports if p.purpose != common.MANAGEMENT_PURPOSE]
            ingress.append(
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.ingress_namespace}}}],
                    "ports": [{"protocol": "TCP", "port": serving[0].port}],
                }
            )
        management = [p for p in ports if p.purpose == common.MANAGEMENT_PURPOSE]
        if settings.monitoring_namespace and management:
            ingress.append(
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.monitoring_namespace}}}],
                    "ports": [{"protocol": "TCP", "port": p.port} for p in management],
                }
            )

        egress = []
        peers = list(description.services[service].talks_to)
        if service in settings.in_cluster_stores:
            peers.append(service)  # members of one data store replicate between themselves
            ingress.append(
                {
                    "from": [{"podSelector": {"matchLabels": names.selector(service)}}],
                    "ports": [{"protocol": "TCP", "port": p.port} for p in ports],
                }
            )
        for peer in peers:
            peer_ports = [{"protocol": "TCP", "port": p.port} for p in description.services[peer].ports]
            if not peer_ports:
                continue
            if peer in in_cluster:
                egress.append({"to": [{"podSelector": {"matchLabels": names.selector(peer)}}], "ports": peer_ports})
            elif peer in DATASTORES:
                egress.append({"to": [{"ipBlock": {"cidr": settings.managed_cidr}}], "ports": peer_ports})
        if service == "clea-batch" and settings.object_storage_cidrs:
            # clea-batch uploads the cluster files to the OBS bucket over HTTPS.
            egress.append(
                {"to": [{"ipBlock": {"cidr": cidr}} for cidr in settings.object_storage_cidrs], "ports": [{"protocol": "TCP", "port": 443}]}
            )

        spec: dict[str, Any] = {"podSelector": {"matchLabels": names.selector(service)}, "policyTypes": []}
        if ingress:
            spec["policyTypes"].append("Ingress")
            spec["ingress"] = ingress
        if egress:
            spec["policyTypes"].append("Egress")
            spec["egress"] = egress
        if not spec["policyTypes"]:
            continue
        policies.append(
            k8s.networking.v1.NetworkPolicy(
                f"ct-{service}", metadata=names.metadata(f"ct-{service}", service, ns), spec=spec, opts=opts
            )
        )
    return policies


def route_path_pattern(path: str) -> str:
    """Return the anchored regular expression of a route path; ``{id}`` matches one path segment."""
    parts = re.split(r"(\{[^}/]+\})", path)
    return "^" + "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + "$"


def _ingress(
    description: SystemDescription,
    settings: FlexibleEngineSettings,
    names: KubernetesNames,
    ns: pulumi.Output,
    tls_secret: k8s.core.v1.Secret,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.Ingress:
    """Expose exactly the public routes: one anchored path per route, on the route's host name."""
    rules = []
    by_host = common.public_routes_by_host(description)
    for host, routes in by_host.items():
        paths = []
        seen = set()
        for route in routes:
            pattern = route_path_pattern(route.path)
            if pattern in seen:
                continue
            seen.add(pattern)
            http_port = next(p.port for p in description.services[route.service].ports if p.purpose != common.MANAGEMENT_PURPOSE)
            paths.append(
                {
                    "path": pattern,
                    # Regular expressions need the controller-specific path type.
                    "pathType": "ImplementationSpecific",
                    "backend": {"service": {"name": route.service, "port": {"number": http_port}}},
                }
            )
        rules.append({"host": host, "http": {"paths": paths}})
    return k8s.networking.v1.Ingress(
        "ct-public-api",
        metadata={
            "name": "ct-public-api",
            "namespace": ns,
            "labels": names.labels(INGRESS_ENTRY),
            "annotations": {
                "nginx.ingress.kubernetes.io/use-regex": "true",
                "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            },
        },
        spec={
            "ingressClassName": settings.ingress_class,
            "tls": [{"hosts": list(by_host), "secretName": "ct-public-tls"}],
            "rules": rules,
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[tls_secret])),
    )


def _node_network(settings: FlexibleEngineSettings) -> dict:
    """Declare the CCE node network and its security group through the OpenStack API of Flexible Engine.

    NOTE: that ``pulumi_openstack`` works against Flexible Engine's network API is unverified.
    """
    tags = [f"{key}={value}" for key, value in common.shared_tags(settings.stack, "kubernetes").items()]
    network = openstack.networking.Network("ct-cce-nodes", name="ct-cce-nodes", admin_state_up=True, tags=tags)
    subnet = openstack.networking.Subnet(
        "ct-cce-nodes", name="ct-cce-nodes", network_id=network.id, cidr=settings.node_network_cidr, ip_version=4, tags=tags
    )
    group = openstack.networking.SecGroup(
        "ct-cce-nodes", name="ct-cce-nodes", description="CCE nodes of the CT system", delete_default_rules=True, tags=tags
    )
    rules = [
        openstack.networking.SecGroupRule(
            f"ct-cce-nodes-{protocol}-from-nodes", direction="ingress", ethertype="IPv4", protocol=protocol,
            remote_group_id=group.id, security_group_id=group.id,
        )
        for protocol in ("tcp", "udp")
    ]
    rules.append(
        openstack.networking.SecGroupRule(
            "ct-cce-nodes-egress", direction="egress", ethertype="IPv4", remote_ip_prefix="0.0.0.0/0",
            security_group_id=group.id,
        )
    )
    for index, cidr in enumerate(settings.elb_cidrs):
        # The ELB in front of the ingress controller reaches it through node ports.
        rules.append(
            openstack.networking.SecGroupRule(
                f"ct-cce-nodes-nodeports-from-elb-{index}", direction="ingress", ethertype="IPv4", protocol="tcp",
                port_range_min=30000, port_range_max=32767, remote_ip_prefix=cidr, security_group_id=group.id,
            )
        )
    for index, cidr in enumerate(settings.admin_cidrs):
        rules.append(
            openstack.networking.SecGroupRule(
                f"ct-cce-nodes-ssh-admin-{index}", direction="ingress", ethertype="IPv4", protocol="tcp",
                port_range_min=22, port_range_max=22, remote_ip_prefix=cidr, security_group_id=group.id,
            )
        )
    return {"network": network, "subnet": subnet, "security_group": group, "rules": rules}


def build(description: SystemDescription | None = None, config: Any = None) -> dict:
    """Declare the Flexible Engine stack; return the created resources by kind, for tests and exports."""
    description = description or load_description()
    config = config or pulumi.Config()
    settings = FlexibleEngineSettings(description, config)
    names = KubernetesNames(description, settings)

    node_network = _node_network(settings)
    managed = _managed_resources(description, settings, pulumi.ResourceOptions())

    namespace = k8s.core.v1.Namespace(
        "ct-namespace",
        metadata={"name": settings.namespace, "labels": {**names.labels("none"), "pod-security.kubernetes.io/enforce": "restricted"}},
    )
    ns = namespace.metadata["name"]
    opts = pulumi.ResourceOptions(depends_on=[namespace])

    tls_secret = k8s.core.v1.Secret(
        "ct-public-tls",
        metadata=names.metadata("ct-public-tls", INGRESS_ENTRY, ns),
        type="kubernetes.io/tls",
        string_data={"tls.crt": settings.tls_certificate, "tls.key": config.require_secret("tlsPrivateKey")},
        opts=opts,
    )
    workloads = CtWorkloads(description, settings, names, namespace, config, opts)
    stores = InClusterDataStores(description, settings, names, namespace, opts) if settings.in_cluster_stores else None
    ingress = _ingress(description, settings, names, ns, tls_secret, opts)

    autoscalers = []
    for service, bounds in settings.autoscaling.items():
        autoscalers.append(
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                service,
                metadata=names.metadata(service, service, ns),
                spec={
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
                    "minReplicas": bounds["min"],
                    "maxReplicas": bounds["max"],
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": bounds["cpu"]}}}
                    ],
                },
                opts=pulumi.ResourceOptions(depends_on=[workloads]),
            )
        )
    policies = _network_policies(description, settings, names, ns, opts)

    obs = buckets.s3_compatible_provider("obs", settings.stack.region, settings.obs_endpoint)
    bucket_opts = pulumi.ResourceOptions(provider=obs)
    static_buckets = [
        buckets.static_zone_bucket(
            f"ct-static-{name}", name, common.shared_tags(settings.stack, "static-zone", "static-zone"), bucket_opts
        )
        for name in settings.static_zone_buckets
    ]

    pulumi.export("namespace", ns)
    pulumi.export("public_hosts", sorted(common.public_routes_by_host(description)))
    pulumi.export("datastores", settings.datastores)
    return {
        "node_network": node_network,
        "managed": managed,
        "namespace": namespace,
        "tls_secret": tls_secret,
        "workloads": workloads,
        "datastores": stores,
        "ingress": ingress,
        "autoscalers": autoscalers,
        "network_policies": policies,
        "static_buckets": static_buckets,
    }
