"""Apps as MCP tools: the gateway's ``/mcp`` endpoint.

Organizations' published, ``mcp_enabled`` apps are served as MCP tools over
the Streamable HTTP transport. The parts:

* :mod:`.protocol` — JSON-RPC 2.0 messages and protocol revisions, no I/O;
* :mod:`.naming` — ``ignite_{org}_{app}`` tool names and back;
* :mod:`.origins` — the ``Origin`` allow-list;
* :mod:`.caller` — who the bearer token belongs to (``WhoAmI``);
* :mod:`.sessions` — ``Mcp-Session-Id`` sessions;
* :mod:`.tools` — apps as tools: listing, argument checks, invocation;
* :mod:`.endpoint` — the HTTP transport tying them together.

The gateway's dispatcher hands requests for :data:`MCP_PATH` to
:func:`serve_mcp`; see ``docs/mcp.md`` for the behaviour users see.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from aiohttp import web

from ignite_gateway.mcp.endpoint import MCP_PATH, McpEndpoint

if TYPE_CHECKING:
    from ignite_gateway.server import Gateway

__all__ = ["MCP_PATH", "serve_mcp"]

# One endpoint (and so one session store) per gateway, made on first use so
# that the gateway needs no MCP-specific set-up.
_ENDPOINTS: weakref.WeakKeyDictionary[Gateway, McpEndpoint] = weakref.WeakKeyDictionary()


async def serve_mcp(gateway: Gateway, request: web.Request) -> web.StreamResponse:
    """Serve a request for :data:`MCP_PATH` on behalf of ``gateway``."""
    endpoint = _ENDPOINTS.get(gateway)
    if endpoint is None:
        endpoint = _ENDPOINTS[gateway] = _endpoint_for(gateway)
    return await endpoint.handle(request)


def _endpoint_for(gateway: Gateway) -> McpEndpoint:
    # The gateway's per-request keys feed its access log; reuse them so an
    # MCP request is logged with its request id, method and app like any
    # other call.
    from ignite_gateway import metadata, server

    def request_id(request: web.Request) -> str:
        return request.get(server._REQUEST_ID) or metadata.request_id(request)

    def log_fields(request: web.Request, rpc: str, app: str | None) -> None:
        request[server._RPC] = rpc
        if app is not None:
            request[server._APP] = app

    return McpEndpoint(
        lambda: gateway.channel,
        rpc_timeout_s=gateway.config.rpc_timeout_s,
        invoke_timeout_s=gateway.config.invoke_timeout_s,
        request_id=request_id,
        log_fields=log_fields,
        draining=lambda: gateway.draining,
    )
