"""What of an HTTP request travels to the gRPC server as call metadata.

Only what the server uses: the caller's credential (``Authorization``), a
request id to correlate logs across both processes (``X-Request-Id``, made
up here when the caller sent none), where the request came from
(``X-Forwarded-For`` / ``X-Forwarded-Host``) and the W3C trace context
(``traceparent`` / ``tracestate``). Everything else stays at the edge.
"""

from __future__ import annotations

import re

from aiohttp import web
from ulid import ULID

from ignite_common import tracing
from ignite_gateway.errors import bad_request

#: Header (and metadata key, lower-cased) of the request id.
REQUEST_ID_HEADER = "X-Request-Id"

# A caller's request id is echoed into logs and headers: accept only short,
# plain tokens so it cannot forge log fields or split headers.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

#: Metadata key telling the server how a call came (its invocation metrics).
VIA_METADATA = "x-ignite-via"

# W3C trace context, so a caller's trace continues into the server.
_TRACE_HEADERS = ("traceparent", "tracestate")

# gRPC metadata values must be printable ASCII.
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def request_id(request: web.BaseRequest) -> str:
    """The caller's request id when it is sane, else a new ULID."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if _REQUEST_ID.fullmatch(given):
        return given
    return str(ULID())


def client_address(request: web.BaseRequest) -> str:
    """The peer's address, or "" when unknown."""
    return request.remote or ""


def call_metadata(
    request: web.BaseRequest, rid: str, *, credentials: bool = True, via: str = "http"
) -> list[tuple[str, str]]:
    """Metadata for the gRPC call made on behalf of ``request``.

    ``credentials=False`` keeps ``Authorization`` back, for a header the
    gateway consumed itself (client credentials at the token endpoint).
    ``via`` tells the server's metrics how an invocation came: ``http``
    (the API), ``app_url`` or ``mcp``.
    """
    metadata = [("x-request-id", rid), (VIA_METADATA, via)]
    authorization = request.headers.get("Authorization") if credentials else None
    if authorization is not None:
        if not _PRINTABLE.fullmatch(authorization):
            raise bad_request("INVALID_HEADER", "the Authorization header is not printable ASCII")
        metadata.append(("authorization", authorization))
    forwarded = forwarded_for(request)
    if forwarded:
        metadata.append(("x-forwarded-for", forwarded))
    host = request.headers.get("Host", "")
    if host and _PRINTABLE.fullmatch(host):
        metadata.append(("x-forwarded-host", host))
    if tracing.ENABLED:
        # The gateway's own span (access_log.py) is the server span's parent.
        metadata += tracing.metadata_pairs()
        return metadata
    for name in _TRACE_HEADERS:
        value = request.headers.get(name)
        if value and _PRINTABLE.fullmatch(value):
            metadata.append((name, value))
    return metadata


def forwarded_for(request: web.BaseRequest) -> str:
    """``X-Forwarded-For`` with this hop's peer appended."""
    earlier = request.headers.get("X-Forwarded-For", "")
    if not _PRINTABLE.fullmatch(earlier):
        earlier = ""
    peer = client_address(request)
    return ", ".join(part for part in (earlier, peer) if part)
