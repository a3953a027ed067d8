"""Egress of image pods: the platform's edge, and nothing else.

An image pod has no network: its namespace holds only loopback. Apps still
call each other by their public URLs (a web front end proxies ``/api`` to
``http://backend-acme.ignite.localhost:8080``, given in its env), so those
URLs must work from inside. How:

1. the app's env values are scanned for URLs whose host is under the apps
   domain (``*.ignite.localhost``); those host names, with ``localhost``,
   go into the pod's own ``/etc/hosts``, all mapped to ``127.0.0.2``;
2. in the pod's namespace the server listens on ``127.0.0.2`` at every port
   those URLs use (80 for ``http``, 443 for ``https`` when none is given),
   and pipes each connection it accepts to the edge's address on the host.

The app cannot reach anything else: the listening sockets are the server's,
and they lead only to the edge, which routes by the Host header and
enforces each app's own access rules, as for any outside caller. Binding
``127.0.0.2`` (Linux answers every 127/8 address on loopback) leaves
``127.0.0.1`` to the app, even on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from ignite_server.containment.netns import NetNamespace

log = structlog.get_logger(__name__)

#: Where the app's edge host names lead inside its namespace.
EDGE_ALIAS = "127.0.0.2"
#: A URL's scheme, host and port, wherever it is in a value.
URL = re.compile(r"\b(https?)://([A-Za-z0-9.-]+)(?::(\d{1,5}))?", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Bytes read at once while piping.
CHUNK = 64 * 1024


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
        lines.append(f"{EDGE_ALIAS}\t{names}")
    return "\n".join(lines) + "\n"


class EdgeForwarder:
    """Listeners in one pod's namespace that lead to the edge."""

    def __init__(self, netns: NetNamespace, edge: tuple[str, int]) -> None:
        self._netns = netns
        self._edge = edge
        self._servers: list[asyncio.Server] = []
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self, ports: Iterable[int]) -> None:
        """Listen on ``EDGE_ALIAS`` at each of ``ports``."""
        for port in ports:
            sock = await self._netns.listener(EDGE_ALIAS, port)
            self._servers.append(await asyncio.start_server(self._accepted, sock=sock))

    async def _accepted(
        self, inside_r: asyncio.StreamReader, inside_w: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pipes.add(task)
        try:
            try:
                edge_r, edge_w = await asyncio.open_connection(*self._edge)
            except OSError as exc:
                log.warning("edge unreachable from a pod", edge=self._edge, error=str(exc))
                return
            try:
                await asyncio.gather(_pipe(inside_r, edge_w), _pipe(edge_r, inside_w))
            finally:
                await _close(edge_w)
        finally:
            await _close(inside_w)
            self._pipes.discard(task)

    async def close(self) -> None:
        """Stop listening and cut every open connection."""
        for server in self._servers:
            server.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side."""
    with contextlib.suppress(OSError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
