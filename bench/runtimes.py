"""The same greeting handler in every runtime (Python, Go, Rust, Deno), side by
side on one platform: build time, cold start, warm latency and throughput.

The script starts the whole platform itself (ignite_launcher's
LocalPlatform in a fresh state directory, no HTTP gateway) and drives it only
through the public gRPC API:

- build: wall time of CompileDraft + PublishDraft (Rust must be compiled
  explicitly) for a fresh platform, so every build cache is empty. Python is
  tests/support.SEED_HANDLER sent as one source file; Go, Rust and Deno are
  runtimes/<lang>/examples/hello uploaded as tar.gz archives.
- cold start: Invoke from the call to the response's head frame with no pod
  running for the app. Before each sample the app's env is changed with
  UpdateApp (a new version of the same code, made ready by the readiness
  gate) and the gate's pod is let go (a one-second scale-down period), so the
  next request has to start one.
- warm: Invoke latency at concurrency 1 (median / p99) and throughput with 8
  callers in flight, all on a single pod per app (max_replicas 1,
  max_concurrency 8) so every runtime is measured on one process.

Samples of the four runtimes are taken in turns (one of each, then the next
round), so background load on the machine spreads over all of them alike.

    .venv/bin/python bench/runtimes.py [--cold 7] [--warm 300] [--throughput 480]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from google.protobuf import field_mask_pb2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ignite_launcher import LocalPlatform, private_state_dir  # noqa: E402
from tests.support import SEED_HANDLER  # noqa: E402

ORG = "bench"
#: Every handler answers "Hello, Ada!" to this body: Python, Go and Deno greet
#: "name"; the Rust example echoes "message".
BODY = b'{"name": "Ada", "message": "Hello, Ada!"}'
EXPECTED = b"Hello, Ada!"
#: Callers in flight for the throughput column; also each pod's
#: max_concurrency, so one pod takes them all without queueing in the server.
CONCURRENCY = 8
#: Sample rounds the warm calls are split into (see the module docstring).
ROUNDS = 3
#: Pause after draining an app before its cold sample: lets the old pod exit
#: and a pre-started pool refill, as between two real cold starts.
SETTLE_SECS = 1.0
#: How long a version's readiness pod may take to scale down (1 s period,
#: the autoscaler's tick, the pod's stop).
COLD_WAIT_SECS = 30.0
#: The cold-start median each runtime should reach, in ms (0 → first byte
#: through gRPC, a pod from the runtime's pre-started pool).
COLD_GOAL_MS = {"Python": 12.0, "Go": 8.0, "Rust": 8.0, "Deno": 40.0}


@dataclass
class Runtime:
    """One runtime's app and what was measured for it."""

    label: str
    app: str
    runtime: common.Runtime
    code: compute.CompileSource
    explicit_compile: bool = False
    build_secs: float = 0.0
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    busy_calls: int = 0
    busy_secs: float = 0.0


def archive(directory: Path) -> bytes:
    """The project directory as a tar.gz with its files at the archive's root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(directory).as_posix())
    return buffer.getvalue()


def runtimes() -> list[Runtime]:
    examples = ROOT / "runtimes"
    cases: list[Runtime] = [
        Runtime(
            "Python",
            "hello-python",
            common.Runtime(python={}),
            compute.CompileSource(runtime=common.Runtime(python={}), source_code=SEED_HANDLER),
        )
    ]
    for label, kind in (("Go", "go"), ("Rust", "rust"), ("Deno", "deno")):
        spec = common.Runtime(**{kind: {}})
        cases.append(
            Runtime(
                label,
                f"hello-{kind}",
                spec,
                compute.CompileSource(
                    runtime=spec, archive=archive(examples / kind / "examples" / "hello")
                ),
                explicit_compile=kind == "rust",
            )
        )
    return cases


def median_p99(samples: list[float]) -> tuple[float, float]:
    """(median, p99) in milliseconds."""
    ms = sorted(s * 1000 for s in samples)
    return statistics.median(ms), statistics.quantiles(ms, n=100, method="inclusive")[98]


class Bench:
    """The gRPC calls the measurements are made of."""

    def __init__(self, stub: compute_grpc.ComputeServiceStub) -> None:
        self.stub = stub

    async def deploy(self, case: Runtime) -> None:
        """Create the app and publish its code; record the build's wall time."""
        await self.stub.CreateApp(
            compute.CreateAppRequest(
                organization_name=ORG,
                name=case.app,
                runtime=case.runtime,
                max_concurrency=CONCURRENCY,
                # Scale-down after 1 s while cold starts are sampled (see drain).
                scaling=common.ScalingConfig(max_replicas=1, scaledown_period_secs=1),
                env={"BENCH_SAMPLE": "0"},
            )
        )
        await self.stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=ORG, app_name=case.app, code=compute.CodeSource(compile=case.code)
            )
        )
        started = time.perf_counter()
        if case.explicit_compile:
            compiled = await self.stub.CompileDraft(
                compute.CompileDraftRequest(organization_name=ORG, app_name=case.app),
                timeout=900,
            )
            if compiled.draft.status == common.VERSION_STATUS_FAILED:
                raise RuntimeError(f"{case.label} build failed:\n{compiled.build_log}")
        await self.stub.PublishDraft(
            compute.PublishDraftRequest(organization_name=ORG, app_name=case.app), timeout=900
        )
        case.build_secs = time.perf_counter() - started

    def request(self, case: Runtime) -> compute.InvokeRequest:
        return compute.InvokeRequest(
            organization_name=ORG,
            app_name=case.app,
            http=common.HttpContext(method=common.HTTP_METHOD_POST, path="/"),
            body=BODY,
        )

    async def invoke(self, case: Runtime) -> float:
        """One Invoke: seconds to the head frame; the answer is checked."""
        started = time.perf_counter()
        head_at = 0.0
        status = 0
        body = b""
        async for frame in self.stub.Invoke(self.request(case), timeout=120):
            kind = frame.WhichOneof("frame")
            if kind == "head":
                head_at = time.perf_counter() - started
                status = frame.head.status_code
            elif kind == "chunk":
                body += frame.chunk.data
        if status != 200 or EXPECTED not in body:
            raise RuntimeError(f"{case.label} answered {status}: {body[:300]!r}")
        return head_at

    async def drain(self, case: Runtime, sample: int) -> None:
        """Change the app's env, then wait until the new version's readiness
        pod scaled down: the next request starts a pod."""
        await self.stub.UpdateApp(
            compute.UpdateAppRequest(
                organization_name=ORG,
                app_name=case.app,
                app=common.AppMeta(env={"BENCH_SAMPLE": str(sample)}),
                update_mask=field_mask_pb2.FieldMask(paths=["env"]),
            )
        )
        deadline = time.monotonic() + COLD_WAIT_SECS
        while True:
            got = await self.stub.GetApp(
                compute.GetAppRequest(organization_name=ORG, app_name=case.app)
            )
            if got.app.ready_replicas == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{case.label}: the readiness pod did not scale down")
            await asyncio.sleep(0.1)

    async def keep_warm(self, case: Runtime) -> None:
        """Back to the default scale-down period (in place, no new version),
        so that pods stay between the warm measurements."""
        await self.stub.UpdateApp(
            compute.UpdateAppRequest(
                organization_name=ORG,
                app_name=case.app,
                app=common.AppMeta(
                    scaling=common.ScalingConfig(max_replicas=1, scaledown_period_secs=300)
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["scaling"]),
            )
        )

    async def load(self, case: Runtime, callers: int, calls: int) -> tuple[list[float], float]:
        """Latencies of ``calls`` Invokes made by ``callers`` workers, and the wall time."""
        latencies: list[float] = []
        per_worker = max(1, calls // callers)

        async def worker() -> None:
            for _ in range(per_worker):
                started = time.perf_counter()
                async for _frame in self.stub.Invoke(self.request(case), timeout=60):
                    pass
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(callers)))
        return latencies, time.perf_counter() - started


async def measure(target: str, cases: list[Runtime], args: argparse.Namespace) -> None:
    async with grpc.aio.insecure_channel(
        target, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    ) as channel:
        bench = Bench(compute_grpc.ComputeServiceStub(channel))  # type: ignore[no-untyped-call]
        # Builds one after another, so no build shares the CPUs with another.
        for case in cases:
            print(f"building {case.label} ...", file=sys.stderr, flush=True)
            await bench.deploy(case)
            await bench.invoke(case)  # the answer is right before anything is timed
            print(f"  {case.build_secs:.2f} s", file=sys.stderr, flush=True)

        # Cold starts. N apps per runtime would mean N builds (a Rust rebuild
        # alone takes seconds). Changing the env instead makes a new version
        # of the same artifact; once its readiness pod scaled down (a one-
        # second period), the sample pays exactly what a request after
        # scale-to-zero pays (pod start, the runtime's own start-up, the
        # first request), plus one store lookup of the app's settings, which
        # a request after a long idle pays too.
        print("cold starts ...", file=sys.stderr, flush=True)
        for sample in range(1, args.cold + 1):
            for case in cases:
                await bench.drain(case, sample)
                await asyncio.sleep(SETTLE_SECS)
                case.cold.append(await bench.invoke(case))

        print("warm calls ...", file=sys.stderr, flush=True)
        for case in cases:
            await bench.keep_warm(case)
        for case in cases:  # the pod of the last cold sample, and its connections
            await bench.load(case, 1, 20)
            await bench.load(case, CONCURRENCY, CONCURRENCY * 5)
        for _ in range(ROUNDS):
            for case in cases:
                latencies, _secs = await bench.load(case, 1, args.warm // ROUNDS)
                case.warm += latencies
            for case in cases:
                done, secs = await bench.load(case, CONCURRENCY, args.throughput // ROUNDS)
                case.busy_calls += len(done)
                case.busy_secs += secs


def report(cases: list[Runtime], args: argparse.Namespace, load: tuple[float, float]) -> None:
    python = cases[0]
    py_cold = statistics.median(python.cold)
    py_warm = statistics.median(python.warm)
    py_rps = python.busy_calls / python.busy_secs
    header = (
        "runtime",
        "build (publish, cold caches)",
        "cold start, median / max (ms)",
        "cold goal (ms)",
        "warm latency, c=1, median / p99 (ms)",
        f"warm throughput, c={CONCURRENCY} (req/s)",
        "cold ÷ Python",
        "warm ÷ Python",
        "req/s ÷ Python",
    )
    rows = [header]
    for case in cases:
        cold_ms = sorted(s * 1000 for s in case.cold)
        goal = COLD_GOAL_MS[case.label]
        met = "met" if statistics.median(cold_ms) <= goal else "missed"
        warm_median, warm_p99 = median_p99(case.warm)
        rps = case.busy_calls / case.busy_secs
        rows.append(
            (
                case.label,
                f"{case.build_secs:.{2 if case.build_secs < 10 else 1}f} s",
                f"{statistics.median(cold_ms):.1f} / {cold_ms[-1]:.1f}",
                f"≤ {goal:g} ({met})",
                f"{warm_median:.2f} / {warm_p99:.2f}",
                f"{rps:.0f}",
                f"{statistics.median(case.cold) / py_cold:.2f}",
                f"{statistics.median(case.warm) / py_warm:.2f}",
                f"{rps / py_rps:.2f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for row in [rows[0], tuple("-" * w for w in widths), *rows[1:]]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(
        f"\nHow: one platform (server + embedded PostgreSQL, no gateway) in a fresh state"
        f" directory, driven over gRPC from this process. build = CompileDraft + PublishDraft"
        f" wall time with empty build caches, one build at a time. cold = Invoke to the head"
        f" frame after an env change drained the app's pods ({args.cold} samples per runtime,"
        f" {SETTLE_SECS:g} s apart; pods come from the platform's pre-started pools: Python and"
        f" Deno load the app, Go and Rust exec their binary in the pre-started sandbox; goal ="
        f" the median each runtime should reach). warm = {len(python.warm)} Invokes one at a"
        f" time, then {python.busy_calls} with {CONCURRENCY} in flight, on one pod per app"
        f" (max_replicas 1, max_concurrency {CONCURRENCY}). Runtimes are sampled in turns."
        f" Ratios compare medians (throughput: req/s) with Python's."
        f"\nMachine: {os.cpu_count()} CPUs; load average {load[0]:.2f} at the start,"
        f" {load[1]:.2f} at the end (1 min)."
    )


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cold", type=int, default=7, help="cold starts per runtime")
    parser.add_argument("--warm", type=int, default=300, help="warm calls at concurrency 1")
    parser.add_argument(
        "--throughput", type=int, default=480, help=f"warm calls with {CONCURRENCY} in flight"
    )
    args = parser.parse_args()
    if args.cold < 1 or args.warm < 2 * ROUNDS or args.throughput < CONCURRENCY * ROUNDS:
        parser.error(
            f"need --cold >= 1, --warm >= {2 * ROUNDS}, --throughput >= {CONCURRENCY * ROUNDS}"
        )
    cases = runtimes()
    load_before = os.getloadavg()[0]
    state = private_state_dir("ignite-bench-")
    with LocalPlatform(state, gateway_port=None) as platform:
        try:
            asyncio.run(measure(platform.grpc_target, cases, args))
        except BaseException:
            print(f"the platform's logs are kept in {platform.log_dir}", file=sys.stderr)
            raise
    shutil.rmtree(state, ignore_errors=True)  # build caches: hundreds of MB
    report(cases, args, (load_before, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
