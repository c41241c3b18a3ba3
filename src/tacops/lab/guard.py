"""Route guard: the SSH ProxyCommand of every lab connection.

Usage: ``python3 -m tacops.lab.guard HOST PORT --bridge BRIDGE``

It reads from the kernel which device carries traffic to HOST (``ip -o route get HOST``) and
connects only when that device is the lab bridge. Without the check, an SSH command run
after the lab is torn down would send packets to a lab address through the machine's
default route. When the route is right, it relays standard input and output to a TCP
connection to HOST:PORT, as ``nc`` would.

This module imports the standard library only, because ssh starts it once per master
connection and the rest of tacops is slow to import.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import selectors
import socket
import subprocess
import sys

CHUNK = 65536


class RouteRejected(Exception):
    """The route to the address does not go through the expected bridge."""


def route_device(address: str) -> tuple[str | None, str]:
    """Return (device, raw route line) that ``ip -o route get ADDRESS`` reports."""
    completed = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True)
    lines = (completed.stdout.strip() or completed.stderr.strip()).splitlines()
    # With -o, ip joins continuation lines with a backslash: drop it and collapse the spaces.
    text = " ".join(lines[0].replace("\\", " ").split()) if lines else ""
    if completed.returncode != 0:
        return None, text
    words = text.split()
    for index, word in enumerate(words[:-1]):
        if word == "dev":
            return words[index + 1], text
    return None, text


def verify_route(address: str, bridge: str) -> None:
    """Raise RouteRejected unless ``address`` is an IPv4 literal routed directly through ``bridge``."""
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise RouteRejected(
            f"{address!r} is not an IPv4 address; lab connections use the addresses of lab hosts only"
        ) from None
    device, route = route_device(address)
    if device != bridge or " via " in f" {route} ":
        raise RouteRejected(
            f"the route to {address} goes {('through ' + device) if device else 'nowhere'} "
            f"({route or 'no route'}), not directly through the lab bridge {bridge}; "
            f"start the lab (tacops lab up) or check that {address} is a lab address"
        )


def relay(sock: socket.socket, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
    """Copy stdin to ``sock`` and ``sock`` to stdout until the peer closes the connection."""
    selector = selectors.DefaultSelector()
    selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
    selector.register(sock, selectors.EVENT_READ, "socket")
    while True:
        for key, _events in selector.select():
            if key.data == "stdin":
                data = os.read(stdin_fd, CHUNK)
                if data:
                    sock.sendall(data)
                else:
                    # Half-close, so the server still sends what it has left.
                    selector.unregister(stdin_fd)
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            else:
                data = sock.recv(CHUNK)
                if not data:
                    return
                view = memoryview(data)
                while view:
                    written = os.write(stdout_fd, view)
                    view = view[written:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tacops.lab.guard",
                                     description="Connect to a lab host only through the lab bridge.")
    parser.add_argument("host", help="IPv4 address of the lab host")
    parser.add_argument("port", type=int, help="TCP port to connect to")
    parser.add_argument("--bridge", required=True, help="name of the lab bridge the route must use")
    parser.add_argument("--check-only", action="store_true", help="check the route and exit without connecting")
    arguments = parser.parse_args(argv)

    try:
        verify_route(arguments.host, arguments.bridge)
    except RouteRejected as error:
        print(f"tacops route guard: connection rejected: {error}", file=sys.stderr)
        return 1
    if arguments.check_only:
        return 0
    try:
        sock = socket.create_connection((arguments.host, arguments.port), timeout=10)
    except OSError as error:
        print(f"tacops route guard: cannot connect to {arguments.host}:{arguments.port}: {error}", file=sys.stderr)
        return 1
    sock.settimeout(None)
    try:
        relay(sock)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
