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

The gateway makes one :class:`McpEndpoint` (and so one session store),
handing it what it needs of the gateway (the channel, deadlines, the request
id and access-log fields, whether it is draining), and routes
:data:`MCP_PATH` to :meth:`McpEndpoint.handle`; nothing here imports the
gateway's assembly. See ``docs/mcp.md`` for the behaviour users see.
"""

from __future__ import annotations

from ignite_gateway.mcp.endpoint import MCP_PATH, McpEndpoint

__all__ = ["MCP_PATH", "McpEndpoint"]
