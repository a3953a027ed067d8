"""Bodies of requests without a token are never read when the request would
be refused anyway: 48 concurrent 32 MiB POSTs to a private app's invoke
route get 401 TOKEN_REQUIRED at once, and the gateway's peak memory stays
under 300 MB; a public app still takes a large tokenless body, and the other
organization's calls are unaffected."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ignite_launcher import LocalPlatform, private_state_dir
from tests.gateway.conftest import organization_with_apps

CONCURRENT = 48
BODY_BYTES = 32 * 1024 * 1024
#: The gateway's peak resident memory may not pass this during the flood.
PEAK_RSS_LIMIT_MB = 300
#: How long the whole flood may take (bounded load).
FLOOD_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def secured() -> Iterator[LocalPlatform]:
    with LocalPlatform(private_state_dir("ignite-bodies-"), auth=True) as platform:
        yield platform


def _gateway_pid(platform: LocalPlatform) -> int:
    assert platform.gateway is not None
    return platform.gateway.pid


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def _post_without_token(port: int, path: str, body: memoryview) -> tuple[int, bytes, float]:
    """POST ``body`` as a client that sends it whole whatever the answer:
    (status, answer body, seconds until the answer's status line)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
    )

    async def send() -> None:
        try:
            for offset in range(0, len(body), 1 << 20):
                writer.write(body[offset : offset + (1 << 20)])
                await writer.drain()
        except ConnectionError:
            pass  # the gateway may close once it answered

    sending = asyncio.create_task(send())
    try:
        status_line = await reader.readline()
        answered = time.monotonic() - started
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode().partition(":")
            headers[key.strip().lower()] = value.strip()
        answer = await reader.readexactly(int(headers.get("content-length", "0")))
    finally:
        await sending
        writer.close()
    return int(status_line.split()[1]), answer, answered


def test_tokenless_bodies_are_refused_unread_and_memory_stays_low(secured):
    victim, _ = organization_with_apps(secured, (("greet", False), ("open", True)))
    other, other_token = organization_with_apps(secured, (("greet", False),))
    port = secured.gateway_port
    pid = _gateway_pid(secured)
    # Reset the peak to what the gateway holds now (writing 5 to clear_refs
    # resets VmHWM), so the figure is the flood's.
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _peak_rss_mb(pid)
    body = memoryview(b"{" + b" " * (BODY_BYTES - 2) + b"}")

    async def flood() -> list[tuple[int, bytes, float]]:
        path = f"/v1/ignite/app/{victim}/greet/invoke"
        async with asyncio.timeout(FLOOD_TIMEOUT_S):
            return await asyncio.gather(
                *(_post_without_token(port, path, body) for _ in range(CONCURRENT))
            )

    started = time.monotonic()
    answers = asyncio.run(flood())
    elapsed = time.monotonic() - started
    peak = _peak_rss_mb(pid)
    waits = sorted(a[2] for a in answers)
    print(
        f"\n{CONCURRENT} concurrent unauthenticated {BODY_BYTES >> 20} MiB POSTs: "
        f"statuses {sorted({a[0] for a in answers})}, answered within "
        f"{waits[len(waits) // 2] * 1000:.0f} ms (median) / {waits[-1] * 1000:.0f} ms (max), "
        f"all sent in {elapsed:.1f} s; gateway peak RSS {before:.0f} MB before, "
        f"{peak:.0f} MB during (limit {PEAK_RSS_LIMIT_MB} MB)"
    )
    assert {a[0] for a in answers} == {401}
    for _, answer, _ in answers:
        error = json.loads(answer)["error"]
        assert error["details"][0]["reason"] == "TOKEN_REQUIRED"
    # Answered before the bodies could have been read: the status came while
    # the client was still sending its 32 MiB.
    assert waits[-1] < elapsed
    assert peak < PEAK_RSS_LIMIT_MB

    # A public app still takes a large body without a token, on its URL.
    large = b'{"name": "Ada", "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    public = requests.post(
        f"{secured.http_url}/",
        headers={"Host": secured.app_host(victim, "open")},
        data=large,
        timeout=120,
    )
    assert public.status_code == 200, public.text
    assert public.json()["greeting"] == "Hello, Ada!"
    # The other organization's calls with a token are unaffected.
    invoked = requests.post(
        f"{secured.http_url}/v1/ignite/app/{other}/greet/invoke",
        headers={"Authorization": f"Bearer {other_token}"},
        json={"body": "eyJuYW1lIjogIkJvYiJ9"},
        timeout=120,
    )
    assert invoked.status_code == 200, invoked.text
    assert invoked.json()["greeting"] == "Hello, Bob!"
    assert _peak_rss_mb(pid) < PEAK_RSS_LIMIT_MB
