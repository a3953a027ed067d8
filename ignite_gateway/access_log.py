"""The outermost middleware: one request id, one error shape, one log line.

Every request gets its id first (the caller's ``X-Request-Id`` when sane,
else a new one), and every log line written while it is served carries it.
Whatever the handler raises becomes the one JSON error response
(:func:`ignite_gateway.errors.http_error`); an exception that maps to no
error is a bug of ours, logged with its traceback and answered 500 without
one. Last, one ``http.request`` line records the method, host, path, status,
size and duration, and the RPC and app when a handler noted them
(:func:`note_call`), and the request is counted (:mod:`ignite_gateway.telemetry`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from ignite_common import tracing
from ignite_gateway import metadata, telemetry
from ignite_gateway.errors import error_body, error_response, http_error

_log = structlog.get_logger("ignite_gateway")
_TRACER = tracing.tracer("ignite_gateway")

# Per-request values the access log reports.
_REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
_RPC: web.RequestKey[str] = web.RequestKey("rpc", str)
_APP: web.RequestKey[str] = web.RequestKey("app", str)

#: The status logged for a request whose client went away before a response.
CLIENT_CLOSED = 499


def request_id(request: web.Request) -> str:
    """The id of ``request``: the one the middleware gave it, or, outside the
    middleware, the caller's own or a new one."""
    return request.get(_REQUEST_ID) or metadata.request_id(request)


def note_call(request: web.Request, rpc: str, app: str | None = None) -> None:
    """Record the RPC (and app) serving ``request``, for its log line."""
    request[_RPC] = rpc
    if app is not None:
        request[_APP] = app


@web.middleware
async def middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Serve ``request`` with an id, errors as JSON, and an access log line."""
    started = time.perf_counter()
    telemetry.IN_FLIGHT.inc()
    rid = metadata.request_id(request)
    request[_REQUEST_ID] = rid
    response: web.StreamResponse | None = None
    status = CLIENT_CLOSED  # until we know better
    # Every log line of this request carries its id.
    with (
        structlog.contextvars.bound_contextvars(request_id=rid),
        tracing.server_span(
            _TRACER,
            f"HTTP {request.method}",
            request.headers,
            {"http.request.method": request.method, "ignite.request_id": rid},
        ) as span,
    ):
        try:
            response = await handler(request)
        except Exception as exc:
            mapped = http_error(exc)
            if mapped is None:
                # A bug here, never the caller's fault; the traceback stays
                # in our log.
                _log.exception("http.unhandled", path=request.rel_url.raw_path)
                mapped = 500, error_body(500, "INTERNAL", "internal error", []), {}
            response = error_response(*mapped)
        finally:
            if response is not None:
                status = response.status
            duration = time.perf_counter() - started
            telemetry.IN_FLIGHT.dec()
            handler_name = telemetry.handler_name(request, request.get(_RPC))
            telemetry.record_request(handler_name, request.method, status, duration)
            if span is not None:
                span.update_name(f"HTTP {request.method} {handler_name}")
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    tracing.set_error(span, str(status))
            _log.info(
                "http.request",
                method=request.method,
                host=request.host,
                path=request.rel_url.raw_path,
                status=status,
                bytes=_body_bytes(response),
                duration_ms=round(duration * 1000, 2),
                rpc=request.get(_RPC),
                app=request.get(_APP),
            )
    if not response.prepared:
        response.headers.setdefault(metadata.REQUEST_ID_HEADER, rid)
    return response


def _body_bytes(response: web.StreamResponse | None) -> int:
    if response is None:
        return 0
    if response.prepared:
        return int(response.body_length)
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        return len(response.body)
    return 0
