"""gRPC status → HTTP error responses, in one place.

Every error the HTTP edge returns has one JSON shape, the one Google APIs use::

    {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
               "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "APP_NOT_FOUND", "domain": "ignite.dodil.io",
                            "metadata": {...}}]}}

``code`` is the HTTP status, ``status`` the gRPC code's name. ``details`` are
the ``google.rpc.Status`` details the server put in the
``grpc-status-details-bin`` trailing metadata (an ``ErrorInfo`` at least),
decoded and rendered with the proto3 JSON mapping.

The status → HTTP table follows ``google/rpc/code.proto`` (the same table
grpc-gateway v2 uses), with one refinement: RESOURCE_EXHAUSTED for a message
over the size limit (reason ``MESSAGE_TOO_LARGE``, or grpc core's own "larger
than max" refusal, which carries no reason and gets one here) is 413, like
the gateway's own refusal of a body that is too large, not 429: retrying
later does not help. Errors the gateway finds by itself (malformed JSON, an
unknown route, a body that is too large) are :class:`GatewayError`\\ s and get
the same shape with an ``ErrorInfo`` of the gateway's own. :func:`http_error`
is the one mapping from any exception a request raises to its response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import any_pb2, json_format
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

#: ErrorInfo domain of every error Ignite raises.
ERROR_DOMAIN = "ignite.dodil.io"

#: Trailing-metadata key that carries a serialized google.rpc.Status.
STATUS_DETAILS_KEY = "grpc-status-details-bin"

# google/rpc/code.proto's "HTTP Mapping" lines. FAILED_PRECONDITION is 400
# there (and in grpc-gateway v2); the body's "status" field still tells it
# apart from INVALID_ARGUMENT. CANCELLED is the de-facto 499 "client closed".
_HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


#: ErrorInfo reason of a message over the size limit (the server's, and the
#: one given to grpc core's bare refusal).
MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE"

#: grpc core's text when a message passes a channel's or server's limit
#: ("Received message larger than max (X vs. Y)", "Sent message ...").
_CORE_SIZE_ERROR = re.compile(r"(?:Received|Sent) message larger than max \((\d+) vs\. (\d+)\)")


def http_status(code: grpc.StatusCode) -> int:
    """The HTTP status for a gRPC status code."""
    return _HTTP_STATUS.get(code, 500)


class UpstreamProtocolError(Exception):
    """The server broke a stream's contract (an invocation without a head)."""


class GatewayError(Exception):
    """An error the gateway detects itself, before or instead of a gRPC call.

    ``status`` is the gRPC code name that best describes it (clients that
    switch on ``error.status`` treat gateway and server errors alike);
    ``reason`` goes into the ErrorInfo.
    """

    def __init__(
        self,
        http_code: int,
        status: str,
        reason: str,
        message: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.http_code = http_code
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        info = error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN)
        return error_body(self.http_code, self.status, self.message, [_any_json(info)])


def bad_request(reason: str, message: str) -> GatewayError:
    """A 400 for input the gateway cannot turn into a request message."""
    return GatewayError(400, "INVALID_ARGUMENT", reason, message)


def error_body(
    http_code: int, status: str, message: str, details: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ``{"error": {...}}`` document."""
    return {
        "error": {
            "code": http_code,
            "message": message,
            "status": status,
            "details": details,
        }
    }


def rpc_error_body(error: grpc.aio.AioRpcError) -> tuple[int, dict[str, Any]]:
    """HTTP status and JSON body for a failed gRPC call."""
    code = error.code()
    http_code = http_status(code)
    message = error.details() or ""
    details = _status_details(error.trailing_metadata())
    if code is grpc.StatusCode.UNAVAILABLE and not details and _is_transport_failure(message):
        # The channel itself failed: the message is grpc-core's, about
        # sockets. Say what it means for the caller.
        message = "the Ignite server is unavailable"
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        core_size = _CORE_SIZE_ERROR.search(message) if not details else None
        if core_size is not None:
            size, limit = core_size.groups()
            message = f"the message is {size} bytes; the limit is {limit} bytes"
            info = error_details_pb2.ErrorInfo(
                reason=MESSAGE_TOO_LARGE,
                domain=ERROR_DOMAIN,
                metadata={"limit_bytes": limit, "size_bytes": size},
            )
            details = [_any_json(info)]
        if _reason_of(details) == MESSAGE_TOO_LARGE:
            http_code = 413
    return http_code, error_body(http_code, code.name, message, details)


#: Reasons for aiohttp's own refusals, by HTTP status.
_AIOHTTP_REASONS = {404: "ROUTE_NOT_FOUND", 413: "REQUEST_TOO_LARGE"}


def http_error(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """HTTP status, JSON body and extra headers for an exception a request
    raised; None for one that is not an error of the request (a bug)."""
    if isinstance(exc, GatewayError):
        return exc.http_code, exc.body(), dict(exc.headers)
    if isinstance(exc, grpc.aio.AioRpcError):
        code, body = rpc_error_body(exc)
        return code, body, {}
    if isinstance(exc, UpstreamProtocolError):
        upstream = GatewayError(502, "UNAVAILABLE", "UPSTREAM_PROTOCOL", str(exc))
        return 502, upstream.body(), {}
    if isinstance(exc, web.HTTPException):
        # aiohttp's own refusals (rare: routing and body limits are the
        # gateway's); they still get a reason.
        name = "NOT_FOUND" if exc.status == 404 else "INVALID_ARGUMENT"
        reason = _AIOHTTP_REASONS.get(exc.status, "BAD_REQUEST")
        own = GatewayError(exc.status, name, reason, exc.reason)
        return exc.status, own.body(), {}
    return None


def error_response(status: int, body: dict[str, Any], headers: Mapping[str, str]) -> web.Response:
    """The one way errors leave: compact JSON with its headers (Allow, ...)."""
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type="application/json",
        headers=headers,
    )


def error_json_line(error: grpc.aio.AioRpcError) -> bytes:
    """One newline-terminated JSON line for an error in the middle of a stream."""
    _, body = rpc_error_body(error)
    return json.dumps(body, separators=(",", ":")).encode() + b"\n"


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call, "" when it carries none."""
    return _reason_of(_status_details(error.trailing_metadata()))


def _reason_of(details: list[dict[str, Any]]) -> str:
    for detail in details:
        if detail.get("@type", "").endswith("/google.rpc.ErrorInfo"):
            return str(detail.get("reason", ""))
    return ""


def _status_details(metadata: Any) -> list[dict[str, Any]]:
    """Decode the google.rpc.Status in the trailing metadata, if any."""
    if not metadata:
        return []
    for key, value in metadata:
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            return []
        rendered = []
        for detail in status.details:
            try:
                rendered.append(json_format.MessageToDict(detail))
            except (json_format.Error, TypeError, KeyError):
                # A detail type this gateway was not built with: skip it
                # rather than fail the whole error response.
                continue
        return rendered
    return []


def _any_json(message: Any) -> dict[str, Any]:
    """A message as a JSON ``Any`` (with ``@type``)."""
    packed = any_pb2.Any()
    packed.Pack(message)
    return json_format.MessageToDict(packed)


def _is_transport_failure(message: str) -> bool:
    lowered = message.lower()
    return any(
        marker in lowered
        for marker in ("failed to connect", "connection refused", "socket closed", "dns")
    )
