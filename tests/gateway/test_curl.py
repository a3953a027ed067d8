"""`curl -N` against /invoke: the body streams, and with `TE: trailers` the
trailers arrive after it, as a user at a terminal sees them."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from tests.gateway.conftest import LiveGateway
from tests.support import require_tool


def _envelope() -> str:
    return json.dumps(
        {
            "http": {"method": "HTTP_METHOD_POST", "path": "/"},
            "body": base64.b64encode(b'{"name": "Ada"}').decode(),
        }
    )


async def _curl(*args: str) -> str:
    """Run curl; its standard output."""
    process = await asyncio.create_subprocess_exec(
        require_tool("curl", "tools/toolchains.sh"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr
    return stdout.decode()


async def test_curl_sees_streamed_body_and_trailers(live: LiveGateway) -> None:
    # -i prints the status and headers, then the body, then (curl prints
    # what its header callback receives) the trailer fields.
    text = await _curl(
        "-sS",
        "-N",
        "-i",
        "-H",
        "TE: trailers",
        "-H",
        "Content-Type: application/json",
        "-d",
        _envelope(),
        f"{live.url}/v1/ignite/app/acme/echo/invoke",
    )
    assert text.startswith("HTTP/1.1 201")
    assert "X-Ignite-Execution-Id: 01HEXECUTION" in text
    assert "Trailer: X-Ignite-Total-Body-Bytes, X-Ignite-Duration-Ms" in text
    header_end = text.index("\r\n\r\n")
    after_headers = text[header_end + 4 :]
    echo, body_end = json.JSONDecoder().raw_decode(after_headers)
    assert echo["body"] == '{"name": "Ada"}'
    trailers = after_headers[body_end:]
    assert trailers.startswith("X-Ignite-Total-Body-Bytes"), repr(trailers)
    assert f"X-Ignite-Total-Body-Bytes: {body_end}" in trailers
    assert "X-Ignite-Duration-Ms: 7" in trailers


async def test_curl_no_trailers_without_te(live: LiveGateway) -> None:
    text = await _curl(
        "-sS", "-N", "-i", "-d", _envelope(), f"{live.url}/v1/ignite/app/acme/echo/invoke"
    )
    assert "X-Ignite-Total-Body-Bytes" not in text
    assert text.rstrip().endswith("}")


async def test_curl_n_shows_chunks_as_they_come(live: LiveGateway) -> None:
    # The slow app sends "first;" then, 0.6 s later, "second;" (no newline,
    # so curl's output is read raw here rather than by line).
    process = await asyncio.create_subprocess_exec(
        "curl",
        "-sS",
        "-N",
        "-d",
        _envelope(),
        f"{live.url}/v1/ignite/app/acme/slow/invoke",
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    first = await process.stdout.read(6)
    first_at = time.monotonic()
    rest = await process.stdout.read()
    rest_at = time.monotonic()
    assert await process.wait() == 0
    assert first == b"first;"
    assert rest == b"second;"
    # 0.6 s apart at the source; together had anything buffered them.
    assert rest_at - first_at > 0.3, "the first chunk waited for the rest"
