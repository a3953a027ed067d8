"""The console's routes on the gateway.

- ``/console`` and ``/console/...``: the built single-page app
  (``static/``, built from console/ by ``tools/console.sh build`` and committed), same origin as the
  API it calls, no CDN. The page holds the caller's token in memory only
  (never localStorage or a cookie); it signs in with client credentials at
  the OAuth token endpoint and calls the public API with
  ``Authorization: Bearer``.
- ``/console/api/series?organization=ORG&app=APP``: the app's chart data
  over the last hour (:mod:`ignite_gateway.console.series`). Who may read it
  is the server's decision: the gateway first makes a GetApp call with the
  caller's credential, so an anonymous caller gets 401 and a caller of
  another organization what GetApp answers it (403/404).
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from google.protobuf.descriptor import MethodDescriptor

from ignite_gateway import access_log, metadata, telemetry
from ignite_gateway.channel import UpstreamChannel
from ignite_gateway.console.series import SeriesRing
from ignite_gateway.errors import GatewayError
from ignite_gateway.routes import RouteTable

CONSOLE_PATH = "/console"
STATIC_DIR = Path(__file__).resolve().parent / "static"
_GET_APP = "dodil.ignite.v1.ComputeService.GetApp"

#: The page loads only what the gateway serves; nothing inline but styles.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class ConsoleRoutes:
    """Static files and the series API of one gateway."""

    def __init__(
        self,
        routes: RouteTable,
        upstream: UpstreamChannel,
        series: SeriesRing,
        rpc_timeout_s: float,
    ) -> None:
        self._upstream = upstream
        self.series = series
        self._rpc_timeout_s = rpc_timeout_s
        self._get_app: MethodDescriptor | None = next(
            (r.method for r in routes if r.method.full_name == _GET_APP), None
        )

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get(CONSOLE_PATH, self._redirect)
        router.add_get(f"{CONSOLE_PATH}/api/series", self.series_api)
        router.add_get(CONSOLE_PATH + r"/{file:[\w./-]*}", self.static)

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"{CONSOLE_PATH}/")

    async def static(self, request: web.Request) -> web.StreamResponse:
        request[telemetry.HANDLER] = "console"
        name = request.match_info["file"] or "index.html"
        path = (STATIC_DIR / name).resolve()
        if not path.is_relative_to(STATIC_DIR) or not path.is_file():
            # Unknown paths are the app's own routes: the page decides.
            path = STATIC_DIR / "index.html"
        if not path.is_file():
            raise GatewayError(
                404,
                "NOT_FOUND",
                "CONSOLE_NOT_BUILT",
                "the console is not built (tools/console.sh build)",
            )
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        hashed = "/assets/" in str(path)
        headers = {
            **_SECURITY_HEADERS,
            "Cache-Control": "public, max-age=31536000, immutable" if hashed else "no-cache",
        }
        return web.Response(body=path.read_bytes(), content_type=content_type, headers=headers)

    async def series_api(self, request: web.Request) -> web.StreamResponse:
        request[telemetry.HANDLER] = "console"
        organization = request.query.get("organization", "")
        app = request.query.get("app", "")
        if not organization or not app:
            raise GatewayError(
                400, "INVALID_ARGUMENT", "MISSING_PARAMETER", "give organization and app"
            )
        if "Authorization" not in request.headers:
            raise GatewayError(
                401, "UNAUTHENTICATED", "TOKEN_REQUIRED", "sign in: this needs a bearer token"
            )
        if self._get_app is None:
            raise GatewayError(501, "UNIMPLEMENTED", "NO_GET_APP_RPC", "charts are not served")
        # The server decides who may see the app (and that it exists).
        rid = access_log.request_id(request)
        call = self._upstream.stub(self._get_app)
        reply = await call(
            compute.GetAppRequest(organization_name=organization, app_name=app),
            metadata=metadata.call_metadata(request, rid),
            timeout=self._rpc_timeout_s,
        )
        app_id = reply.app.id or f"{organization}/{app}"
        return web.json_response(
            {
                "app": app_id,
                "scrapeSeconds": self.series.scrape_secs,
                "available": bool(self.series.metrics_url),
                "error": self.series.last_error,
                "points": self.series.series(app_id),
            },
            headers={"Cache-Control": "no-store", metadata.REQUEST_ID_HEADER: rid},
        )
