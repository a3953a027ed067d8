"""``/mcp``: the MCP Streamable HTTP transport on the gateway.

One endpoint, three HTTP methods:

* ``POST`` carries one JSON-RPC message. A request is answered in the
  response body: ``application/json``, or for ``tools/call`` an SSE stream
  (``text/event-stream``) when the client accepts one, so that a call held
  through a cold start keeps the connection visibly alive (comment lines
  every :data:`KEEPALIVE_S`) until its one ``message`` event. A notification
  or a response is acknowledged with ``202 Accepted`` and no body.
* ``GET`` opens the session's stream of server-initiated messages. The only
  one we send is ``notifications/tools/list_changed``: the server does not
  announce app changes, so the stream re-reads the caller's tool list every
  :data:`LIST_POLL_S` seconds and notifies when it differs from the last
  reading (a comment line on the other ticks keeps the connection alive and
  notices a client that left). The stream ends with the session, or when
  the token stops being accepted.
* ``DELETE`` ends the session named by ``Mcp-Session-Id``.

Every request, in order: ``Origin`` against the allow-list (403,
:mod:`.origins`); the bearer token, by asking the server ``WhoAmI`` with it
(401 with ``WWW-Authenticate`` when it is missing or refused);
``MCP-Protocol-Version``, when sent, must be one we speak (400). Then
``initialize`` opens a session (``Mcp-Session-Id`` in its response) and
every other message must name a live session of the same token subject
(400 without one, 404 for an unknown or foreign one, as the spec says).

Errors of the transport are JSON-RPC error objects with ``"id": null`` at an
HTTP error status; errors of a method are JSON-RPC errors at 200.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import grpc
import structlog
from aiohttp import web

from ignite_common.task_supervisor import cancel_and_wait
from ignite_gateway import metadata as call_metadata
from ignite_gateway import telemetry
from ignite_gateway.config import MAX_PAYLOAD_BYTES
from ignite_gateway.errors import GatewayError, http_status
from ignite_gateway.mcp import protocol
from ignite_gateway.mcp.caller import Caller, who_am_i
from ignite_gateway.mcp.naming import app_for_tool
from ignite_gateway.mcp.origins import OriginPolicy
from ignite_gateway.mcp.protocol import Message, ProtocolError
from ignite_gateway.mcp.sessions import SessionStore
from ignite_gateway.mcp.tools import ToolCatalog, tools_fingerprint

_log = structlog.get_logger("ignite_gateway.mcp")

#: Where the endpoint answers.
MCP_PATH = "/mcp"

#: Header naming the session (case-insensitive on the wire).
SESSION_HEADER = "Mcp-Session-Id"

#: Header naming the protocol revision of a request after initialize.
VERSION_HEADER = "MCP-Protocol-Version"

#: Seconds between SSE comment lines while a tool call runs: below the
#: 30-60 s idle timeouts common in proxies, so a long cold start or a slow
#: handler does not get its connection cut.
KEEPALIVE_S = 15.0

#: Seconds between two readings of the tool list on an open GET stream: how
#: late a client may learn that its tools changed, traded against one
#: ListApps call per open stream and tick.
LIST_POLL_S = 5.0

#: Largest POST body: an app's largest payload plus room for the JSON-RPC
#: envelope around the arguments.
MAX_BODY_BYTES = MAX_PAYLOAD_BYTES + 1024 * 1024

#: Query parameter naming the organization for tokens that belong to none.
ORGANIZATION_PARAM = "organization"


def _server_version() -> str:
    try:
        return importlib.metadata.version("ignite")
    except importlib.metadata.PackageNotFoundError:
        return "0"


class TransportError(Exception):
    """A request refused at the HTTP level (status, message, extra headers)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class McpEndpoint:
    """The ``/mcp`` handler of one gateway, with its sessions."""

    def __init__(
        self,
        channel: Callable[[], grpc.aio.Channel | None],
        *,
        rpc_timeout_s: float,
        invoke_timeout_s: float,
        request_id: Callable[[web.Request], str],
        log_fields: Callable[[web.Request, str, str | None], None],
        draining: Callable[[], bool] = lambda: False,
        origins: OriginPolicy | None = None,
    ) -> None:
        self._channel = channel
        self._rpc_timeout_s = rpc_timeout_s
        self._invoke_timeout_s = invoke_timeout_s
        self._request_id = request_id
        self._log_fields = log_fields
        self._draining = draining
        self.origins = origins or OriginPolicy.from_env()
        self.sessions = SessionStore()
        self._server_info = {"name": "ignite", "version": _server_version()}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one HTTP request to ``/mcp``."""
        request[telemetry.HANDLER] = "mcp"
        try:
            return await self._handle(request)
        except TransportError as refused:
            return _transport_error(refused)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self.origins.allows(request.headers.get("Origin")):
            raise TransportError(403, "this Origin may not use the MCP endpoint")
        if request.method not in ("POST", "GET", "DELETE"):
            raise TransportError(
                405,
                f"{request.method} is not served at {MCP_PATH}",
                {"Allow": "POST, GET, DELETE"},
            )
        channel = self._channel()
        if channel is None:
            raise TransportError(503, "the gateway is not connected to the Ignite server")
        try:
            grpc_metadata = call_metadata.call_metadata(
                request, self._request_id(request), via="mcp"
            )
        except GatewayError as bad:
            raise TransportError(bad.http_code, bad.message) from None
        caller = await self._authenticate(request, channel, grpc_metadata)
        version = request.headers.get(VERSION_HEADER)
        if version is not None and version not in protocol.SUPPORTED_VERSIONS:
            raise TransportError(
                400,
                f"unsupported {VERSION_HEADER} {version!r}; this server speaks "
                + ", ".join(protocol.SUPPORTED_VERSIONS),
            )
        if request.method == "DELETE":
            session_id = _session_id(request)
            if not self.sessions.end(session_id, caller.subject):
                raise TransportError(404, "no such session")
            return web.Response(status=204)
        if request.method == "GET":
            return await self._stream(request, channel, grpc_metadata, caller)
        return await self._post(request, channel, grpc_metadata, caller)

    async def _authenticate(
        self, request: web.Request, channel: grpc.aio.Channel, grpc_metadata: Sequence[Any]
    ) -> Caller:
        try:
            return await who_am_i(channel, grpc_metadata, self._rpc_timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                raise _unauthenticated(request, error.details() or "") from None
            raise TransportError(http_status(error.code()), _rpc_text(error)) from None

    async def _post(
        self,
        request: web.Request,
        channel: grpc.aio.Channel,
        grpc_metadata: Sequence[Any],
        caller: Caller,
    ) -> web.StreamResponse:
        accepts_json, accepts_sse = _accepted(request.headers.get("Accept", ""))
        if not accepts_json:
            raise TransportError(406, "the client must accept application/json")
        if request.content_type != "application/json":
            raise TransportError(415, "the body must be application/json")
        body = await _read_body(request)
        try:
            message = protocol.parse_message(body)
        except ProtocolError as bad:
            return _json(400, bad.response())
        self._log_fields(request, f"mcp {message.method or message.kind}", None)
        if message.kind == "request" and message.method == "initialize":
            return self._initialize(message, caller)
        session_id = _session_id(request)
        if self.sessions.get(session_id, caller.subject) is None:
            raise TransportError(404, "no such session; send initialize to start one")
        if message.kind != "request":
            # notifications/initialized, notifications/cancelled, responses:
            # nothing of ours depends on them.
            return web.Response(status=202)
        organization = _organization(request, caller)
        if message.method == "tools/call":
            name = message.params.get("name")
            if isinstance(name, str) and organization:
                app = app_for_tool(organization, name)
                if app is not None:
                    self._log_fields(request, "mcp tools/call", f"{organization}/{app}")

        async def answer() -> dict[str, Any]:
            return await self._answer(message, channel, grpc_metadata, organization)

        if message.method == "tools/call" and accepts_sse:
            return await _sse_answer(request, answer, message.request_id)
        try:
            return _json(200, await answer())
        except grpc.aio.AioRpcError as error:
            # The token was refused between WhoAmI and this call (it expired).
            raise _unauthenticated(request, error.details() or "") from None

    async def _stream(
        self,
        request: web.Request,
        channel: grpc.aio.Channel,
        grpc_metadata: Sequence[Any],
        caller: Caller,
    ) -> web.StreamResponse:
        """The GET stream: ``notifications/tools/list_changed`` when the
        caller's tools change, until the session ends or the client leaves."""
        if not _accepted(request.headers.get("Accept", ""))[1]:
            raise TransportError(406, "the stream is text/event-stream; the client must accept it")
        session_id = _session_id(request)
        if self.sessions.get(session_id, caller.subject) is None:
            raise TransportError(404, "no such session; send initialize to start one")
        organization = _organization(request, caller)
        self._log_fields(request, "mcp stream", None)
        catalog = ToolCatalog(
            channel, rpc_timeout_s=self._rpc_timeout_s, invoke_timeout_s=self._invoke_timeout_s
        )
        # The first reading is taken before the stream opens: a change made
        # after the client sees the response headers is always noticed.
        try:
            last = await _list_reading(catalog, organization, grpc_metadata)
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                raise _unauthenticated(request, error.details() or "") from None
            raise TransportError(http_status(error.code()), _rpc_text(error)) from None
        response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
        await response.prepare(request)
        await response.write(b": listening for tool changes\n\n")
        while self._streaming(session_id, caller):
            await self._pause()
            await response.write(b": tick\n\n")
            try:
                current = await _list_reading(catalog, organization, grpc_metadata)
            except grpc.aio.AioRpcError:
                break  # the token expired or lost its role: stop here
            if current is None:
                continue  # the server is briefly away: try again on the next tick
            if last is not None and current != last:
                await response.write(protocol.sse_event(_LIST_CHANGED))
            last = current
        await response.write_eof()
        return response

    def _streaming(self, session_id: str, caller: Caller) -> bool:
        # A stream ends with its session, and when the gateway shuts down
        # (its client reconnects, to another replica if need be).
        if self._draining():
            return False
        return self.sessions.get(session_id, caller.subject) is not None

    async def _pause(self) -> None:
        # LIST_POLL_S in short steps, so a shutdown is noticed at once.
        waited = 0.0
        while waited < LIST_POLL_S and not self._draining():
            await asyncio.sleep(_DRAIN_CHECK_S)
            waited += _DRAIN_CHECK_S

    def _initialize(self, message: Message, caller: Caller) -> web.Response:
        version = protocol.negotiate_version(message.params.get("protocolVersion"))
        session = self.sessions.create(version, caller.subject)
        result = {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": True}},
            "serverInfo": self._server_info,
            "instructions": (
                "Each tool runs an Ignite app of your organization: the arguments are the "
                "app's JSON payload and the result is what the app returned."
            ),
        }
        _log.info("mcp.session.opened", protocol_version=version, subject=caller.subject)
        return _json(
            200,
            protocol.result_response(message.request_id, result),
            {SESSION_HEADER: session.session_id},
        )

    async def _answer(
        self,
        message: Message,
        channel: grpc.aio.Channel,
        grpc_metadata: Sequence[Any],
        organization: str,
    ) -> dict[str, Any]:
        """The JSON-RPC response to a request; UNAUTHENTICATED propagates."""
        catalog = ToolCatalog(
            channel, rpc_timeout_s=self._rpc_timeout_s, invoke_timeout_s=self._invoke_timeout_s
        )
        try:
            if message.method == "ping":
                result: dict[str, Any] = {}
            elif message.method == "tools/list":
                tools = (
                    await catalog.list_tools(organization, grpc_metadata) if organization else []
                )
                result = {"tools": tools}
            elif message.method == "tools/call":
                if not organization:
                    raise ProtocolError(
                        protocol.INVALID_PARAMS,
                        f"name the organization with ?{ORGANIZATION_PARAM}=<org> on the URL",
                    )
                result = await catalog.call_tool(organization, message.params, grpc_metadata)
            else:
                raise ProtocolError(protocol.METHOD_NOT_FOUND, f"unknown method {message.method}")
        except ProtocolError as failed:
            return protocol.error_response(
                message.request_id, failed.code, failed.message, failed.data
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                raise
            return protocol.error_response(
                message.request_id, protocol.INTERNAL_ERROR, _rpc_text(error)
            )
        return protocol.result_response(message.request_id, result)


async def _list_reading(
    catalog: ToolCatalog, organization: str, grpc_metadata: Sequence[Any]
) -> str | None:
    """A fingerprint of the caller's tool list; None when the server could
    not be asked this time. A refused token raises AioRpcError."""
    if not organization:
        return tools_fingerprint([])
    try:
        return tools_fingerprint(await catalog.list_tools(organization, grpc_metadata))
    except grpc.aio.AioRpcError as error:
        if error.code() in _TOKEN_REFUSED:
            raise
        return None


async def _sse_answer(
    request: web.Request,
    answer: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
    request_id: protocol.RequestId | None,
) -> web.StreamResponse:
    """Answer one request as an SSE stream: comments until the one event."""
    response = web.StreamResponse(status=200, headers=_SSE_HEADERS)
    await response.prepare(request)
    task = asyncio.create_task(answer())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=KEEPALIVE_S)
            if done:
                break
            await response.write(b": keepalive\n\n")
        try:
            document = task.result()
        except grpc.aio.AioRpcError as error:
            # Past the headers a 401 cannot be sent; say it in the message.
            document = protocol.error_response(
                request_id, protocol.INTERNAL_ERROR, _rpc_text(error)
            )
        await response.write(protocol.sse_event(document))
        await response.write_eof()
    finally:
        # The client hung up (the handler is cancelled): stop the call too.
        await cancel_and_wait(task)
    return response


_SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    # Proxies such as nginx would otherwise buffer the stream.
    "X-Accel-Buffering": "no",
}

# How often a stream checks whether the gateway is shutting down.
_DRAIN_CHECK_S = 0.25

_LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}

# Codes after which re-reading the tool list with the same token is pointless.
_TOKEN_REFUSED = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def _accepted(accept: str) -> tuple[bool, bool]:
    """Whether an Accept header admits JSON, and SSE, answers."""
    kinds = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    anything = "*/*" in kinds
    json_ok = anything or "application/json" in kinds or "application/*" in kinds
    sse_ok = anything or "text/event-stream" in kinds or "text/*" in kinds
    # No Accept at all means anything; JSON is then the plain choice.
    if not accept.strip():
        return True, False
    return json_ok, sse_ok


def _session_id(request: web.Request) -> str:
    session_id = request.headers.get(SESSION_HEADER)
    if not session_id:
        raise TransportError(400, f"missing {SESSION_HEADER}; send initialize first")
    return session_id


def _organization(request: web.Request, caller: Caller) -> str:
    named = request.rel_url.query.get(ORGANIZATION_PARAM, "")
    if caller.organization:
        if named and named != caller.organization:
            raise TransportError(
                403, f"this token belongs to organization {caller.organization}, not {named}"
            )
        return caller.organization
    return named


def _unauthenticated(request: web.Request, detail: str) -> TransportError:
    # RFC 6750 §3: a request without credentials gets the bare challenge; one
    # whose token was refused also gets error="invalid_token".
    challenge = 'Bearer realm="ignite"'
    if request.headers.get("Authorization"):
        challenge += ', error="invalid_token"'
    return TransportError(
        401,
        detail or "this call needs 'Authorization: Bearer <token>'",
        {"WWW-Authenticate": challenge},
    )


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise TransportError(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
    parts: list[bytes] = []
    size = 0
    async for part in request.content.iter_chunked(1 << 16):
        size += len(part)
        if size > MAX_BODY_BYTES:
            raise TransportError(413, f"the body exceeds {MAX_BODY_BYTES} bytes")
        parts.append(part)
    return b"".join(parts)


def _rpc_text(error: grpc.aio.AioRpcError) -> str:
    return f"{error.code().name}: {error.details() or ''}"


def _json(
    status: int, document: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=protocol.encode(document),
        content_type="application/json",
        headers=headers,
    )


def _transport_error(refused: TransportError) -> web.Response:
    # The JSON-RPC shape (id null) MCP clients look for in an error body.
    document = protocol.error_response(None, protocol.INVALID_REQUEST, refused.message)
    return _json(refused.status, document, refused.headers)
