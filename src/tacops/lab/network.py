"""The lab network: one bridge in the root namespace and one network namespace per host.

Each host gets a veth pair: the outer end joins the bridge, the inner end is renamed
``eth0`` inside the host's namespace and carries the host's address. No lab namespace
has a default route, so a lab host can reach the other lab hosts and the controller's
bridge address and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import subprocess
from pathlib import Path

from tacops.foundation.errors import LabError

log = logging.getLogger(__name__)

NETNS_PREFIX = "tacops-"
NETNS_DIR = Path("/run/netns")
# Outer veth ends are named from the host's index so they fit the 15-character limit.
VETH_PREFIX = "tacopsv"
PEER_PREFIX = "tacopsp"


def netns_name(host: str) -> str:
    return f"{NETNS_PREFIX}{host}"


def netns_path(host: str) -> Path:
    return NETNS_DIR / netns_name(host)


def veth_names(index: int) -> tuple[str, str]:
    return f"{VETH_PREFIX}{index}", f"{PEER_PREFIX}{index}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *args]
    log.debug("run: %s", " ".join(argv))
    completed = subprocess.run(argv, capture_output=True, text=True)
    if check and completed.returncode != 0:
        raise LabError(
            f"Network command failed with exit code {completed.returncode}: {' '.join(argv)}: "
            f"{completed.stderr.strip()}",
            hint="Run 'tacops lab down' to remove what the lab created, then run the command again.",
        )
    return completed


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


def check_subnet_free(subnet: ipaddress.IPv4Network, bridge: str) -> None:
    """Raise LabError when another device already has a route into ``subnet``."""
    routes = json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        destination = route.get("dst", "")
        if destination in ("", "default"):
            continue
        try:
            network = ipaddress.IPv4Network(destination, strict=False)
        except ValueError:
            continue
        if network.overlaps(subnet) and route.get("dev") != bridge:
            raise LabError(
                f"The lab subnet {subnet} is already routed on this machine: {destination} dev {route.get('dev')}.",
                hint="Choose another subnet for the lab profile in the description, or remove that route.",
            )


def create_bridge(bridge: str, gateway: ipaddress.IPv4Address, subnet: ipaddress.IPv4Network) -> None:
    ip("link", "add", bridge, "type", "bridge")
    ip("addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", bridge)
    ip("link", "set", bridge, "up")


def create_host_network(host: str, index: int, bridge: str, address: ipaddress.IPv4Address,
                        subnet: ipaddress.IPv4Network) -> None:
    """Create the namespace of ``host`` with its veth pair and address, and no default route."""
    namespace = netns_name(host)
    outer, peer = veth_names(index)
    ip("netns", "add", namespace)
    ip("link", "add", outer, "type", "veth", "peer", "name", peer, "netns", namespace)
    ip("link", "set", outer, "master", bridge)
    ip("link", "set", outer, "up")
    ip("-n", namespace, "link", "set", peer, "name", "eth0")
    ip("-n", namespace, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0")
    ip("-n", namespace, "link", "set", "eth0", "up")
    ip("-n", namespace, "link", "set", "lo", "up")


def default_route(host: str) -> str:
    """Return the default route of the host's namespace ('' when there is none, as the lab requires)."""
    return ip("-n", netns_name(host), "-4", "route", "show", "default").stdout.strip()


def lab_namespaces() -> list[str]:
    """Names of every network namespace on this machine that carries the lab prefix."""
    completed = ip("netns", "list", check=False)
    names = [line.split()[0] for line in completed.stdout.splitlines() if line.strip()]
    return [name for name in names if name.startswith(NETNS_PREFIX)]


def lab_links(bridge: str) -> list[str]:
    """Outer veth ends of the lab (by prefix or bridge membership), then the bridge itself."""
    completed = ip("-j", "link", "show", check=False)
    links = json.loads(completed.stdout or "[]")
    names = [link["ifname"] for link in links
             if link["ifname"].startswith(VETH_PREFIX) or link.get("master") == bridge]
    if any(link["ifname"] == bridge for link in links):
        names.append(bridge)
    return names


def remove_network(bridge: str) -> list[str]:
    """Delete every lab namespace, veth and the bridge; return the errors met, if any."""
    errors: list[str] = []
    for namespace in lab_namespaces():
        completed = ip("netns", "delete", namespace, check=False)
        if completed.returncode != 0:
            errors.append(f"netns {namespace}: {completed.stderr.strip()}")
    for name in lab_links(bridge):
        if not link_exists(name):
            continue  # deleting a namespace already removed the pair
        completed = ip("link", "delete", name, check=False)
        if completed.returncode != 0 and link_exists(name):
            errors.append(f"link {name}: {completed.stderr.strip()}")
    return errors
