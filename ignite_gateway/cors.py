"""CORS for direct app URLs, so browser pages on other origins can call apps.

The gateway answers preflights (``OPTIONS`` with ``Origin`` and
``Access-Control-Request-Method``) itself: a preflight must not start a pod,
and its answer reveals nothing (it is the same for every app, public or not,
existing or not; the real request still needs a token unless the app
allows unauthenticated calls). Real responses to a cross-origin request
carry ``Access-Control-Allow-Origin`` for that origin.

Credentials (cookies) are never allowed: Ignite authenticates with a Bearer
token in the ``Authorization`` header, which preflights allow.
"""

from __future__ import annotations

from aiohttp import web

#: Methods and request headers a cross-origin page may use on an app URL.
ALLOWED_METHODS = "GET, POST, PUT, PATCH, DELETE, HEAD"
ALLOWED_HEADERS = "authorization, content-type, x-request-id"
#: How long a browser may cache a preflight answer (seconds).
MAX_AGE_SECS = 600


def is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def preflight(request: web.Request) -> web.Response:
    """The answer to a CORS preflight on an app URL."""
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Origin": request.headers["Origin"],
            "Access-Control-Allow-Methods": ALLOWED_METHODS,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(MAX_AGE_SECS),
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        },
    )


def allow_origin(request: web.Request, response: web.StreamResponse) -> None:
    """Let the requesting origin read this response (before it is sent)."""
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "x-ignite-execution-id"
        response.headers.add("Vary", "Origin")
