"""Server-streaming RPCs over HTTP/1.1.

Two shapes, chosen by the RPC's response *type*, never by its name:

* **HTTP frames** — an RPC whose response message is ``InvokeResponse``
  (``oneof frame {head, chunk, trailer}``) carries an HTTP response. It is
  delivered as that response: the head's status and headers (plus
  ``X-Ignite-Execution-Id`` and ``X-Ignite-Version``), the chunks as the
  body, flushed as they arrive, and the trailer's ``total_body_bytes`` /
  ``duration_ms`` (and the pod's own trailers) as HTTP trailers for clients
  that sent ``TE: trailers``.
* **JSON lines** — any other server stream is newline-delimited JSON, one
  ``{"result": <message>}`` per message and a final ``{"error": {...}}`` line
  if the stream fails after it started (before the first message, a failure
  is an ordinary error response with its HTTP status).

aiohttp writes chunked framing itself and cannot end it with trailers, so
:class:`TrailerCapableResponse` writes the framing in this one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import grpc
import structlog
from aiohttp import web
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from ignite_gateway.errors import (
    GatewayError,
    UpstreamProtocolError,
    error_body,
    error_json_line,
)
from ignite_gateway.headers import HOP_BY_HOP
from ignite_gateway.transcode import to_json_dict

_log = structlog.get_logger("ignite_gateway")

# End-of-stream marker of grpc.aio's call.read() (missing from the type stubs).
_EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]

#: Response type whose frames are an HTTP response (head, chunks, trailer).
HTTP_FRAMES_TYPE = "dodil.ignite.v1.InvokeResponse"

#: Response header carrying the head frame's execution id.
EXECUTION_ID_HEADER = "X-Ignite-Execution-Id"
#: Response header carrying the version that served the request.
VERSION_HEADER = "X-Ignite-Version"

#: Trailer names for the trailer frame's counters.
TOTAL_BYTES_TRAILER = "X-Ignite-Total-Body-Bytes"
DURATION_TRAILER = "X-Ignite-Duration-Ms"

#: Content type of JSON-lines streams.
JSON_LINES_TYPE = "application/x-ndjson"

# How long a JSON-lines stream may stay silent before its 200 headers are
# sent anyway: long enough that an immediate failure still gets its proper
# HTTP status, short enough that a quiet `follow` stream shows it is alive.
_FIRST_MESSAGE_WAIT_S = 1.0

# A pod's response headers the caller never sees: the hop-by-hop ones, and
# Content-Length, since this gateway frames the body itself.
_NOT_FORWARDED = HOP_BY_HOP | {"content-length"}


def is_http_frames(method: MethodDescriptor) -> bool:
    """Whether ``method`` streams an HTTP response as InvokeResponse frames."""
    return bool(method.server_streaming) and method.output_type.full_name == HTTP_FRAMES_TYPE


def wants_trailers(request: web.BaseRequest) -> bool:
    """Whether the client announced it accepts trailers (``TE: trailers``)."""
    te = request.headers.get("TE", "")
    return any(part.split(";")[0].strip().lower() == "trailers" for part in te.split(","))


async def read_head(call: Any) -> Message:
    """The first frame of an HTTP-frames stream, which must be a head.

    Raises :class:`grpc.aio.AioRpcError` when the call fails before it, and
    :class:`UpstreamProtocolError` when the stream starts with anything else.
    """
    frame = await call.read()
    if frame is _EOF or frame.WhichOneof("frame") != "head":
        raise UpstreamProtocolError("the invocation stream did not start with a head frame")
    return frame


class TrailerCapableResponse(web.StreamResponse):
    """A streamed response that writes its own chunked framing.

    aiohttp frames chunked bodies by itself and has no way to add trailers.
    Turning its length bookkeeping off (the same switch its own
    WebSocketResponse uses) makes it pass the body bytes through untouched,
    so this class frames each chunk (``<hex size>\\r\\n<data>\\r\\n``) and ends
    the body with ``0\\r\\n<trailer fields>\\r\\n`` (RFC 9112 §7.1). The
    connection stays reusable because the framing is complete.
    """

    _length_check = False

    def __init__(self, *, status: int, headers: Mapping[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self.headers["Transfer-Encoding"] = "chunked"

    async def write_chunk(self, data: bytes) -> None:
        """Send one chunk (an empty one would end the body, so it is skipped)."""
        if data:
            await self.write(b"%x\r\n%b\r\n" % (len(data), data))

    async def finish(self, trailers: Mapping[str, str]) -> None:
        """End the body, with ``trailers`` as trailer fields."""
        fields = "".join(f"{name}: {value}\r\n" for name, value in trailers.items())
        await self.write(b"0\r\n" + fields.encode("latin-1", "replace") + b"\r\n")
        await self.write_eof()


def response_headers(head: Any, extra: Mapping[str, str]) -> dict[str, str]:
    """The head frame's headers, minus hop-by-hop ones, plus ``extra``."""
    headers = {
        name: value
        for name, value in head.response_headers.items()
        if name.lower() not in _NOT_FORWARDED and _is_header_safe(name, value)
    }
    headers[EXECUTION_ID_HEADER] = head.execution_id
    if getattr(head, "version", 0):
        headers[VERSION_HEADER] = str(head.version)
    headers.update(extra)
    return headers


async def relay_http_frames(
    request: web.BaseRequest,
    call: Any,
    head_frame: Message,
    *,
    extra_headers: Mapping[str, str],
) -> web.StreamResponse:
    """Deliver an HTTP-frames stream as an HTTP response (see module doc)."""
    head = head_frame.head  # type: ignore[attr-defined]
    status = int(head.status_code)
    if not 200 <= status <= 599:
        # A pod cannot send a 1xx as its final status; anything else out of
        # range is an upstream bug. Neither may become a malformed response.
        raise UpstreamProtocolError(f"the app answered with HTTP status {status}")
    headers = response_headers(head, extra_headers)
    if request.method == "HEAD" or status in (204, 304) or request.version < (1, 1):
        return await _relay_without_framing(request, call, status, headers, head)
    trailers_wanted = wants_trailers(request)
    if trailers_wanted:
        headers["Trailer"] = f"{TOTAL_BYTES_TRAILER}, {DURATION_TRAILER}"
    response = TrailerCapableResponse(status=status, headers=headers)
    await response.prepare(request)
    # Send the status line and headers now, not with the first chunk: a
    # slow handler's caller sees the response start.
    await response.write(b"")
    try:
        trailer = None
        async for frame in _frames(call):
            kind = frame.WhichOneof("frame")
            if kind == "chunk":
                await response.write_chunk(frame.chunk.data)
            elif kind == "trailer":
                trailer = frame.trailer
    except grpc.aio.AioRpcError as error:
        # Too late for an error status: end the connection without the
        # final chunk, so the client sees a truncated body, not a short one.
        _log.warning(
            "stream.failed_after_head", grpc_status=error.code().name, message=error.details()
        )
        response.force_close()
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response
    except ConnectionError:
        # The client hung up; the caller cancels the call.
        response.force_close()
        return response
    trailers: dict[str, str] = {}
    if trailers_wanted and trailer is not None:
        trailers = {
            TOTAL_BYTES_TRAILER: str(trailer.total_body_bytes),
            DURATION_TRAILER: str(trailer.duration_ms),
        }
        for name, value in trailer.trailers.items():
            if name.lower() not in _NOT_FORWARDED and _is_header_safe(name, value):
                trailers[name] = value
    await response.finish(trailers)
    return response


async def _relay_without_framing(
    request: web.BaseRequest,
    call: Any,
    status: int,
    headers: dict[str, str],
    head: Any,
) -> web.StreamResponse:
    # HEAD, 204 and 304 carry no body; HTTP/1.0 has no chunking, so its
    # body ends when the connection closes (aiohttp does that).
    carries_body = request.method != "HEAD" and status not in (204, 304)
    if request.method == "HEAD":
        # What a GET would have sent is worth knowing; nothing follows it.
        for name, value in head.response_headers.items():
            if name.lower() == "content-length" and value.isdigit():
                headers["Content-Length"] = value
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    async for frame in _frames(call):
        if carries_body and frame.WhichOneof("frame") == "chunk":
            await response.write(frame.chunk.data)
    await response.write_eof()
    return response


async def relay_json_lines(
    request: web.BaseRequest,
    call: Any,
    extra_headers: Mapping[str, str],
    draining: Callable[[], bool] = lambda: False,
) -> web.StreamResponse:
    """Deliver any other server stream as JSON lines (see module doc).

    A stream the gateway itself cancels because it is shutting down
    (``draining()``) ends with an UNAVAILABLE line: reconnect elsewhere.
    """
    first_read = asyncio.ensure_future(call.read())
    try:
        done, _ = await asyncio.wait({first_read}, timeout=_FIRST_MESSAGE_WAIT_S)
        # A failure before anything was sent raises here, from result(), and
        # becomes an ordinary error response.
        first = first_read.result() if done else None
    except asyncio.CancelledError:
        first_read.cancel()
        if not _call_cancelled_by_drain(draining):
            raise
        raise GatewayError(
            503, "UNAVAILABLE", "SHUTTING_DOWN", "the gateway is shutting down; reconnect"
        ) from None
    except BaseException:
        first_read.cancel()
        raise
    response = web.StreamResponse(
        status=200, headers={"Content-Type": JSON_LINES_TYPE, **extra_headers}
    )
    await response.prepare(request)
    await response.write(b"")
    try:
        if first is None:
            first = await first_read
        message = first
        while message is not _EOF:
            await response.write(_result_line(message))
            message = await call.read()
    except grpc.aio.AioRpcError as error:
        await response.write(error_json_line(error))
    except asyncio.CancelledError:
        if not _call_cancelled_by_drain(draining):
            raise
        await response.write(_GOING_AWAY_LINE)
    except ConnectionError:
        # The client hung up; the caller cancels the call.
        response.force_close()
        return response
    await response.write_eof()
    return response


def _call_cancelled_by_drain(draining: Callable[[], bool]) -> bool:
    # grpc.aio raises CancelledError from read() when the *call* is cancelled
    # (drain does that); only a cancelled *task* (the client hung up) must
    # propagate it.
    task = asyncio.current_task()
    return draining() and task is not None and not task.cancelling()


_GOING_AWAY_LINE = (
    json.dumps(
        error_body(503, "UNAVAILABLE", "the gateway is shutting down; reconnect", []),
        separators=(",", ":"),
    ).encode()
    + b"\n"
)


async def _frames(call: Any) -> Any:
    while True:
        frame = await call.read()
        if frame is _EOF:
            return
        yield frame


def _result_line(message: Message) -> bytes:
    return json.dumps({"result": to_json_dict(message)}, separators=(",", ":")).encode() + b"\n"


def _is_header_safe(name: str, value: str) -> bool:
    # A header name or value with CR/LF would let a pod inject headers or
    # split the response; drop such pairs.
    return not any(char in name + value for char in "\r\n\0") and ":" not in name
