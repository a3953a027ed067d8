"""Telling where an address leads: this machine's loopback (listen addresses
that may go without TLS, registries reached over plain HTTP), or anywhere
internal, which nothing done on a tenant's behalf may connect to."""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path


def is_loopback(address: str) -> bool:
    """Whether ``host[:port]`` (an IPv6 host in brackets, or bare) is
    ``localhost`` or a loopback IP address."""
    host = address
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Where nothing the platform connects to on a tenant's behalf (a build's
#: registry, an image to import, a repository to clone) may lead: this
#: machine's loopback, link-local addresses (cloud metadata among them),
#: private and shared ranges, and what is not an address of one host.
INTERNAL_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


def internal_reason(address: str) -> str:
    """Why the IP ``address`` is internal (INTERNAL_NETWORKS, or an address
    of one of this machine's own interfaces, where every service listening
    on all addresses answers), or "" when it is not."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if any(ip in network for network in INTERNAL_NETWORKS):
        return "a private address"
    if ip in own_addresses():
        return "an address of this machine"
    return ""


def own_addresses() -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses of this machine's interfaces (read from /proc: the
    kernel's local routes and IPv6 addresses)."""
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in itertools.pairwise(lines):
        if line.strip() == "/32 host LOCAL":
            candidate = previous.strip().removeprefix("|-- ")
            try:
                found.add(ipaddress.IPv4Address(candidate))
            except ValueError:
                continue
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(ipaddress.IPv6Address(int(raw, 16)))
    except (OSError, ValueError, IndexError):
        pass
    return frozenset(found)
