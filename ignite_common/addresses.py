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


Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: "This network" (0.0.0.0/8): on Linux, 0.x addresses reach this machine.
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
#: Private ranges (RFC 1918, IPv6 unique local addresses): where a
#: provider's or an operator's internal services live. The documentation
#: and benchmarking ranges, which Python counts as private too, are not
#: among them: nothing internal is reachable there unless a network routes
#: them on purpose (a package mirror behind one, as on the test bed).
_PRIVATE = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


def address_kind(ip: Address) -> str | None:
    """What kind of non-public address ``ip`` is ("loopback", "link-local",
    "unspecified", "multicast", "shared (carrier-grade NAT)", "private",
    "reserved"), or None for a public one. An IPv4-mapped or NAT64 form is
    judged by the IPv4 address it carries.

    Nothing the platform connects to on a tenant's behalf (a build's
    registry, an image to import, a repository to clone) may lead to one:
    this machine's loopback, link-local addresses (cloud metadata among
    them), private and shared ranges, and what is not an address of one
    host (unspecified, multicast, the reserved 240.0.0.0/4)."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or (ipaddress.IPv4Address(ip.packed[-4:]) if ip in _NAT64 else None)
        if mapped is not None:
            return address_kind(mapped)
    for kind, test in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK)),
        ("multicast", ip.is_multicast),
        ("shared (carrier-grade NAT)", ip.version == 4 and ip in _SHARED),
        ("private", any(ip.version == net.version and ip in net for net in _PRIVATE)),
        ("reserved", ip.is_reserved),
    ):
        if test:
            return kind
    return None


#: address_kind's answer for an address of one of this machine's own
#: interfaces, where every service listening on all addresses answers.
OWN_ADDRESS = "this machine's"


def internal_kind(address: str | Address) -> str | None:
    """address_kind, or OWN_ADDRESS for a public address of this machine;
    None when the IP ``address`` is neither."""
    ip = address if not isinstance(address, str) else ipaddress.ip_address(address.split("%", 1)[0])
    kind = address_kind(ip)
    if kind is None and ip in own_addresses():
        return OWN_ADDRESS
    return kind


def internal_reason(address: str | Address) -> str:
    """Why the IP ``address`` is internal ("a loopback address", "an address
    of this machine", …; see internal_kind), or "" when it is not."""
    kind = internal_kind(address)
    if kind is None:
        return ""
    if kind == OWN_ADDRESS:
        return "an address of this machine"
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"


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
