"""The gateway process: an aiohttp server in front of one gRPC channel.

A request is, in order of precedence:

1. for a direct app URL (``Host: <app>-<org>.<apps domain>``) — relayed to
   the app through ``Invoke`` (:mod:`ignite_gateway.app_urls`);
2. ``/healthz``, ``/readyz`` or ``/openapi.json`` — answered here; ``/mcp``
   — apps as MCP tools (:mod:`ignite_gateway.mcp`);
3. an API call — matched against the route table built from the protos,
   transcoded (:mod:`ignite_gateway.transcode`), sent as one gRPC call and
   its answer transcoded back; streams per :mod:`ignite_gateway.streaming`,
   the token endpoint per :mod:`ignite_gateway.oauth`.

Errors of every kind are turned into the one JSON error shape by the
middleware (:mod:`ignite_gateway.errors`), which also writes the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterable
from typing import Any

import grpc
import structlog
from aiohttp import web
from google.protobuf.descriptor import Descriptor, FileDescriptor, MethodDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ignite_gateway import app_urls, cors, metadata, oauth
from ignite_gateway.config import (
    MAX_GRPC_MESSAGE_BYTES,
    MAX_JSON_BODY_BYTES,
    MAX_PAYLOAD_BYTES,
    GatewayConfig,
)
from ignite_gateway.errors import (
    GatewayError,
    bad_request,
    error_body,
    error_reason,
    http_error,
)
from ignite_gateway.openapi import build_openapi
from ignite_gateway.routes import Route, RouteTable, build_route_table
from ignite_gateway.streaming import (
    is_http_frames,
    read_head,
    relay_http_frames,
    relay_json_lines,
)
from ignite_gateway.transcode import build_request, message_class, to_json_bytes

_log = structlog.get_logger("ignite_gateway")

# Per-request values the access log reports.
_REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
_RPC: web.RequestKey[str] = web.RequestKey("rpc", str)
_APP: web.RequestKey[str] = web.RequestKey("app", str)
#: Marks app-URL requests, whose responses carry CORS headers.
_CROSS_ORIGIN: web.RequestKey[bool] = web.RequestKey("cross_origin", bool)

#: Deadline of the readiness probe's health check.
_READY_TIMEOUT_S = 2.0

#: ErrorInfo reason of the server's "no such app".
_APP_NOT_FOUND = "APP_NOT_FOUND"
#: The reason of UNAUTHENTICATED for a call that needs a token and had none.
_TOKEN_REQUIRED = "TOKEN_REQUIRED"

#: Envelope type a direct app URL request becomes.
_INVOKE_REQUEST_TYPE = "dodil.ignite.v1.InvokeRequest"


class Gateway:
    """Routes, the gRPC channel and the request handlers of one gateway."""

    def __init__(
        self, config: GatewayConfig, *, files: Iterable[FileDescriptor] | None = None
    ) -> None:
        self.config = config
        self.routes: RouteTable = build_route_table(files)
        self.openapi: dict[str, Any] = build_openapi(self.routes)
        self._openapi_bytes = json.dumps(self.openapi).encode()
        self.resolver = app_urls.AppHostResolver()
        self.channel: grpc.aio.Channel | None = None
        self.draining = False
        self._stubs: dict[str, Callable[..., Any]] = {}
        # Open JSON-lines streams: a `follow` stream never ends by itself,
        # so shutting down ends these rather than wait out the grace period.
        self._line_streams: set[Any] = set()
        self._invoke = _find_app_invoke(self.routes)

    # -- lifecycle --------------------------------------------------------

    async def open(self) -> None:
        """Open the gRPC channel (needs the running event loop)."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
            # The server is usually next door: after it restarts, notice
            # within seconds rather than gRPC's default backoff of up to 2 min.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 3000),
        ]
        if self.config.grpc_tls:
            root = None
            if self.config.grpc_ca_file:
                # Once at start-up, before any request: a blocking read is fine.
                root = _read_file(self.config.grpc_ca_file)
            if self.config.grpc_server_name:
                options.append(("grpc.ssl_target_name_override", self.config.grpc_server_name))
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = grpc.aio.secure_channel(self.config.grpc_target, credentials, options)
        else:
            self.channel = grpc.aio.insecure_channel(self.config.grpc_target, options)
        for route in self.routes:
            self._stubs[route.method.full_name] = self._multicallable(route.method)

    def drain(self) -> None:
        """Start shutting down: not ready any more, open-ended streams end
        (with a last line telling the reader to reconnect); invocations in
        flight carry on."""
        self.draining = True
        for call in list(self._line_streams):
            call.cancel()

    async def close(self) -> None:
        """Close the gRPC channel; calls still running are cancelled."""
        if self.channel is not None:
            await self.channel.close(grace=1.0)
            self.channel = None

    def application(self) -> web.Application:
        """The aiohttp application serving everything."""
        # Bodies are read by _read_body with per-kind limits; aiohttp's own
        # cap only has to stay out of the way.
        app = web.Application(
            middlewares=[self._middleware], client_max_size=MAX_JSON_BODY_BYTES + 1
        )
        # Every path is ours (matching happens in dispatch); [\s\S] rather
        # than "." so that a decoded path holding a newline matches too.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.dispatch)

        async def _open(_: web.Application) -> None:
            await self.open()

        async def _close(_: web.Application) -> None:
            await self.close()

        async def _allow_origin(request: web.Request, response: web.StreamResponse) -> None:
            if request.get(_CROSS_ORIGIN):
                cors.allow_origin(request, response)

        app.on_startup.append(_open)
        app.on_cleanup.append(_close)
        app.on_response_prepare.append(_allow_origin)
        return app

    def _multicallable(self, method: MethodDescriptor) -> Callable[..., Any]:
        assert self.channel is not None
        path = f"/{method.containing_service.full_name}/{method.name}"
        output = message_class(method.output_type)
        kwargs: dict[str, Any] = {
            "request_serializer": _serialize,
            "response_deserializer": output.FromString,
        }
        if method.server_streaming:
            return self.channel.unary_stream(path, **kwargs)
        return self.channel.unary_unary(path, **kwargs)

    # -- dispatch ---------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Entry point of every request."""
        label = app_urls.app_label(request.host, self.config.apps_domain)
        if label is not None:
            if cors.is_preflight(request):
                return cors.preflight(request)
            request[_CROSS_ORIGIN] = True
            return await self._serve_app(request, label)
        path = request.rel_url.raw_path
        if path == "/healthz":
            return web.json_response({"status": "ok"})
        if path == "/readyz":
            return await self._ready()
        if path == "/openapi.json" and request.method in ("GET", "HEAD"):
            return web.Response(body=self._openapi_bytes, content_type="application/json")
        if path == "/mcp":
            # Apps as MCP tools (ignite_gateway/mcp/), imported on first use.
            from ignite_gateway.mcp import serve_mcp

            return await serve_mcp(self, request)
        return await self._serve_api(request, path)

    async def _serve_api(self, request: web.Request, path: str) -> web.StreamResponse:
        found = self.routes.match(request.method, path)
        if isinstance(found, list):
            if found:
                raise GatewayError(
                    405,
                    "UNIMPLEMENTED",
                    "METHOD_NOT_ALLOWED",
                    f"{request.method} is not allowed on {path}",
                    headers={"Allow": ", ".join(found)},
                )
            raise GatewayError(404, "NOT_FOUND", "ROUTE_NOT_FOUND", f"no API route for {path}")
        route, values = found
        request[_RPC] = route.method.full_name
        if oauth.is_token_endpoint(route.method):
            return await self._serve_token(request, route)
        body = await _read_body(request, MAX_JSON_BODY_BYTES) if route.body else b""
        message = build_request(route, values, request.rel_url.query.items(), body)
        rid = request[_REQUEST_ID]
        call_metadata = metadata.call_metadata(request, rid)
        stub = self._stubs[route.method.full_name]
        extra = {metadata.REQUEST_ID_HEADER: rid}
        if is_http_frames(route.method):
            call = stub(message, metadata=call_metadata, timeout=self.config.invoke_timeout_s)
            try:
                head = await read_head(call)
                return await relay_http_frames(request, call, head, extra_headers=extra)
            finally:
                call.cancel()
        if route.method.server_streaming:
            call = stub(message, metadata=call_metadata)
            self._line_streams.add(call)
            try:
                return await relay_json_lines(request, call, extra, lambda: self.draining)
            finally:
                self._line_streams.discard(call)
                call.cancel()
        reply = await stub(message, metadata=call_metadata, timeout=self.config.rpc_timeout_s)
        if oauth.is_jwks_endpoint(route.method):
            document, headers = oauth.jwks_response(reply)
            return web.Response(
                body=document, content_type="application/json", headers={**headers, **extra}
            )
        return web.Response(
            body=_render(route, reply), content_type="application/json", headers=extra
        )

    async def _serve_token(self, request: web.Request, route: Route) -> web.Response:
        body = await _read_body(request, MAX_JSON_BODY_BYTES)
        authorization = request.headers.get("Authorization")
        message = oauth.token_request(
            message_class(route.method.input_type), request.content_type, body, authorization
        )
        rid = request[_REQUEST_ID]
        basic = (authorization or "").lower().startswith("basic ")
        call_metadata = metadata.call_metadata(request, rid, credentials=not basic)
        stub = self._stubs[route.method.full_name]
        try:
            reply = await stub(message, metadata=call_metadata, timeout=self.config.rpc_timeout_s)
        except grpc.aio.AioRpcError as error:
            raise (oauth.token_error(error) or error) from None
        document, headers = oauth.token_response(reply)
        headers[metadata.REQUEST_ID_HEADER] = rid
        return web.Response(body=document, content_type="application/json", headers=headers)

    async def _serve_app(self, request: web.Request, label: str) -> web.StreamResponse:
        if self._invoke is None:
            raise GatewayError(501, "UNIMPLEMENTED", "NO_INVOKE_RPC", "app URLs are not served")
        request[_RPC] = self._invoke.full_name
        refs = self.resolver.order(label)
        if not refs:
            raise GatewayError(404, "NOT_FOUND", _APP_NOT_FOUND, f"no app answers at {label}")
        body = await _read_body(request, MAX_PAYLOAD_BYTES)
        rid = request[_REQUEST_ID]
        call_metadata = metadata.call_metadata(request, rid)
        envelope = _app_envelope(self._invoke.input_type, request, body, rid)
        stub = self._stubs[self._invoke.full_name]
        first_error: grpc.aio.AioRpcError | None = None
        for ref in refs:
            envelope.organization_name = ref.org  # type: ignore[attr-defined]
            envelope.app_name = ref.app  # type: ignore[attr-defined]
            call = stub(envelope, metadata=call_metadata, timeout=self.config.invoke_timeout_s)
            try:
                try:
                    head = await read_head(call)
                except grpc.aio.AioRpcError as error:
                    if not _is_no_such_app(error) and not _is_refused_anonymous(error):
                        raise
                    # No such app under this split (or, for a caller without
                    # a token, none it may invoke); nothing ran. Next one.
                    self.resolver.forget(label)
                    first_error = _more_telling(first_error, error)
                    continue
                self.resolver.remember(label, ref)
                request[_APP] = f"{ref.org}/{ref.app}"
                return await relay_http_frames(
                    request, call, head, extra_headers={metadata.REQUEST_ID_HEADER: rid}
                )
            finally:
                call.cancel()
        assert first_error is not None
        raise first_error

    async def _ready(self) -> web.Response:
        if self.draining or self.channel is None:
            return web.json_response({"status": "DRAINING"}, status=503)
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=_READY_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            return web.json_response({"status": error.code().name}, status=503)
        state = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return web.json_response({"status": state}, status=200 if state == "SERVING" else 503)

    # -- errors and the access log -----------------------------------------

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        rid = metadata.request_id(request)
        request[_REQUEST_ID] = rid
        response: web.StreamResponse | None = None
        status = 499  # until we know better: the client went away
        # Every log line of this request carries its id.
        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                response = await handler(request)
            except Exception as exc:
                mapped = http_error(exc)
                if mapped is None:
                    # A bug here, never the caller's fault; the traceback
                    # stays in our log.
                    _log.exception("http.unhandled", path=request.rel_url.raw_path)
                    mapped = 500, error_body(500, "INTERNAL", "internal error", []), {}
                response = _json(*mapped)
            finally:
                if response is not None:
                    status = response.status
                _log.info(
                    "http.request",
                    method=request.method,
                    host=request.host,
                    path=request.rel_url.raw_path,
                    status=status,
                    bytes=_body_bytes(response),
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    rpc=request.get(_RPC),
                    app=request.get(_APP),
                )
        if not response.prepared:
            response.headers.setdefault(metadata.REQUEST_ID_HEADER, rid)
        return response


def _is_no_such_app(error: grpc.aio.AioRpcError) -> bool:
    # NOT_FOUND for the app itself, not for something inside an existing app
    # (say, a version): only then is another split worth trying.
    return error.code() is grpc.StatusCode.NOT_FOUND and error_reason(error) in (
        _APP_NOT_FOUND,
        "",
    )


def _is_refused_anonymous(error: grpc.aio.AioRpcError) -> bool:
    # A caller without a token learns nothing about apps it may not invoke,
    # so a missing app and a private one both answer TOKEN_REQUIRED: another
    # split may still name a public app.
    return (
        error.code() is grpc.StatusCode.UNAUTHENTICATED and error_reason(error) == _TOKEN_REQUIRED
    )


def _more_telling(
    kept: grpc.aio.AioRpcError | None, new: grpc.aio.AioRpcError
) -> grpc.aio.AioRpcError:
    # When no split answers, TOKEN_REQUIRED (some split may exist behind a
    # token) says more than NOT_FOUND; otherwise the first error stands.
    if kept is None or (_is_refused_anonymous(new) and not _is_refused_anonymous(kept)):
        return new
    return kept


def _find_app_invoke(routes: RouteTable) -> MethodDescriptor | None:
    # The RPC that takes an HTTP envelope and answers with HTTP frames.
    for route in routes:
        method = route.method
        if is_http_frames(method) and method.input_type.full_name == _INVOKE_REQUEST_TYPE:
            return method
    return None


def _app_envelope(input_type: Descriptor, request: web.Request, body: bytes, rid: str) -> Message:
    envelope = message_class(input_type)()
    http_type = input_type.fields_by_name["http"].message_type
    assert http_type is not None
    method_enum = http_type.fields_by_name["method"].enum_type
    assert method_enum is not None
    method = method_enum.values_by_name.get(f"HTTP_METHOD_{request.method}")
    if method is None:
        names = [value.name.removeprefix("HTTP_METHOD_") for value in method_enum.values]
        allowed = ", ".join(name for name in names if name != "UNSPECIFIED")
        raise GatewayError(
            405,
            "UNIMPLEMENTED",
            "METHOD_NOT_ALLOWED",
            f"apps do not take {request.method} requests",
            headers={"Allow": allowed},
        )
    http = envelope.http  # type: ignore[attr-defined]
    http.method = method.number
    http.path = request.rel_url.raw_path
    http.query = request.rel_url.raw_query_string
    extra = {
        "x-forwarded-for": metadata.forwarded_for(request),
        "x-forwarded-host": request.host,
        "x-forwarded-proto": request.scheme,
        "x-request-id": rid,
    }
    http.headers.update(app_urls.forwarded_headers(request.headers, extra))
    envelope.body = body  # type: ignore[attr-defined]
    return envelope


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, or a 413 once it passes ``limit`` bytes."""
    too_large = GatewayError(
        413,
        "INVALID_ARGUMENT",
        "REQUEST_TOO_LARGE",
        f"the request body exceeds {limit} bytes",
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.content.iter_chunked(1 << 16):
            size += len(part)
            if size > limit:
                raise too_large
            parts.append(part)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise bad_request("INCOMPLETE_BODY", "the request body ended early") from exc
    return b"".join(parts)


def _render(route: Route, reply: Message) -> bytes:
    if route.response_body:
        field = reply.DESCRIPTOR.fields_by_name.get(route.response_body)
        if field is not None and field.message_type is not None:
            return to_json_bytes(getattr(reply, route.response_body))
    return to_json_bytes(reply)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _json(status: int, body: dict[str, Any], headers: dict[str, str]) -> web.Response:
    # The one way errors leave: compact JSON with its headers (Allow, ...).
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=headers,
    )


def _body_bytes(response: web.StreamResponse | None) -> int:
    if response is None:
        return 0
    if response.prepared:
        return int(response.body_length)
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        return len(response.body)
    return 0


async def serve(config: GatewayConfig, stop: asyncio.Event | None = None) -> None:
    """Run the gateway until ``stop`` is set (or SIGTERM/SIGINT arrives).

    On stop: /readyz turns 503, the listening socket closes, requests and
    streams in flight get ``shutdown_grace_s`` to finish, then the rest are
    cancelled and the gRPC channel is closed.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    gateway = Gateway(config)
    runner = web.AppRunner(
        gateway.application(),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.shutdown_grace_s,
        # A client that hangs up cancels its handler, which cancels its
        # gRPC call (a `follow` log stream must not outlive its reader).
        handler_cancellation=True,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    port = _bound_port(runner)
    if config.port_file:
        _write_port_file(config.port_file, port)
    _log.info(
        "gateway.listening",
        address=f"http://{config.host}:{port}",
        grpc_target=config.grpc_target,
        apps_domain=config.apps_domain,
        routes=len(gateway.routes),
    )
    try:
        await stop.wait()
    finally:
        gateway.drain()
        _log.info("gateway.stopping", grace_s=config.shutdown_grace_s)
        await runner.cleanup()
        _log.info("gateway.stopped")


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the gateway is not listening on a TCP port")


def _write_port_file(path: str, port: int) -> None:
    # Write then rename, so a reader never sees a half-written number.
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, path)
