"""Egress of image pods: the platform's edge, and nothing else.

An image pod has no network: its namespace holds only loopback. Apps still
call each other by their public URLs (a web front end proxies ``/api`` to
``http://backend-acme.ignite.localhost:8080``, given in its env), so those
URLs must work from inside, whatever port the app itself listens on (the
front end may well listen on 8080 too, on ``::`` or ``0.0.0.0``). How:

1. the app's env values are scanned for URLs whose host is under the apps
   domain (``*.ignite.localhost``); those host names go into the pod's own
   ``/etc/hosts``, mapped to EDGE_ADDRESS;
2. the server makes a second namespace for the pod, the *edge* namespace,
   joined to the pod's by a veth pair: EDGE_ADDRESS on the edge side,
   POD_ADDRESS on the pod's, a /30 between them. EDGE_ADDRESS is not an
   address of the pod's namespace, so no listening socket of the app, not
   even a wildcard one, covers it, and every port stays the app's;
3. in the edge namespace the server listens on EDGE_ADDRESS at every port
   those URLs use (80 for ``http``, 443 for ``https`` when none is given)
   and pipes each connection to the platform's edge on the host: to its TLS
   listener when the connection opens with a TLS handshake (first byte
   0x16), else to its plain HTTP one. So ``http://`` and ``https://`` URLs
   both work, on any port, as from a browser.

The app can reach nothing else: the edge namespace has no route anywhere,
forwards nothing, and holds only the server's listeners, which lead only
to the edge; the edge routes by the Host header and enforces each app's own
access rules, as for any outside caller. Both namespaces (and the veth pair
with them) end when the pod's last socket in them closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from ignite_common.streams import close_quietly, pipe
from ignite_server.containment.netns import NamespaceError, NetNamespace

log = structlog.get_logger(__name__)

#: The edge's address as the pod sees it, and the pod's own on the link.
#: Link-local: never routed, and no other host has it.
EDGE_ADDRESS = "169.254.77.1"
POD_ADDRESS = "169.254.77.2"
LINK_PREFIX = 30
#: The veth ends' names, in their own namespaces (so no clash between pods).
EDGE_LINK = "ig-edge"
POD_LINK = "ig-pod"
#: A URL's scheme, host and port, wherever it is in a value.
URL = re.compile(r"\b(https?)://([A-Za-z0-9.-]+)(?::(\d{1,5}))?", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}
#: The first byte of a TLS record carrying a handshake (a ClientHello).
TLS_HANDSHAKE = 0x16
#: How long a connection may stay silent before its first byte tells TLS
#: from plain HTTP (clients speak first in both).
FIRST_BYTE_SECS = 30.0
#: How long setting up the link may take: a few milliseconds normally.
LINK_TIMEOUT_SECS = 10.0


@dataclass(frozen=True)
class Edge:
    """Where image pods' calls to app URLs go on the host."""

    #: The edge's plain HTTP listener.
    http: tuple[str, int]
    #: Its TLS listener for app hosts; None when it serves none.
    https: tuple[str, int] | None = None


@dataclass(frozen=True)
class EdgeRoutes:
    """The apps' host names an app refers to, and the ports it uses."""

    hosts: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()


def routes(env: Mapping[str, str], apps_domain: str) -> EdgeRoutes:
    """The edge URLs in ``env``'s values."""
    suffix = "." + apps_domain.lower().strip(".")
    hosts: dict[str, None] = {}
    ports: dict[int, None] = {}
    for value in env.values():
        for scheme, host, port in URL.findall(value):
            host = host.lower().rstrip(".")
            if host.endswith(suffix):
                hosts[host] = None
                ports[int(port) if port else DEFAULT_PORTS[scheme.lower()]] = None
    return EdgeRoutes(tuple(hosts), tuple(p for p in ports if 0 < p < 65536))


def hosts_file(edge_hosts: Iterable[str], hostname: str) -> str:
    """The pod's ``/etc/hosts``."""
    lines = [f"127.0.0.1\tlocalhost {hostname}", "::1\tlocalhost"]
    names = " ".join(edge_hosts)
    if names:
        lines.append(f"{EDGE_ADDRESS}\t{names}")
    return "\n".join(lines) + "\n"


class EdgeForwarder:
    """One pod's edge namespace, its link to the pod, and the listeners in
    it that lead to the edge."""

    def __init__(self, pod_netns: NetNamespace, edge: Edge) -> None:
        self._pod_netns = pod_netns
        self._edge = edge
        self._netns: NetNamespace | None = None
        self._servers: list[asyncio.Server] = []
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self, ports: Iterable[int]) -> None:
        """Make the edge namespace and its link, and listen on
        ``EDGE_ADDRESS`` at each of ``ports``; raises OSError."""
        self._netns = await NetNamespace.create()
        await self._netns.run(_no_forwarding)
        await _link(self._netns, self._pod_netns)
        for port in ports:
            sock = await self._netns.listener(EDGE_ADDRESS, port)
            self._servers.append(await asyncio.start_server(self._accepted, sock=sock))

    async def _accepted(
        self, inside_r: asyncio.StreamReader, inside_w: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            try:
                async with asyncio.timeout(FIRST_BYTE_SECS):
                    first = await inside_r.read(1)
            except TimeoutError:
                return
            if not first:
                return
            target = self._edge.http
            if first[0] == TLS_HANDSHAKE:
                if self._edge.https is None:
                    log.info("a pod spoke TLS to an edge that serves no TLS")
                    return
                target = self._edge.https
            try:
                edge_r, edge_w = await asyncio.open_connection(*target)
            except OSError as exc:
                log.warning("edge unreachable from a pod", edge=target, error=str(exc))
                return
            try:
                edge_w.write(first)
                await asyncio.gather(pipe(inside_r, edge_w), pipe(edge_r, inside_w))
            finally:
                await close_quietly(edge_w)
        finally:
            await close_quietly(inside_w)
            self._pipes.discard(task)

    async def close(self) -> None:
        """Stop listening, cut every open connection, let the namespace go."""
        for server in self._servers:
            server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._netns is not None:
            self._netns.close()
            self._netns = None


def _no_forwarding() -> None:
    """Inside the edge namespace: route nothing between its interfaces (a
    new namespace may inherit the host's setting)."""
    with open("/proc/sys/net/ipv4/ip_forward", "w") as flag:
        flag.write("0")


async def _link(edge_netns: NetNamespace, pod_netns: NetNamespace) -> None:
    """The veth pair between the namespaces, addressed and up (iproute2,
    run in each namespace in turn)."""
    me = os.getpid()
    await _ip(
        edge_netns,
        f"link add {EDGE_LINK} type veth peer name {POD_LINK} netns /proc/{me}/fd/{pod_netns.fd}",
        f"address add {EDGE_ADDRESS}/{LINK_PREFIX} dev {EDGE_LINK}",
        f"link set {EDGE_LINK} up",
    )
    await _ip(
        pod_netns,
        f"address add {POD_ADDRESS}/{LINK_PREFIX} dev {POD_LINK}",
        f"link set {POD_LINK} up",
    )


async def _ip(netns: NetNamespace, *commands: str) -> None:
    """Run ``ip -batch`` commands inside ``netns``; raises NamespaceError."""
    proc = await asyncio.create_subprocess_exec(
        "nsenter",
        f"--net={netns.path}",
        "ip",
        "-batch",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(LINK_TIMEOUT_SECS):
            _, err = await proc.communicate("\n".join(commands).encode() + b"\n")
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise NamespaceError(0, "setting up the pod's link to the edge took too long") from None
    if proc.returncode != 0:
        detail = err.decode("utf-8", "replace").strip()
        raise NamespaceError(0, f"cannot link the pod to the edge: {detail}")
