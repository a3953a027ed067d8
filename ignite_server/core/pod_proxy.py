"""Proxying one invocation to the pod holding its slot, as real HTTP.

The request goes to the pod as the user's HTTP request (hop-by-hop headers
dropped) with the execution id in ``X-Ignite-Execution-Id``; the answer
comes back as a ``ResponseHead`` and ``ResponseChunk``\\ s of at most
``CHUNK_BYTES``, never the whole body in memory. Each step of talking to
the pod must finish by the invocation's deadline (TimeoutError past it, the
caller's to turn into DeadlineExceeded). A broken connection becomes the
error that says why: the pod's death (ResourceExhausted ``OUT_OF_MEMORY``
for the kernel's memory kill, Unavailable ``POD_EXITED``), or Unavailable
``POD_CONNECTION_LOST``. Slots, metering and the trailer are the caller's
(core/activator.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable
from typing import TypeVar

import aiohttp

from ignite_server.core.invocation_meter import InvocationMeter
from ignite_server.core.revision_throttler import PodSlot
from ignite_server.domain.errors import IgniteError, ResourceExhausted, Unavailable
from ignite_server.domain.models import InvocationRequest, ResponseChunk, ResponseHead
from ignite_server.ports.pod_backend import ExitReason
from ignite_server.ports.pod_protocol import EXECUTION_ID_HEADER

T = TypeVar("T")

#: Largest response chunk: well below gRPC's 4 MiB message limit.
CHUNK_BYTES = 64 * 1024
#: After a connection error, how long to wait for the pod's exit to learn
#: why it died (the OOM killer's verdict arrives with the exit).
EXIT_VERDICT_SECS = 2.0
#: Headers that describe one HTTP hop, not the request (RFC 9110 §7.6.1),
#: plus the ones aiohttp computes itself.
HOP_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
        "trailer", "upgrade", "host", "content-length",
    }
)  # fmt: skip


async def proxy(
    slot: PodSlot,
    request: InvocationRequest,
    execution_id: str,
    deadline: float,
    meter: InvocationMeter,
) -> AsyncGenerator[ResponseHead | ResponseChunk, None]:
    """Send ``request`` to ``slot``'s pod and stream its answer back, each
    step by ``deadline`` (loop time), telling ``meter`` the waits."""
    headers = _request_headers(request, execution_id)
    meter.sending(headers)
    with slot.pod.executing(execution_id):
        sent = time.monotonic()
        response = await _bounded(
            slot,
            deadline,
            slot.session.request(
                request.method or "POST",
                _url(slot, request),
                data=request.body,
                headers=headers,
                allow_redirects=False,
            ),
        )
        meter.answered(response.status, time.monotonic() - sent)
        try:
            yield ResponseHead(response.status, _response_headers(response), execution_id)
            while True:
                asked = time.monotonic()
                data = await _bounded(slot, deadline, response.content.read(CHUNK_BYTES))
                meter.waited_on_pod(time.monotonic() - asked, len(data))
                if not data:
                    return
                yield ResponseChunk(data)
        finally:
            response.release()


def _url(slot: PodSlot, request: InvocationRequest) -> str:
    path = request.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    return slot.pod.base_url + path + (f"?{request.query}" if request.query else "")


def _request_headers(request: InvocationRequest, execution_id: str) -> dict[str, str]:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
    headers = {k: v for k, v in headers.items() if k.lower() != EXECUTION_ID_HEADER.lower()}
    headers[EXECUTION_ID_HEADER] = execution_id
    return headers


def _response_headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        if name.lower() in HOP_HEADERS:
            continue
        # Repeated headers fold into one, as RFC 9110 §5.3 allows.
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _bounded(slot: PodSlot, deadline: float, step: Awaitable[T]) -> T:
    """One step of talking to the pod, by ``deadline`` (TimeoutError past
    it); a broken connection becomes the error that says why."""
    try:
        async with asyncio.timeout_at(deadline):
            return await step
    except aiohttp.ClientError as exc:
        raise await _pod_failure(slot, exc) from None


async def _pod_failure(slot: PodSlot, exc: Exception) -> IgniteError:
    """The error for a request whose pod connection broke: why the pod died
    if it did (waiting briefly for its exit), else a lost connection."""
    end = slot.pod.exit
    if end is None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EXIT_VERDICT_SECS):
                end = await slot.pod.wait()
    if end is None:
        return Unavailable(
            f"the connection to the app's pod broke: {type(exc).__name__}",
            reason="POD_CONNECTION_LOST",
        )
    if end.reason == ExitReason.OUT_OF_MEMORY:
        return ResourceExhausted(f"the app's pod was {end.message}", reason="OUT_OF_MEMORY")
    return Unavailable(f"the app's pod {end.message} during the request", reason="POD_EXITED")
