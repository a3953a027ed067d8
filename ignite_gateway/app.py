"""One gateway: its parts, and the aiohttp application that routes to them.

Which part answers a request is decided by routing alone, in this order:

1. a request whose ``Host`` names an app (``<app>-<org>.<apps domain>``),
   whatever its path, is relayed to the app (:mod:`ignite_gateway.app_relay`,
   a middleware, since a host is not a path);
2. the router's own routes, registered below: ``/healthz`` and ``/readyz``
   (:mod:`ignite_gateway.health`), ``/openapi.json``
   (:mod:`ignite_gateway.openapi`), ``/mcp`` (:mod:`ignite_gateway.mcp`),
   ``/console`` (:mod:`ignite_gateway.console`),
   and the OAuth token endpoint and JWKS document at their proto paths
   (:mod:`ignite_gateway.oauth`);
3. anything else, at ``/{tail}``: an API call, matched against the proto
   route table (:mod:`ignite_gateway.api_calls`), which answers 404 or 405
   itself when no route matches. A router route that does not take the
   request's method (``POST /openapi.json``) falls through to it too.

Outermost, :mod:`ignite_gateway.access_log` gives each request its id, turns
errors into the one JSON error shape and logs one line per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from aiohttp import web
from google.protobuf.descriptor import FileDescriptor

from ignite_gateway import access_log, oauth
from ignite_gateway.anonymous_access import AnonymousAccess
from ignite_gateway.api_calls import ApiCalls
from ignite_gateway.app_relay import AppRelay
from ignite_gateway.channel import UpstreamChannel
from ignite_gateway.config import MAX_JSON_BODY_BYTES, GatewayConfig
from ignite_gateway.console import ConsoleRoutes
from ignite_gateway.console.series import SeriesRing
from ignite_gateway.health import HEALTHZ_PATH, READYZ_PATH, Readiness, healthz
from ignite_gateway.mcp import MCP_PATH, McpEndpoint
from ignite_gateway.openapi import build_openapi
from ignite_gateway.request_body import BodyGate
from ignite_gateway.routes import Route, RouteTable, build_route_table

#: Where the OpenAPI document of the API is served.
OPENAPI_PATH = "/openapi.json"

#: The catch-all: every other path is the API's. [\s\S] rather than "." so
#: that a decoded path holding a newline matches too.
API_PATH = r"/{tail:[\s\S]*}"


class Gateway:
    """The routes, the upstream channel and the handlers of one gateway."""

    def __init__(
        self, config: GatewayConfig, *, files: Iterable[FileDescriptor] | None = None
    ) -> None:
        self.config = config
        self.routes: RouteTable = build_route_table(files)
        self._openapi_bytes = json.dumps(build_openapi(self.routes)).encode()
        self.upstream = UpstreamChannel(config)
        self.draining = False
        #: Shared by the API and app URLs: one set of answers, one gate.
        self.anonymous = AnonymousAccess()
        self.bodies = BodyGate(config.max_large_bodies)
        self.api = ApiCalls(
            self.routes, self.upstream, config, lambda: self.draining, self.anonymous, self.bodies
        )
        self.apps = AppRelay(self.routes, self.upstream, config, self.anonymous, self.bodies)
        self.readiness = Readiness(lambda: self.upstream.channel, lambda: self.draining)
        self.series = SeriesRing(config.server_metrics_url, scrape_secs=config.console_scrape_s)
        self.console = ConsoleRoutes(self.routes, self.upstream, self.series, config.rpc_timeout_s)
        self.mcp = McpEndpoint(
            lambda: self.upstream.channel,
            rpc_timeout_s=config.rpc_timeout_s,
            invoke_timeout_s=config.invoke_timeout_s,
            request_id=access_log.request_id,
            log_fields=access_log.note_call,
            draining=lambda: self.draining,
        )

    def drain(self) -> None:
        """Start shutting down: not ready any more, open-ended streams end
        (with a last line telling the reader to reconnect); invocations in
        flight carry on."""
        self.draining = True
        self.api.drain()

    def application(self) -> web.Application:
        """The aiohttp application serving everything."""
        # Bodies are read by read_body with per-kind limits; aiohttp's own
        # cap only has to stay out of the way.
        app = web.Application(
            middlewares=[access_log.middleware, self.apps.route_by_host],
            client_max_size=MAX_JSON_BODY_BYTES + 1,
        )
        router = app.router
        router.add_route("*", HEALTHZ_PATH, healthz)
        router.add_route("*", READYZ_PATH, self.readiness.readyz)
        router.add_get(OPENAPI_PATH, self._openapi)
        router.add_route("*", MCP_PATH, self.mcp.handle)
        self.console.add_to(router)
        for route in oauth_routes(self.routes):
            router.add_route(route.http_method, route.template.source, self.api.handler(route))
        router.add_route("*", API_PATH, self.api.serve)

        async def _open(_: web.Application) -> None:
            await self.upstream.open(route.method for route in self.routes)
            assert self.upstream.channel is not None
            self.anonymous.bind(self.upstream.channel)
            await self.series.start()

        async def _close(_: web.Application) -> None:
            await self.series.close()
            await self.upstream.close()

        app.on_startup.append(_open)
        app.on_cleanup.append(_close)
        app.on_response_prepare.append(self.apps.allow_origin)
        return app

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._openapi_bytes, content_type="application/json")


def oauth_routes(routes: RouteTable) -> list[Route]:
    """The token endpoint's and the JWKS document's routes whose paths are
    plain (no variables or wildcards), which the router can match as they
    are; any other stays with the API's catch-all, served the same way."""
    return [
        route
        for route in routes
        if (oauth.is_token_endpoint(route.method) or oauth.is_jwks_endpoint(route.method))
        and not any(route.template.specificity)
    ]
