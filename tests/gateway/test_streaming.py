"""Server streams over HTTP: Invoke as an HTTP response with trailers,
everything else as JSON lines."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from tests.gateway.conftest import LiveGateway


def envelope(body: bytes = b"", **http: object) -> dict[str, object]:
    return {
        "http": {"method": "HTTP_METHOD_POST", "path": "/", **http},
        "body": base64.b64encode(body).decode(),
    }


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    await writer.wait_closed()
    return data


def parse_chunked(raw: bytes) -> tuple[bytes, list[bytes], dict[str, str]]:
    """Status line and headers, chunk payloads, trailers; checks the framing."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    chunks: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(rest[:size])
        assert rest[size : size + 2] == b"\r\n"
        rest = rest[size + 2 :]
    lines: list[bytes] = []
    while True:
        line, _, rest = rest.partition(b"\r\n")
        if not line:
            break
        lines.append(line)
    assert rest == b"", "nothing may follow the trailer section"
    trailers = {}
    for line in lines:
        name, _, value = line.decode().partition(":")
        trailers[name.strip()] = value.strip()
    return head, chunks, trailers


async def test_invoke_relays_status_headers_and_body(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme/echo/invoke",
        json=envelope(b'{"name": "Ada"}', query="a=1", headers={"content-type": "text/x"}),
        headers={"Authorization": "Bearer t"},
    ) as resp:
        assert resp.status == 201
        assert resp.headers["X-Ignite-Execution-Id"] == "01HEXECUTION"
        assert resp.headers["X-App"] == "acme/echo"
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["Transfer-Encoding"] == "chunked"
        assert "Connection" not in resp.headers or resp.headers["Connection"] != "close"
        echo = json.loads(await resp.read())
    assert echo == {
        "method": "HTTP_METHOD_POST",
        "path": "/",
        "query": "a=1",
        "headers": {"content-type": "text/x"},
        "body": '{"name": "Ada"}',
        "org": "acme",
        "app": "echo",
    }
    assert live.fake.metadata[-1]["authorization"] == "Bearer t"


async def test_invoke_trailers_only_when_asked(live: LiveGateway) -> None:
    request = (
        b"POST /v1/ignite/app/acme/echo/invoke HTTP/1.1\r\n"
        b"Host: localhost\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\n%b"
        b"Content-Length: %d\r\n\r\n%b"
    )
    body = json.dumps(envelope(b"hi")).encode()
    with_te = await raw_exchange(live.port, request % (b"TE: trailers\r\n", len(body), body))
    head, chunks, trailers = parse_chunked(with_te)
    assert head.startswith(b"HTTP/1.1 201 ")
    assert b"\r\nTrailer: X-Ignite-Total-Body-Bytes, X-Ignite-Duration-Ms" in head
    assert len(chunks) == 2  # the fake's two chunk frames, as they came
    total = len(b"".join(chunks))
    assert trailers == {
        "X-Ignite-Total-Body-Bytes": str(total),
        "X-Ignite-Duration-Ms": "7",
        "x-pod-trailer": "yes",
    }
    without = await raw_exchange(live.port, request % (b"", len(body), body))
    head, chunks, trailers = parse_chunked(without)
    assert b"Trailer:" not in head
    assert trailers == {}
    assert len(b"".join(chunks)) == total


async def test_invoke_keeps_the_connection_reusable(live: LiveGateway) -> None:
    # Two invocations and an API call over one keep-alive connection: our
    # own chunked framing must leave the connection in a clean state.
    reader, writer = await asyncio.open_connection("127.0.0.1", live.port)
    body = json.dumps(envelope(b"x")).encode()
    for _ in range(2):
        writer.write(
            b"POST /v1/ignite/app/acme/echo/invoke HTTP/1.1\r\nHost: h\r\nTE: trailers\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 201")
        while True:
            size = int(await reader.readline(), 16)
            if size == 0:
                break
            await reader.readexactly(size + 2)
        trailer_lines = []
        while (line := await reader.readline()) != b"\r\n":
            trailer_lines.append(line)
        assert len(trailer_lines) == 3
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    await writer.drain()
    assert (await reader.read()).startswith(b"HTTP/1.1 200")
    writer.close()
    await writer.wait_closed()


async def test_invoke_streams_chunks_as_they_arrive(live: LiveGateway) -> None:
    started = time.monotonic()
    arrivals: list[tuple[float, bytes]] = []
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme/slow/invoke", json=envelope()
    ) as resp:
        assert resp.status == 201
        async for data in resp.content.iter_any():
            arrivals.append((time.monotonic() - started, data))
    assert b"".join(data for _, data in arrivals) == b"first;second;"
    # The fake sends the second chunk 0.6 s after the first: had the gateway
    # held the first back, both would arrive together.
    assert arrivals[0][1] == b"first;"
    assert arrivals[-1][0] - arrivals[0][0] > 0.3


async def test_http_10_client_gets_the_body_until_close(live: LiveGateway) -> None:
    body = json.dumps(envelope(b"old")).encode()
    raw = await raw_exchange(
        live.port,
        b"POST /v1/ignite/app/acme/echo/invoke HTTP/1.0\r\nTE: trailers\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body),
    )
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 201")
    assert b"Transfer-Encoding" not in head and b"Trailer" not in head
    assert json.loads(rest)["body"] == "old"


async def test_invoke_error_before_head_is_a_json_error(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme/nope/invoke", json=envelope()
    ) as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["error"]["details"][0]["reason"] == "APP_NOT_FOUND"


async def test_invoke_failure_mid_stream_truncates_the_body(live: LiveGateway) -> None:
    body = json.dumps(envelope()).encode()
    raw = await raw_exchange(
        live.port,
        b"POST /v1/ignite/app/acme/broken/invoke HTTP/1.1\r\nHost: h\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body),
    )
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201")
    assert rest == b"7\r\npartial\r\n"  # no terminating 0-chunk: visibly cut short


async def test_invoke_without_body_status(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/v1/ignite/app/acme/empty/invoke", json=envelope()
    ) as resp:
        assert resp.status == 204
        assert await resp.read() == b""


async def test_logs_stream_as_json_lines(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/greet/logs") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in (await resp.read()).splitlines()]
    assert [line["result"]["entry"]["message"] for line in lines] == ["line 0", "line 1", "line 2"]
    assert lines[0]["result"]["entry"]["timestampMs"] == "1700000000000"
    assert lines[0]["result"]["entry"]["stream"] == "LOG_STREAM_STDOUT"


async def test_logs_additional_binding(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/execution/acme/01HX/logs") as resp:
        lines = [json.loads(line) for line in (await resp.read()).splitlines()]
    assert lines[0]["result"]["entry"]["executionId"] == "01HX"


async def test_logs_error_before_and_after_the_first_message(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/missing/logs") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["status"] == "NOT_FOUND"
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/failing/logs") as resp:
        assert resp.status == 200
        lines = [json.loads(line) for line in (await resp.read()).splitlines()]
    assert len(lines) == 4
    assert lines[-1]["error"]["status"] == "UNAVAILABLE"
    assert lines[-1]["error"]["details"][0]["reason"] == "LOGS_UNAVAILABLE"


async def test_follow_stream_starts_before_its_first_late_entry(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/app/acme/greet/logs?follow=true") as resp:
        first = await resp.content.readline()
        first_at = time.monotonic()
        assert json.loads(first)["result"]["entry"]["message"] == "line 0"
        rest = (await resp.read()).splitlines()
        # The late entry comes 1.5 s after the others; they were not held.
        assert time.monotonic() - first_at > 1.0
    assert json.loads(rest[-1])["result"]["entry"]["message"] == "late"


async def test_hanging_up_ends_the_server_stream(live: LiveGateway) -> None:
    live.fake.follow_cancelled.clear()
    # limit=1 makes the fake's follow stream wait 30 s for its next entry.
    async with live.session.get(
        f"{live.url}/v1/ignite/app/acme/greet/logs?follow=true&limit=1"
    ) as resp:
        await resp.content.readline()
    # Leaving the block closes the connection; the gRPC stream must follow.
    await asyncio.wait_for(live.fake.follow_cancelled.wait(), timeout=5)
