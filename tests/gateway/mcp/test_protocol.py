"""JSON-RPC messages of MCP."""

from __future__ import annotations

import json

import pytest

from ignite_gateway.mcp import protocol
from ignite_gateway.mcp.protocol import Message, ProtocolError, parse_message


def test_kinds_of_message() -> None:
    assert parse_message(b'{"jsonrpc":"2.0","id":7,"method":"ping"}') == Message(
        "request", "ping", {}, 7
    )
    assert parse_message(b'{"jsonrpc":"2.0","method":"notifications/initialized"}') == Message(
        "notification", "notifications/initialized", {}, None
    )
    assert parse_message(b'{"jsonrpc":"2.0","id":"a","result":{}}').kind == "response"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", protocol.PARSE_ERROR),
        (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', protocol.INVALID_REQUEST),
        (b'{"id":1,"method":"ping"}', protocol.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":true,"method":"ping"}', protocol.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}', protocol.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1}', protocol.INVALID_REQUEST),
        (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', protocol.INVALID_PARAMS),
    ],
)
def test_malformed_messages(body: bytes, code: int) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_message(body)
    assert refused.value.code == code
    assert refused.value.response()["error"]["code"] == code


def test_version_negotiation() -> None:
    assert protocol.negotiate_version("2025-06-18") == "2025-06-18"
    assert protocol.negotiate_version("2099-01-01") == protocol.LATEST_VERSION
    assert protocol.negotiate_version(None) == protocol.LATEST_VERSION


def test_an_sse_event_is_one_data_line() -> None:
    event = protocol.sse_event(protocol.result_response(1, {"text": "two\nlines"}))
    lines = event.decode().split("\n")
    assert lines[0] == "event: message" and lines[1].startswith("data: ")
    assert lines[2:] == ["", ""]
    assert json.loads(lines[1][len("data: ") :])["result"]["text"] == "two\nlines"
