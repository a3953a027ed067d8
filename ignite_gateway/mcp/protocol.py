"""The JSON-RPC 2.0 layer of MCP, with no I/O.

MCP messages are JSON-RPC 2.0 objects: a *request* has ``method`` and
``id`` and gets exactly one response; a *notification* has ``method`` and no
``id`` and gets none; a *response* (``result`` or ``error``) answers a request
the other side sent. Since protocol revision 2025-06-18 one HTTP body holds
one message: batches (JSON arrays) are refused.

This module turns a body into one :class:`Message` or a :class:`ProtocolError`
and builds the answers; the HTTP side lives in :mod:`.endpoint`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ignite_gateway.json_body import MalformedJson, parse_json

#: Protocol revisions spoken over this endpoint, newest first. All use the
#: Streamable HTTP transport (introduced by 2025-03-26) and the initialize
#: handshake.
SUPPORTED_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26")

#: Offered when the client asks for a revision we do not speak; the client
#: then decides whether it can continue (the spec's negotiation rule).
LATEST_VERSION = SUPPORTED_VERSIONS[0]

#: What a request without ``MCP-Protocol-Version`` is taken to speak: the
#: spec tells servers to assume 2025-03-26, the revision before the header.
DEFAULT_HEADER_VERSION = "2025-03-26"

# JSON-RPC 2.0 error codes (the spec's reserved range).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: Ids are strings or integers in MCP (never null, never fractional).
RequestId = str | int


class ProtocolError(Exception):
    """A message that cannot be answered normally; becomes a JSON-RPC error.

    ``request_id`` is None when the id could not be read (the error then
    carries ``"id": null``, as JSON-RPC requires).
    """

    def __init__(
        self, code: int, message: str, *, request_id: RequestId | None = None, data: Any = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
        self.data = data

    def response(self) -> dict[str, Any]:
        """The JSON-RPC error response object."""
        return error_response(self.request_id, self.code, self.message, self.data)


@dataclass(frozen=True)
class Message:
    """One decoded JSON-RPC message.

    ``kind`` is "request", "notification" or "response"; ``method`` and
    ``params`` are empty for a response.
    """

    kind: str
    method: str
    params: dict[str, Any]
    request_id: RequestId | None


def parse_message(body: bytes) -> Message:
    """Decode one JSON-RPC message from an HTTP body, or raise ProtocolError."""
    try:
        document = parse_json(body)
    except MalformedJson as exc:
        raise ProtocolError(PARSE_ERROR, str(exc)) from None
    if isinstance(document, list):
        raise ProtocolError(INVALID_REQUEST, "JSON-RPC batches are not supported; send one message")
    if not isinstance(document, dict) or document.get("jsonrpc") != "2.0":
        raise ProtocolError(INVALID_REQUEST, 'not a JSON-RPC 2.0 message (need "jsonrpc": "2.0")')
    request_id = document.get("id")
    has_id = "id" in document
    if has_id and not _valid_id(request_id):
        raise ProtocolError(INVALID_REQUEST, "id must be a string or an integer")
    method = document.get("method")
    if method is None:
        if has_id and ("result" in document or "error" in document):
            return Message("response", "", {}, request_id)
        raise ProtocolError(INVALID_REQUEST, "a message needs a method", request_id=request_id)
    if not isinstance(method, str) or not method:
        raise ProtocolError(INVALID_REQUEST, "method must be a string", request_id=request_id)
    params = document.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ProtocolError(INVALID_PARAMS, "params must be an object", request_id=request_id)
    if has_id:
        return Message("request", method, params, request_id)
    return Message("notification", method, params, None)


def _valid_id(value: Any) -> bool:
    # bool is an int subclass in Python; JSON true is no id.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def result_response(request_id: RequestId | None, result: dict[str, Any]) -> dict[str, Any]:
    """A successful JSON-RPC response."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error_response(
    request_id: RequestId | None, code: int, message: str, data: Any = None
) -> dict[str, Any]:
    """A JSON-RPC error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def negotiate_version(requested: Any) -> str:
    """The revision to answer ``initialize`` with: the client's when we speak
    it, else our newest (the client may then give up)."""
    if isinstance(requested, str) and requested in SUPPORTED_VERSIONS:
        return requested
    return LATEST_VERSION


def encode(document: dict[str, Any]) -> bytes:
    """Compact JSON bytes of a message."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sse_event(document: dict[str, Any]) -> bytes:
    """One Server-Sent Events ``message`` event carrying a JSON-RPC message.

    The JSON is compact and holds no raw newlines (json.dumps escapes them
    inside strings), so one ``data:`` line is always enough.
    """
    return b"event: message\ndata: " + encode(document) + b"\n\n"
