"""The gateway's Prometheus metrics (served on its admin listener,
``--metrics-listen``, by ignite_common/admin_http.py) and how it names the
part that served a request.

``handler`` is bounded: an RPC's full name from the route table, or one of
``app_url``, ``mcp``, ``console``, the fixed routes (``/healthz``,
``/readyz``, ``/openapi.json``), or ``unmatched``; never a raw path.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

#: Methods counted by name; any other is "OTHER" (a caller picks the method).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: The part of the gateway serving a request, when not an RPC of the API.
HANDLER: web.RequestKey[str] = web.RequestKey("handler", str)

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

REQUESTS = Counter(
    "ignite_gateway_http_requests_total",
    "HTTP requests served by the gateway, by handler, method and status code.",
    ("handler", "method", "code"),
)
DURATION = Histogram(
    "ignite_gateway_http_request_duration_seconds",
    "Time to serve an HTTP request (a stream: until its end), by handler.",
    ("handler",),
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "ignite_gateway_http_requests_in_flight",
    "HTTP requests being served now.",
)

_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def handler_name(request: web.BaseRequest, rpc: str | None) -> str:
    """The bounded name of what served ``request``."""
    named = request.get(HANDLER)
    if named:
        return named
    if rpc:
        return rpc
    match = getattr(request, "match_info", None)
    route = getattr(match, "route", None)
    resource = getattr(route, "resource", None)
    canonical = getattr(resource, "canonical", "")
    if canonical and "{" not in canonical:
        return canonical
    return "unmatched"


def record_request(handler: str, method: str, code: int, duration_s: float) -> None:
    """One request served."""
    method = method if method in _METHODS else "OTHER"
    _child(REQUESTS, handler, method, str(code)).inc()
    _child(DURATION, handler).observe(duration_s)
