"""What the HTTP edge costs: invoke latency and throughput through
ignite-gateway, against gRPC Invoke and against calling the pod itself.

Starts a local platform (its own PostgreSQL, server, gateway), publishes
seed 000's greeter, warms it, then measures four ways to run the same
request (`POST /` with `{"name": "Ada"}`):

- **pod**: HTTP/1.1 straight to the pod's unix socket (no platform at all);
- **grpc**: the `Invoke` RPC on the server (what gRPC clients pay);
- **http /invoke**: the gateway's `/v1/ignite/app/{org}/{app}/invoke`;
- **app URL**: the gateway's direct URL (`Host: greet-<org>.ignite.localhost`).

Its floor, **bare aiohttp proxy**: an aiohttp reverse proxy in this process
forwarding each request to the same pod's socket (bench/floors.py); the app
URL and the floor are also timed interleaved, call by call, for the
app URL ÷ floor ratio.

Latency: sequential requests on one warm connection, median and p99.
Throughput: a fixed number of requests kept `--concurrency` deep.
Ratios are to grpc and to pod (latency: how many times slower; throughput:
the fraction kept).

    .venv/bin/python bench/http_edge.py [--requests 300] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from floors import FloorRow, floor_table, interleaved, proxy_floor, stats

from ignite_launcher import LocalPlatform, temporary_platform
from tests.support import SEED_HANDLER, python_source, unique_name

PAYLOAD = b'{"name": "Ada"}'
Call = Callable[[], Awaitable[None]]


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


async def _latency(call: Call, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), _percentile(samples, 0.99)


async def _throughput(call: Call, count: int, concurrency: int) -> float:
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


def _publish(platform: LocalPlatform, org: str, app: str) -> None:
    channel = grpc.insecure_channel(platform.grpc_target)
    stub = compute_grpc.ComputeServiceStub(channel)
    stub.CreateApp(compute.CreateAppRequest(organization_name=org, name=app))
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name=app, code=python_source(SEED_HANDLER)
        )
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name=app))
    channel.close()


async def _find_pod_socket(state_dir: Path) -> Path:
    """The socket of the pod that serves the app (the one loaded pod)."""
    for socket in sorted((state_dir / "pods").glob("*/run/pod.sock")):
        connector = aiohttp.UnixConnector(path=str(socket))
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get("http://pod/_ignite/health") as resp,
        ):
            if resp.status == 200:
                return socket
    raise RuntimeError("no loaded pod found; did the warm-up invoke run?")


async def run(args: argparse.Namespace) -> tuple[dict[str, dict[str, float]], FloorRow]:
    with temporary_platform() as platform:
        org, app = unique_name("bench"), "greet"
        _publish(platform, org, app)
        envelope = json.dumps(
            {
                "http": {
                    "method": "HTTP_METHOD_POST",
                    "path": "/",
                    "headers": {"content-type": "application/json"},
                },
                "body": base64.b64encode(PAYLOAD).decode(),
            }
        ).encode()
        request = compute.InvokeRequest(
            organization_name=org,
            app_name=app,
            http=common.HttpContext(
                method=common.HTTP_METHOD_POST,
                path="/",
                headers={"content-type": "application/json"},
            ),
            body=PAYLOAD,
        )
        limit = aiohttp.TCPConnector(limit=args.concurrency)
        async with (
            aiohttp.ClientSession(connector=limit) as http,
            grpc.aio.insecure_channel(platform.grpc_target) as channel,
        ):
            stub = compute_grpc.ComputeServiceStub(channel)

            async def via_grpc() -> None:
                async for _ in stub.Invoke(request):
                    pass

            async def via_http_invoke() -> None:
                async with http.post(
                    f"{platform.http_url}/v1/ignite/app/{org}/{app}/invoke",
                    data=envelope,
                    headers={"Content-Type": "application/json"},
                ) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

            async def post_app(base_url: str) -> None:
                async with http.post(
                    f"{base_url}/",
                    data=PAYLOAD,
                    headers={
                        "Host": platform.app_host(org, app),
                        "Content-Type": "application/json",
                    },
                ) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

            async def via_app_url() -> None:
                await post_app(platform.http_url)

            await via_grpc()  # cold start, then warm
            socket = await _find_pod_socket(platform.state_dir)
            pod_session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(socket), limit=args.concurrency)
            )

            async def via_pod() -> None:
                async with pod_session.post(
                    "http://pod/",
                    data=PAYLOAD,
                    headers={
                        "Content-Type": "application/json",
                        "X-Ignite-Execution-Id": "01BENCHMARK0000000000000000",
                    },
                ) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

            results: dict[str, dict[str, float]] = {}
            try:
                async with proxy_floor(socket) as floor_url:

                    async def via_floor() -> None:
                        await post_app(floor_url)

                    paths: dict[str, Call] = {
                        "pod": via_pod,
                        "grpc": via_grpc,
                        "http /invoke": via_http_invoke,
                        "app URL": via_app_url,
                        "bare aiohttp proxy": via_floor,
                    }
                    for name, call in paths.items():
                        for _ in range(20):
                            await call()
                        median, p99 = await _latency(call, args.requests)
                        rate = await _throughput(call, args.requests, args.concurrency)
                        results[name] = {"median_ms": median, "p99_ms": p99, "rps": rate}
                    samples = await interleaved(
                        {"app URL": via_app_url, "floor": via_floor}, args.requests
                    )
            finally:
                await pod_session.close()
        floor = FloorRow(
            "direct app URL",
            "bare aiohttp reverse proxy to the pod",
            samples["app URL"],
            samples["floor"],
        )
        return results, floor


def _table(results: dict[str, dict[str, float]], floor: FloorRow, args: argparse.Namespace) -> str:
    grpc_row, pod_row = results["grpc"], results["pod"]
    lines = [
        f"Invoke through the HTTP edge ({args.requests} requests per path; "
        f"throughput {args.concurrency} in flight)",
        "",
        "Ratios: latency as times the reference, throughput as the fraction of it.",
        "",
        "| path | median ms | p99 ms | req/s | median/grpc | median/pod "
        "| p99/grpc | p99/pod | req/s/grpc | req/s/pod |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['median_ms']:.2f} | {row['p99_ms']:.2f} | {row['rps']:.0f} "
            f"| {row['median_ms'] / grpc_row['median_ms']:.2f} "
            f"| {row['median_ms'] / pod_row['median_ms']:.2f} "
            f"| {row['p99_ms'] / grpc_row['p99_ms']:.2f} "
            f"| {row['p99_ms'] / pod_row['p99_ms']:.2f} "
            f"| {row['rps'] / grpc_row['rps']:.2f} | {row['rps'] / pod_row['rps']:.2f} |"
        )
    lines += [
        "",
        f"Against its floor, interleaved call by call ({args.requests} each; median / p99):",
        "",
        floor_table([floor]),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per path and phase")
    parser.add_argument("--concurrency", type=int, default=8, help="in flight for throughput")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results, floor = asyncio.run(run(args))
    if args.json:
        floor_ms = {"path_ms": stats(floor.path_samples), "floor_ms": stats(floor.floor_samples)}
        print(json.dumps({"paths": results, floor.path + " ÷ floor": floor_ms}, indent=2))
    else:
        print(_table(results, floor, args))


if __name__ == "__main__":
    main()
