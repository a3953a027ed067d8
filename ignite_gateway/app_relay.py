"""Serving direct app URLs: a request for an app's host relayed to the app.

A request whose ``Host`` names an app (:func:`ignite_gateway.app_urls.app_label`)
is the app's, whatever its path: :meth:`AppRelay.route_by_host` sends it here
before any path route is considered, so an app may serve ``/healthz`` or
``/v1/...`` of its own. A CORS preflight is answered at once (it must not
start a pod, :mod:`ignite_gateway.cors`); any other request becomes one
``Invoke`` call whose envelope is the request itself, tried for each
(app, org) split of the label in the resolver's order until one names an app
(see :mod:`ignite_gateway.app_urls` for which errors move on to the next),
and the pod's response is relayed as it streams
(:func:`ignite_gateway.streaming.relay_http_frames`).

A request without a token for a label none of whose apps allows
unauthenticated calls is answered 401 ``TOKEN_REQUIRED`` before its body is
read (:mod:`ignite_gateway.anonymous_access`); a large body is read and sent
on one of the gateway's turns (:class:`ignite_gateway.request_body.BodyGate`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from ignite_gateway import access_log, app_urls, cors, metadata, telemetry
from ignite_gateway.anonymous_access import AnonymousAccess
from ignite_gateway.channel import UpstreamChannel
from ignite_gateway.config import MAX_PAYLOAD_BYTES, GatewayConfig
from ignite_gateway.errors import GatewayError, error_reason
from ignite_gateway.request_body import BodyGate, read_body, token_required
from ignite_gateway.routes import RouteTable
from ignite_gateway.streaming import is_http_frames, read_head, relay_http_frames
from ignite_gateway.transcode import message_class

#: ErrorInfo reason of the server's "no such app".
APP_NOT_FOUND = "APP_NOT_FOUND"
#: The reason of a split whose organization does not exist (told only to
#: callers who may look, such as the platform administrator).
ORGANIZATION_NOT_FOUND = "ORGANIZATION_NOT_FOUND"
#: The reason of UNAUTHENTICATED for a call that needs a token and had none.
TOKEN_REQUIRED = "TOKEN_REQUIRED"

#: Envelope type a direct app URL request becomes.
INVOKE_REQUEST_TYPE = "dodil.ignite.v1.InvokeRequest"

#: Marks app-URL requests, whose responses carry CORS headers.
_CROSS_ORIGIN: web.RequestKey[bool] = web.RequestKey("cross_origin", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AppRelay:
    """Direct app URLs of one gateway, and which split of a host is which app."""

    def __init__(
        self,
        routes: RouteTable,
        upstream: UpstreamChannel,
        config: GatewayConfig,
        anonymous: AnonymousAccess | None = None,
        bodies: BodyGate | None = None,
    ) -> None:
        self._upstream = upstream
        self._anonymous = anonymous or AnonymousAccess()
        self._bodies = bodies or BodyGate(config.max_large_bodies)
        self._apps_domain = config.apps_domain
        self._invoke_timeout_s = config.invoke_timeout_s
        self.resolver = app_urls.AppHostResolver()
        self._invoke = find_app_invoke(routes)

    @web.middleware
    async def route_by_host(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Middleware: a request for an app's host is the app's; any other
        goes on to the route its path matched."""
        label = app_urls.app_label(request.host, self._apps_domain)
        if label is None:
            return await handler(request)
        if cors.is_preflight(request):
            return cors.preflight(request)
        request[_CROSS_ORIGIN] = True
        return await self.serve(request, label)

    async def allow_origin(self, request: web.Request, response: web.StreamResponse) -> None:
        """``on_response_prepare`` hook: let the caller's origin read an app's
        response (preflights have their own answer)."""
        if request.get(_CROSS_ORIGIN):
            cors.allow_origin(request, response)

    async def serve(self, request: web.Request, label: str) -> web.StreamResponse:
        """Relay ``request`` to the app named by ``label``."""
        if self._invoke is None:
            raise GatewayError(501, "UNIMPLEMENTED", "NO_INVOKE_RPC", "app URLs are not served")
        access_log.note_call(request, self._invoke.full_name)
        request[telemetry.HANDLER] = "app_url"
        refs = self.resolver.order(label)
        if not refs:
            raise GatewayError(404, "NOT_FOUND", APP_NOT_FOUND, f"no app answers at {label}")
        if "Authorization" not in request.headers:
            answers = [await self._anonymous.may_invoke(ref.org, ref.app) for ref in refs]
            if all(answer is False for answer in answers):
                raise token_required()
        rid = access_log.request_id(request)
        call_metadata = metadata.call_metadata(request, rid, via="app_url")
        stub = self._upstream.stub(self._invoke)
        first_error: grpc.aio.AioRpcError | None = None
        async with self._bodies.turn(request) as large:
            body = await read_body(request, MAX_PAYLOAD_BYTES)
            envelope = _app_envelope(self._invoke.input_type, request, body, rid)
            del body
            first = self._call(stub, envelope, refs[0], call_metadata)
            if large:
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await first.wait_for_connection()
        for n, ref in enumerate(refs):
            call = first if n == 0 else self._call(stub, envelope, ref, call_metadata)
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
                access_log.note_call(request, self._invoke.full_name, f"{ref.org}/{ref.app}")
                return await relay_http_frames(
                    request, call, head, extra_headers={metadata.REQUEST_ID_HEADER: rid}
                )
            finally:
                call.cancel()
        assert first_error is not None
        raise first_error

    def _call(
        self, stub: Callable[..., Any], envelope: Message, ref: app_urls.AppRef, metadata: Any
    ) -> Any:
        """Start the Invoke of ``ref`` with ``envelope``."""
        envelope.organization_name = ref.org  # type: ignore[attr-defined]
        envelope.app_name = ref.app  # type: ignore[attr-defined]
        envelope.tag = ref.tag  # type: ignore[attr-defined]
        return stub(envelope, metadata=metadata, timeout=self._invoke_timeout_s)


def find_app_invoke(routes: RouteTable) -> MethodDescriptor | None:
    """The RPC that takes an HTTP envelope and answers with HTTP frames."""
    for route in routes:
        method = route.method
        if is_http_frames(method) and method.input_type.full_name == INVOKE_REQUEST_TYPE:
            return method
    return None


def _is_no_such_app(error: grpc.aio.AioRpcError) -> bool:
    # NOT_FOUND for the app itself (or its organization), not for something
    # inside an existing app (say, a version): only then is another split
    # worth trying.
    return error.code() is grpc.StatusCode.NOT_FOUND and error_reason(error) in (
        APP_NOT_FOUND,
        ORGANIZATION_NOT_FOUND,
        "",
    )


def _is_refused_anonymous(error: grpc.aio.AioRpcError) -> bool:
    # A caller without a token learns nothing about apps it may not invoke,
    # so a missing app and a private one both answer TOKEN_REQUIRED: another
    # split may still name a public app.
    return error.code() is grpc.StatusCode.UNAUTHENTICATED and error_reason(error) == TOKEN_REQUIRED


def _more_telling(
    kept: grpc.aio.AioRpcError | None, new: grpc.aio.AioRpcError
) -> grpc.aio.AioRpcError:
    # When no split answers, TOKEN_REQUIRED (some split may exist behind a
    # token) says more than NOT_FOUND; otherwise the first error stands.
    if kept is None or (_is_refused_anonymous(new) and not _is_refused_anonymous(kept)):
        return new
    return kept


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
