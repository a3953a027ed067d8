"""The pod protocol's own endpoints, as the local backend calls them.

A pod's runtime serves HTTP/1.1 on a unix socket (docs/pod-protocol.md).
Invocations go through a pooled connector (``LocalPod.connector``); the
protocol's own endpoints, ``GET /_ignite/health`` while a pod starts and
``POST /_ignite/load`` to specialize a pre-started pod, are called a few
times in a pod's life, so each call is one exchange on a fresh connection,
where a connection pool would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from ignite_server.ports.pod_backend import PodSpec, PodStartError
from ignite_server.ports.pod_protocol import HEALTH_PATH, LOAD_PATH, load_request


async def http_once(
    socket_path: Path, method: str, path: str, body: bytes = b"", wait_secs: float = 10.0
) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange on a fresh unix-socket connection: the status
    and the body of the answer."""
    async with asyncio.timeout(wait_secs):
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        return await exchange(reader, writer, method, path, body)


async def exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    path: str,
    body: bytes = b"",
) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange on an open connection, which it closes: the
    status and the body of the answer."""
    try:
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ConnectionError("malformed answer from the pod") from None
    return status, payload


async def health_status(socket_path: Path) -> int:
    """The runtime's answer to its health probe: 200 serving, 503 up but not
    yet specialized, 0 when nothing answers."""
    try:
        status, _ = await http_once(socket_path, "GET", HEALTH_PATH)
    except (OSError, ConnectionError, TimeoutError):
        return 0
    return status


async def load(socket_path: Path, spec: PodSpec, code_dir: str, wait_secs: float) -> bool:
    """Specialize a pre-started pod for ``spec``; raises PodStartError when
    the pod does not answer or refuses its code (with the runtime's reason).
    True when the pod took the code but serves only once its health probe
    says so (``202``: the exec launcher, which becomes the app)."""
    try:
        status, answer = await http_once(
            socket_path, "POST", LOAD_PATH, load_request(spec, code_dir), wait_secs
        )
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise PodStartError(f"the pod did not take its code: {exc}") from exc
    if status in (200, 202):
        return status == 202
    try:
        message = str(json.loads(answer)["error"])
    except (ValueError, KeyError, TypeError):
        message = f"the pod refused its code (HTTP {status})"
    raise PodStartError(message)
