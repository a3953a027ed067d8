"""Invocation benchmark: prints a table of medians and p99s.

Rows: Python cold start (no pod → first byte of the answer) beside running
the same handler in a fresh ``python`` process; warm invocation latency and
throughput at concurrency 1 and 32 beside HTTP sent straight to the pod's
unix socket. The "Activator" column drives core/activator.py in-process
(sandboxed pods, pre-started pool); the "gRPC Invoke" column runs the whole
platform (ignite_launcher.LocalPlatform: embedded PostgreSQL, server)
and calls ``ComputeService/Invoke`` on a published app. Ratios are against
the baseline.

    .venv/bin/python bench/invoke.py [--cold 20] [--warm 320] [--no-grpc]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from floors import FloorRow, answer_frames, floor_table, grpc_floor, interleaved, stats
from ulid import ULID

from ignite_server.backends.local import LocalBackend
from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.python import PythonPipeline, default_interpreter
from ignite_server.core.activator import Activator
from ignite_server.domain.models import (
    App,
    CodeKind,
    DeploymentMode,
    InvocationRequest,
    Limits,
    Resources,
    ResourceTier,
    ResponseHead,
    RunTarget,
    RuntimeKind,
    RuntimeSpec,
    ScaleMetric,
    Scaling,
    StorageMode,
    Version,
    VersionStatus,
)
from ignite_server.ports.build_pipeline import BuildRequest

GREET = """import json
from datetime import datetime, timezone

def handler(payload, ctx):
    event = json.loads(payload) if payload else {}
    return {
        "greeting": f"Hello, {event.get('name', 'world')}!",
        "execution_id": ctx.get("execution_id", ""),
        "function_id": ctx.get("function_id", ""),
        "received_at": datetime.now(timezone.utc).isoformat(),
    }
"""
BODY = b'{"name": "Ada"}'
#: The high concurrency row; one pod takes all of it so both columns
#: measure the same single process.
HIGH_CONCURRENCY = 32


def target(artifact: Path, name: str, max_concurrency: int) -> RunTarget:
    spec = RuntimeSpec(RuntimeKind.PYTHON, "3.11")
    app = App(
        organization="bench", name=name, runtime=spec, tier=ResourceTier.SMALL,
        limits=Limits(),
        scaling=Scaling(1, 0, 0, ScaleMetric.CONCURRENCY, 300),
        env={}, storage_mode=StorageMode.PERSISTENT, ttl_seconds=0, description="",
        input_schema="", output_schema="", mcp_enabled=False,
        max_concurrency=max_concurrency, allow_unauthenticated=True, active_version=1,
        code_kind=CodeKind.SDK, deployment_mode=DeploymentMode.COMPILATION, image_ref="",
        created_at_ms=0, updated_at_ms=0,
    )  # fmt: skip
    version = Version("bench", name, 1, VersionStatus.ACTIVE, "", CodeKind.SDK, spec, 0, 0)
    return RunTarget(app, version, Resources(256, 1000, 60), artifact)


async def first_byte(invoker: Activator, run: RunTarget) -> float:
    request = InvocationRequest("POST", "/", "", {}, BODY)
    started = time.perf_counter()
    elapsed = 0.0
    async for frame in invoker.invoke(run, request, str(ULID())):
        if isinstance(frame, ResponseHead):
            elapsed = time.perf_counter() - started
    return elapsed


def fresh_process(app_dir: Path) -> float:
    """The same handler run by a new interpreter, to its first output byte."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import handler, json; "
        'sys.stdout.write(json.dumps(handler.handler(b\'{"name": "Ada"}\', {})))'
    )
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(default_interpreter()), "-I", "-S", "-c", code, str(app_dir)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    proc.stdout.read(1)
    elapsed = time.perf_counter() - started
    proc.communicate()
    return elapsed


async def load(
    call: Callable[[], Awaitable[None]], concurrency: int, total: int
) -> tuple[list[float], float]:
    """Latencies of ``total`` calls made by ``concurrency`` workers, and req/s."""
    latencies: list[float] = []
    per_worker = max(1, total // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, len(latencies) / (time.perf_counter() - started)


#: A measured value: (median ms, p99 ms) for latencies, req/s for throughput.
Value = tuple[float, float] | float


@dataclass
class Row:
    """One line of the table."""

    key: str
    name: str
    invoker: Value
    baseline: Value


async def run(cold_runs: int, warm_calls: int) -> list[Row]:
    """The Activator column and the baselines."""
    work = Path(tempfile.mkdtemp(prefix="ignite-bench-"))
    src = work / "src"
    src.mkdir()
    (src / "handler.py").write_text(GREET)
    artifact = work / "artifact"
    artifact.mkdir()
    with BuildSpace.reserved(work / "build-state") as space:
        await PythonPipeline(space).build(
            BuildRequest(RuntimeSpec(RuntimeKind.PYTHON), src, artifact, "bench", print)
        )
    invoker = Activator(LocalBackend(work / "state"), owns_backend=True)
    rows: list[Row] = []
    try:
        await first_byte(invoker, target(artifact, "warmup", 0))  # fills the pool
        cold: list[float] = []
        for _ in range(cold_runs):
            await asyncio.sleep(0.3)  # let the pool refill, as between real cold starts
            cold.append(await first_byte(invoker, target(artifact, f"c{uuid.uuid4().hex[:8]}", 0)))
        fresh = [fresh_process(artifact / "app") for _ in range(cold_runs)]
        rows.append(Row("cold", "cold start, 0 → first byte (ms)", stats(cold), stats(fresh)))

        warm = target(artifact, "warm", HIGH_CONCURRENCY)
        await first_byte(invoker, warm)
        revision = invoker.throttler(warm)
        assert revision is not None and revision.slots
        pod = revision.slots[0].pod
        request = InvocationRequest("POST", "/", "", {}, BODY)

        async def via_invoker() -> None:
            async for _ in invoker.invoke(warm, request, str(ULID())):
                pass

        async with aiohttp.ClientSession(connector=pod.connector()) as session:

            async def direct() -> None:
                async with session.post(
                    pod.base_url + "/", data=BODY, headers={"X-Ignite-Execution-Id": "0"}
                ) as response:
                    await response.read()

            for concurrency in (1, HIGH_CONCURRENCY):
                await load(via_invoker, concurrency, concurrency * 5)  # warm connections
                ours, ours_rps = await load(via_invoker, concurrency, warm_calls)
                base, base_rps = await load(direct, concurrency, warm_calls)
                rows.append(
                    Row(
                        f"latency{concurrency}",
                        f"warm latency, concurrency {concurrency} (ms)",
                        stats(ours),
                        stats(base),
                    )
                )
                rows.append(
                    Row(
                        f"rps{concurrency}",
                        f"warm throughput, concurrency {concurrency} (req/s)",
                        ours_rps,
                        base_rps,
                    )
                )
    finally:
        await invoker.close()
    return rows


async def run_grpc(cold_runs: int, warm_calls: int) -> tuple[dict[str, Value], FloorRow]:
    """The same rows through the platform's gRPC API, and warm Invoke at
    concurrency 1 interleaved with a bare grpc.aio server's answer of the
    same frames (bench/floors.py)."""
    import grpc
    from dodil.ignite.v1 import ignite_compute_pb2 as compute
    from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

    from ignite_launcher import LocalPlatform, private_state_dir

    cells: dict[str, Value] = {}
    with LocalPlatform(private_state_dir("ignite-bench-"), gateway_port=None) as platform:
        async with grpc.aio.insecure_channel(platform.grpc_target) as channel:
            stub = compute_grpc.ComputeServiceStub(channel)  # type: ignore[no-untyped-call]

            async def publish(name: str, scaledown_secs: int = 300) -> None:
                await stub.CreateApp(
                    compute.CreateAppRequest(
                        organization_name="bench",
                        name=name,
                        runtime={"python": {}},
                        max_concurrency=HIGH_CONCURRENCY,
                        scaling={"scaledown_period_secs": scaledown_secs},
                    )
                )
                source = compute.CompileSource(runtime={"python": {}}, source_code=GREET.encode())
                await stub.SaveDraft(
                    compute.SaveDraftRequest(
                        organization_name="bench",
                        app_name=name,
                        code=compute.CodeSource(compile=source),
                    )
                )
                await stub.PublishDraft(
                    compute.PublishDraftRequest(organization_name="bench", app_name=name)
                )

            async def wait_cold(name: str) -> None:
                deadline = time.monotonic() + 30
                while (
                    await stub.GetApp(
                        compute.GetAppRequest(organization_name="bench", app_name=name)
                    )
                ).app.ready_replicas:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name}: the readiness pod did not scale down")
                    await asyncio.sleep(0.1)

            def invoke_request(name: str) -> compute.InvokeRequest:
                return compute.InvokeRequest(
                    organization_name="bench",
                    app_name=name,
                    http={"method": "HTTP_METHOD_POST", "path": "/"},
                    body=BODY,
                )

            async def first_frame(name: str) -> float:
                started = time.perf_counter()
                elapsed = 0.0
                async for frame in stub.Invoke(invoke_request(name)):
                    if frame.WhichOneof("frame") == "head":
                        elapsed = time.perf_counter() - started
                return elapsed

            await publish("warm")
            await first_frame("warm")
            cold = []
            for i in range(cold_runs):
                # The publish returns with a ready pod (the readiness gate);
                # with a one-second scale-down period it goes, and the next
                # request is a cold start.
                await publish(f"cold{i}", scaledown_secs=1)
                await wait_cold(f"cold{i}")
                await asyncio.sleep(0.3)
                cold.append(await first_frame(f"cold{i}"))
            cells["cold"] = stats(cold)

            async def via_grpc() -> None:
                async for _ in stub.Invoke(invoke_request("warm")):
                    pass

            for concurrency in (1, HIGH_CONCURRENCY):
                await load(via_grpc, concurrency, concurrency * 5)
                latencies, rps = await load(via_grpc, concurrency, warm_calls)
                cells[f"latency{concurrency}"] = stats(latencies)
                cells[f"rps{concurrency}"] = rps

            frames = await answer_frames(stub.Invoke(invoke_request("warm")))
            async with (
                grpc_floor(frames) as floor_target,
                grpc.aio.insecure_channel(floor_target) as floor_channel,
            ):
                floor_stub = compute_grpc.ComputeServiceStub(floor_channel)  # type: ignore[no-untyped-call]

                async def via_floor() -> None:
                    async for _ in floor_stub.Invoke(invoke_request("warm")):
                        pass

                samples = await interleaved({"grpc": via_grpc, "floor": via_floor}, warm_calls)
    floor = FloorRow(
        "warm gRPC Invoke, concurrency 1",
        "bare grpc.aio server-streaming call (3 frames)",
        samples["grpc"],
        samples["floor"],
    )
    return cells, floor


def show(value: Value | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, tuple):
        return f"{value[0]:.1f} / {value[1]:.1f}"
    return f"{value:.0f}"


def ratio(value: Value | None, base: Value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, tuple) and isinstance(base, tuple):
        return f"{value[0] / base[0]:.2f} / {value[1] / base[1]:.2f}"
    assert isinstance(value, float) and isinstance(base, float)
    return f"{value / base:.2f}"


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cold", type=int, default=20, help="cold starts to measure")
    parser.add_argument("--warm", type=int, default=320, help="warm calls per row")
    parser.add_argument("--no-grpc", action="store_true", help="skip the gRPC column")
    args = parser.parse_args()
    rows = asyncio.run(run(args.cold, args.warm))
    grpc_cells: dict[str, Value] = {}
    floor: FloorRow | None = None
    if not args.no_grpc:
        try:
            grpc_cells, floor = asyncio.run(run_grpc(max(1, args.cold // 2), args.warm))
        except Exception as exc:  # the column is optional; say why it is empty
            print(f"gRPC column skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
    header = (
        "measurement (median / p99)",
        "Activator",
        "gRPC Invoke",
        "baseline",
        "Activator ÷ baseline",
        "gRPC ÷ baseline",
    )
    lines = [header] + [
        (
            r.name,
            show(r.invoker),
            show(grpc_cells.get(r.key)),
            show(r.baseline),
            ratio(r.invoker, r.baseline),
            ratio(grpc_cells.get(r.key), r.baseline),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for line in [lines[0], tuple("-" * w for w in widths), *lines[1:]]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
    print(
        "\nbaseline: cold = the handler run by a fresh python process; "
        f"warm = HTTP straight to the pod's unix socket; {os.cpu_count()} CPUs"
    )
    if floor is not None:
        print(f"\nAgainst its floor, interleaved call by call ({args.warm} each; median / p99):\n")
        print(floor_table([floor]))


if __name__ == "__main__":
    main()
