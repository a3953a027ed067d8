"""API calls: an HTTP request on a proto route becomes one gRPC call.

The request is matched against the route table built from the protos'
``google.api.http`` rules (:mod:`ignite_gateway.routes`); no route for the
path is a 404 ``ROUTE_NOT_FOUND``, a route for other methods a 405 with
``Allow``. The matched request is transcoded (:mod:`ignite_gateway.transcode`)
and sent; how its answer comes back depends on the RPC's response type,
decided once per RPC when the gateway starts:

* the OAuth token endpoint and the JWKS document, in the shapes OAuth and
  JWT libraries read (:mod:`ignite_gateway.oauth`);
* an HTTP response carried as frames, relayed as it streams, and any other
  server stream as JSON lines (:mod:`ignite_gateway.streaming`);
* everything else: one unary call, its answer as proto3 JSON.

A request without a token is refused (401 ``TOKEN_REQUIRED``) before its
body is read unless the server admits tokenless calls of its kind
(:mod:`ignite_gateway.anonymous_access`); a large body is read, transcoded
and sent on one of the gateway's turns (:class:`ignite_gateway.request_body.BodyGate`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from ignite_gateway import access_log, metadata, oauth
from ignite_gateway.anonymous_access import AnonymousAccess
from ignite_gateway.channel import UpstreamChannel
from ignite_gateway.config import MAX_JSON_BODY_BYTES, GatewayConfig
from ignite_gateway.errors import GatewayError
from ignite_gateway.request_body import BodyGate, read_body, token_required
from ignite_gateway.routes import Route, RouteTable
from ignite_gateway.streaming import (
    is_http_frames,
    read_head,
    relay_http_frames,
    relay_json_lines,
)
from ignite_gateway.transcode import build_request, message_class, to_json_bytes

#: The largest body of a token request: a form or JSON with a client id and
#: secret. Anyone may call the token endpoint, so it reads no more.
MAX_TOKEN_BODY_BYTES = 64 * 1024

#: A route's path variables, by field path, as :meth:`RouteTable.match` gives them.
PathValues = dict[tuple[str, ...], str]

#: How one RPC's requests are served, once its route matched.
Serve = Callable[[web.Request, Route, PathValues], Awaitable[web.StreamResponse]]


class ApiCalls:
    """Serves the proto routes of one gateway over its upstream channel."""

    def __init__(
        self,
        routes: RouteTable,
        upstream: UpstreamChannel,
        config: GatewayConfig,
        draining: Callable[[], bool],
        anonymous: AnonymousAccess | None = None,
        bodies: BodyGate | None = None,
    ) -> None:
        self.routes = routes
        self._upstream = upstream
        self._anonymous = anonymous or AnonymousAccess()
        self._bodies = bodies or BodyGate(config.max_large_bodies)
        self._rpc_timeout_s = config.rpc_timeout_s
        self._invoke_timeout_s = config.invoke_timeout_s
        self._draining = draining
        # Open JSON-lines streams: a `follow` stream never ends by itself,
        # so shutting down ends these rather than wait out the grace period.
        self._line_streams: set[Any] = set()
        self._serve: dict[str, Serve] = {
            route.method.full_name: self._serve_path(route.method) for route in routes
        }

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """Serve ``request`` by the route its method and raw path match."""
        path = request.rel_url.raw_path
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
        return await self._call(request, route, values)

    def handler(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """A handler serving ``route`` alone, for a router that matched its
        path already (a template without variables)."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._call(request, route, {})

        return handle

    def drain(self) -> None:
        """End the open JSON-lines streams (each with a last line telling the
        reader to reconnect); other calls in flight carry on."""
        for call in list(self._line_streams):
            call.cancel()

    async def _call(
        self, request: web.Request, route: Route, values: PathValues
    ) -> web.StreamResponse:
        access_log.note_call(request, route.method.full_name)
        return await self._serve[route.method.full_name](request, route, values)

    def _serve_path(self, method: MethodDescriptor) -> Serve:
        # By the response type, never the name: adding an RPC of a known
        # shape needs no gateway code.
        if oauth.is_token_endpoint(method):
            return self._token
        if oauth.is_jwks_endpoint(method):
            return self._jwks
        if is_http_frames(method):
            return self._http_frames
        if method.server_streaming:
            return self._json_lines
        return self._unary

    # -- the serve paths ---------------------------------------------------

    async def _unary(
        self, request: web.Request, route: Route, values: PathValues
    ) -> web.StreamResponse:
        reply, extra = await self._unary_reply(request, route, values)
        return web.Response(
            body=_render(route, reply), content_type="application/json", headers=extra
        )

    async def _jwks(
        self, request: web.Request, route: Route, values: PathValues
    ) -> web.StreamResponse:
        reply, extra = await self._unary_reply(request, route, values)
        document, headers = oauth.jwks_response(reply)
        return web.Response(
            body=document, content_type="application/json", headers={**headers, **extra}
        )

    async def _http_frames(
        self, request: web.Request, route: Route, values: PathValues
    ) -> web.StreamResponse:
        call, rid = await self._start(request, route, values, deadline_s=self._invoke_timeout_s)
        try:
            head = await read_head(call)
            return await relay_http_frames(
                request, call, head, extra_headers={metadata.REQUEST_ID_HEADER: rid}
            )
        finally:
            call.cancel()

    async def _json_lines(
        self, request: web.Request, route: Route, values: PathValues
    ) -> web.StreamResponse:
        # No deadline: a `follow` stream lasts as long as its reader.
        call, rid = await self._start(request, route, values, deadline_s=None)
        self._line_streams.add(call)
        try:
            return await relay_json_lines(
                request, call, {metadata.REQUEST_ID_HEADER: rid}, self._draining
            )
        finally:
            self._line_streams.discard(call)
            call.cancel()

    async def _token(
        self, request: web.Request, route: Route, values: PathValues
    ) -> web.StreamResponse:
        body = await read_body(request, MAX_TOKEN_BODY_BYTES)
        authorization = request.headers.get("Authorization")
        message = oauth.token_request(
            message_class(route.method.input_type), request.content_type, body, authorization
        )
        rid = access_log.request_id(request)
        # HTTP Basic credentials are the client's, consumed here: never sent
        # on as the call's credential.
        basic = (authorization or "").lower().startswith("basic ")
        call_metadata = metadata.call_metadata(request, rid, credentials=not basic)
        stub = self._upstream.stub(route.method)
        try:
            reply = await stub(message, metadata=call_metadata, timeout=self._rpc_timeout_s)
        except grpc.aio.AioRpcError as error:
            raise (oauth.token_error(error) or error) from None
        document, headers = oauth.token_response(reply)
        headers[metadata.REQUEST_ID_HEADER] = rid
        return web.Response(body=document, content_type="application/json", headers=headers)

    async def _unary_reply(
        self, request: web.Request, route: Route, values: PathValues
    ) -> tuple[Message, dict[str, str]]:
        call, rid = await self._start(request, route, values, deadline_s=self._rpc_timeout_s)
        return await call, {metadata.REQUEST_ID_HEADER: rid}

    async def _start(
        self, request: web.Request, route: Route, values: PathValues, *, deadline_s: float | None
    ) -> tuple[Any, str]:
        """Transcode the request and start its call: the call and the request id."""
        await self._check_token(request, route, values)
        rid = access_log.request_id(request)
        call_metadata = metadata.call_metadata(request, rid)
        stub = self._upstream.stub(route.method)
        async with self._bodies.turn(request) as large:
            body = await read_body(request, MAX_JSON_BODY_BYTES) if route.body else b""
            message = build_request(route, values, request.rel_url.query.items(), body)
            del body
            call = stub(message, metadata=call_metadata, timeout=deadline_s)
            del message
            if large:
                # The turn lasts until the message is on its way: only then
                # is the memory it holds given back. A failed call raises
                # its error where the caller reads the answer.
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await call.wait_for_connection()
        return call, rid

    async def _check_token(self, request: web.Request, route: Route, values: PathValues) -> None:
        """401 before the body is read when a tokenless request would be
        refused anyway: any call of a server that needs tokens, but the
        Invoke of an app that allows unauthenticated calls. The token
        endpoint and the key set are everyone's."""
        if "Authorization" in request.headers:
            return
        if oauth.is_token_endpoint(route.method) or oauth.is_jwks_endpoint(route.method):
            return
        if is_http_frames(route.method):
            allowed = await self._anonymous.may_invoke(
                values.get(("organization_name",), ""), values.get(("app_name",), "")
            )
        else:
            allowed = await self._anonymous.may_call()
        if allowed is False:
            raise token_required()


def _render(route: Route, reply: Message) -> bytes:
    if route.response_body:
        field = reply.DESCRIPTOR.fields_by_name.get(route.response_body)
        if field is not None and field.message_type is not None:
            return to_json_bytes(getattr(reply, route.response_body))
    return to_json_bytes(reply)
