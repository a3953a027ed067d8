"""Where the server may connect on a user's behalf (ports/egress.py).

A destination is refused when any address its name resolves to (every one,
so a name with one public and one private address cannot pick the private
one at connection time) is internal (ignite_common/addresses.py, the one
check builds' egress proxy uses too: loopback, link-local (the cloud
metadata service at 169.254.169.254), private, shared (100.64/10),
multicast, reserved or unspecified, an IPv4-mapped or NAT64 form of one, or
an address of this machine), unless the operator's allow-list
(``--egress-allow``, the same list builds' proxy reads) names it. Entries
are:

- ``name`` or ``name:port``: that host name as an image reference or git
  URL writes it (any port, or that port), whatever it resolves to;
- an address, ``address:port`` or a network (``10.0.0.0/8``): addresses
  there are allowed (any port, or that port);
- ``*.suffix``: every name ending in ``.suffix`` (any port);
- ``default``: the package registries builds reach (builds/egress.py);
  public names, so nothing for this check.

The refusal says which kind of address it was, never which service (if
any) listens there: the check runs before any connection, so it answers the
same whether the port is open or closed, and no peer's bytes exist to be
echoed. The addresses checked are returned, so a client that can be told
which address to use (git, through ``http.curloptResolve``) connects to
exactly those; skopeo resolves again itself, a window a DNS server
answering differently a moment later could use (docs/runtimes/images.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ignite_common.addresses import OWN_ADDRESS, internal_kind
from ignite_server.domain import hosts
from ignite_server.domain.errors import FailedPrecondition, InvalidArgument
from ignite_server.ports.egress import Destination

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: How long a name may take to resolve.
RESOLVE_TIMEOUT_SECS = 10.0


@dataclass(frozen=True)
class AllowEntry:
    """One entry of the allow-list: a name or a network, maybe one port."""

    name: str = ""
    network: Network | None = None
    port: int | None = None
    #: ``*.suffix``: the ``.suffix`` every name it allows ends with.
    suffix: str = ""

    def names(self, host: str, port: int) -> bool:
        if self.suffix:
            return host.endswith(self.suffix)
        return bool(self.name) and self.name == host and self.port in (None, port)

    def covers(self, address: Address, port: int) -> bool:
        return (
            self.network is not None
            and address.version == self.network.version
            and address in self.network
            and self.port in (None, port)
        )


def parse_allow_list(entries: Sequence[str]) -> tuple[AllowEntry, ...]:
    """The allow-list from ``--egress-allow``'s entries; InvalidArgument
    naming the first bad one."""
    parsed = []
    for raw in entries:
        text = raw.strip().lower()
        if not text or text == "default":
            continue
        if text.startswith("*.") and hosts.normalized(text[2:]) is not None and ":" not in text:
            parsed.append(AllowEntry(suffix=text[1:]))
            continue
        try:
            parsed.append(AllowEntry(network=ipaddress.ip_network(text, strict=False)))
            continue
        except ValueError:
            pass
        host = hosts.normalized(text)
        if host is None:
            raise InvalidArgument(f"--egress-allow entry {raw!r} is no host, address or network")
        name, port = hosts.split(host, 0)
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            parsed.append(AllowEntry(name=name, port=port or None))
            continue
        parsed.append(AllowEntry(network=ipaddress.ip_network(address), port=port or None))
    return tuple(parsed)


#: Every address a host name resolves to (for a given port).
Resolver = Callable[[str, int], Awaitable[list[Address]]]


class EgressPolicy:
    """Checks destinations against the public-address rule and the
    operator's allow-list; ``resolve`` is the system's resolver."""

    def __init__(self, allow: Sequence[AllowEntry] = (), resolve: Resolver | None = None) -> None:
        self._allow = tuple(allow)
        self._resolve = resolve or system_resolve

    async def check(self, host: str, default_port: int, what: str) -> Destination:
        name, port = hosts.split(host.lower(), default_port)
        if any(entry.names(name, port) for entry in self._allow):
            return Destination(name, port, ())
        try:
            addresses = [ipaddress.ip_address(name)]
        except ValueError:
            addresses = await self._resolve_name(name, port, what)
        for address in addresses:
            kind = internal_kind(address)
            if kind is None or any(entry.covers(address, port) for entry in self._allow):
                continue
            raise FailedPrecondition(
                f"{what} names {host}, which is {_described(kind)}: the platform"
                " connects only to public addresses unless its operator allows the host"
                " (--egress-allow)",
                reason="DESTINATION_NOT_ALLOWED",
                metadata={"host": host, "address_kind": kind},
            )
        return Destination(name, port, tuple(str(a) for a in addresses))

    async def _resolve_name(self, name: str, port: int, what: str) -> list[Address]:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECS):
                addresses = await self._resolve(name, port)
        except (OSError, TimeoutError):
            addresses = []
        if not addresses:
            raise FailedPrecondition(
                f"{what} names {name}, which does not resolve",
                reason="HOST_UNRESOLVED",
                metadata={"host": name},
            )
        return addresses


async def system_resolve(name: str, port: int) -> list[Address]:
    """Every address the system's resolver gives ``name``."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _described(kind: str) -> str:
    if kind == OWN_ADDRESS:
        return "an address of this machine"
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"
