"""Floors for the benchmarks: the least a path of its kind can cost, run in
the benchmark's own process and measured call by call interleaved with the
platform, so a ratio against a floor compares the same moment of the machine.

- ``grpc_floor``: a bare grpc.aio server with one server-streaming method
  (``ComputeService/Invoke``, the platform's own service definition) that
  yields the three frames of one real platform answer: its head, its body
  as one chunk, its trailer. No interceptors, auth, database or pod.
- ``proxy_floor``: a bare aiohttp reverse proxy that forwards each request
  to a pod's unix socket over one pooled client session, adding only the
  execution id header the pod expects.

Both run on the benchmark's event loop, beside the client that calls them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
from aiohttp import web
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

from ignite_server.core.pod_proxy import HOP_HEADERS
from ignite_server.ports.pod_protocol import EXECUTION_ID_HEADER

Call = Callable[[], Awaitable[None]]
#: The execution id the proxy floor hands the pod on every request.
FLOOR_EXECUTION_ID = "01FL00R0000000000000000000"
#: Calls of each kind made before the interleaved samples are taken.
WARMUP_ROUNDS = 20


def stats(samples: Sequence[float]) -> tuple[float, float]:
    """(median, p99) in milliseconds of latencies in seconds."""
    ms = sorted(s * 1000 for s in samples)
    p99 = statistics.quantiles(ms, n=100)[98] if len(ms) >= 2 else ms[0]
    return statistics.median(ms), p99


async def interleaved(calls: Mapping[str, Call], rounds: int) -> dict[str, list[float]]:
    """Latencies (seconds) of each call, made one at a time in turn.

    Every round calls each once; odd rounds go in reverse order so that
    neither side always follows the other.
    """
    order = list(calls.items())
    for _ in range(WARMUP_ROUNDS):
        for _, call in order:
            await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(rounds):
        for name, call in order if i % 2 == 0 else reversed(order):
            started = time.perf_counter()
            await call()
            samples[name].append(time.perf_counter() - started)
    return samples


async def answer_frames(
    responses: AsyncIterable[compute.InvokeResponse],
) -> list[compute.InvokeResponse]:
    """One platform answer as three frames: head, the whole body as one chunk, trailer."""
    head = trailer = None
    body = bytearray()
    async for frame in responses:
        kind = frame.WhichOneof("frame")
        if kind == "head":
            head = frame
        elif kind == "chunk":
            body += frame.chunk.data
        else:
            trailer = frame
    assert head is not None and trailer is not None, "the answer lacks a head or trailer"
    return [head, compute.InvokeResponse(chunk=compute.InvokeChunk(data=bytes(body))), trailer]


class _FloorService(compute_grpc.ComputeServiceServicer):
    def __init__(self, frames: Sequence[compute.InvokeResponse]) -> None:
        self._frames = tuple(frames)

    async def Invoke(
        self, request: compute.InvokeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[compute.InvokeResponse]:
        for frame in self._frames:
            yield frame


@asynccontextmanager
async def grpc_floor(frames: Sequence[compute.InvokeResponse]) -> AsyncIterator[str]:
    """A bare grpc.aio server answering ``Invoke`` with ``frames``; yields its target."""
    server = grpc.aio.server()
    compute_grpc.add_ComputeServiceServicer_to_server(_FloorService(frames), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


@asynccontextmanager
async def proxy_floor(socket: Path) -> AsyncIterator[str]:
    """A bare aiohttp reverse proxy to the pod at ``socket``; yields its base URL."""
    async with aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=str(socket)), auto_decompress=False
    ) as pod:

        async def forward(request: web.Request) -> web.Response:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
            headers[EXECUTION_ID_HEADER] = FLOOR_EXECUTION_ID
            async with pod.request(
                request.method,
                "http://pod" + request.path_qs,
                data=await request.read(),
                headers=headers,
            ) as response:
                body = await response.read()
                kept = {k: v for k, v in response.headers.items() if k.lower() not in HOP_HEADERS}
                return web.Response(status=response.status, body=body, headers=kept)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            host, port = runner.addresses[0][:2]
            yield f"http://{host}:{port}"
        finally:
            await runner.cleanup()


@dataclass
class FloorRow:
    """A path and its floor, sampled interleaved."""

    path: str
    floor: str
    path_samples: list[float]
    floor_samples: list[float]
    #: The goal: the path's median at most this many times the floor's.
    goal: float = 1.3


def floor_table(rows: Sequence[FloorRow]) -> str:
    """A markdown table of each path against its floor (median / p99, ms)."""
    lines = [
        "| path | floor | path ms | floor ms | median ÷ floor | p99 ÷ floor | goal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        path, floor = stats(row.path_samples), stats(row.floor_samples)
        ratio = path[0] / floor[0]
        verdict = "met" if ratio <= row.goal else "missed"
        lines.append(
            f"| {row.path} | {row.floor} | {path[0]:.2f} / {path[1]:.2f} "
            f"| {floor[0]:.2f} / {floor[1]:.2f} "
            f"| {ratio:.2f} | {path[1] / floor[1]:.2f} | ≤ {row.goal:g} ({verdict}) |"
        )
    return "\n".join(lines)
