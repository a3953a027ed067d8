"""An aiohttp connector whose connections are TCP connections made inside a
pod's network namespace (netns.py): how the server sends an image pod its
requests, with no relay process and no port on the host."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.client_proto import ResponseHandler

from ignite_server.containment.netns import NetNamespace

if TYPE_CHECKING:
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace

#: Where the app listens, as seen inside its namespace.
APP_HOST = "127.0.0.1"


class NamespaceConnector(aiohttp.BaseConnector):
    """Connects every request to ``127.0.0.1:port`` inside ``netns``,
    whatever the URL's host (use ``http://pod``)."""

    def __init__(self, netns: NetNamespace, port: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._netns = netns
        self._port = port

    async def _create_connection(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 (aiohttp's signature)
    ) -> ResponseHandler:
        try:
            async with asyncio.timeout(timeout.sock_connect):
                sock = await self._netns.connect(APP_HOST, self._port)
                _, proto = await self._loop.create_connection(self._factory, sock=sock)
        except OSError as exc:
            if exc.errno is None and isinstance(exc, TimeoutError):
                raise
            raise aiohttp.ClientConnectorError(req.connection_key, exc) from exc
        return proto
