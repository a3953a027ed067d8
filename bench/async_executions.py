"""InvokeAsync throughput and submit-to-complete latency, beside sync Invoke
of the same handler, on a platform this script starts itself.

    .venv/bin/python bench/async_executions.py [--executions 1000] [--workers 32]

Two async measures, because a run of InvokeAsync calls is limited by
whichever is slower, the callers submitting or the workers draining:

- **end to end**: executions submitted by 32 callers while the workers run
  them, from the first submit to the last completion;
- **backlog drain**: the same number submitted to a server with no
  workers, then drained by a server with ``--workers`` slots; from its
  first completion (after the pod's cold start) to its last.

The drain's floor is the pod answering the same request straight on its
unix socket, ``--workers`` callers at once, with no platform in between.
Prints medians and p99s; every figure comes from this one run on this
machine; the run is bounded by ``--executions`` and a 10-minute wait.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from floors import FLOOR_EXECUTION_ID

from ignite_launcher import LocalPlatform, private_state_dir
from ignite_server.ports.pod_protocol import EXECUTION_ID_HEADER
from tests.support import deploy_python, stub_for

HANDLER = b"""
def handler(payload, ctx):
    return {"echo": payload.decode()}
"""
#: The longest any phase waits for its executions.
WAIT_SECS = 600
_UNFINISHED = (common.EXECUTION_STATUS_PENDING, common.EXECUTION_STATUS_RUNNING)

#: The performance goal: executions completed per second (echo handler).
GOAL_PER_SECOND = 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def submit_all(stub: Any, org: str, n: int) -> float:
    """Submit ``n`` echo executions from 32 callers; the submit rate."""

    def submit(i: int) -> None:
        stub.InvokeAsync(
            compute.InvokeAsyncRequest(organization_name=org, app_name="echo", body=b"%d" % i)
        )

    start = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(submit, range(n)))
    return n / (time.perf_counter() - start)


def wait_drained(stub: Any, org: str, n: int) -> list[Any]:
    """Wait until none of ``org``'s executions is pending or running (two
    calls a poll, so the wait costs the server next to nothing); all ``n``."""
    deadline = time.monotonic() + WAIT_SECS
    while any(
        stub.ListExecutions(
            compute.ListExecutionsRequest(organization_name=org, status=status, page_size=1)
        ).executions
        for status in _UNFINISHED
    ):
        assert time.monotonic() < deadline, "executions never finished"
        time.sleep(0.05)
    executions: list[Any] = []
    token = ""
    while True:
        page = stub.ListExecutions(
            compute.ListExecutionsRequest(organization_name=org, page_size=500, page_token=token)
        )
        executions += page.executions
        token = page.next_page_token
        if not token:
            break
    assert len(executions) == n, (len(executions), n)
    return executions


async def live_pod(state_dir: Path) -> Path:
    """The socket of a pod that answers its health check."""
    for socket in sorted((state_dir / "pods").glob("*/run/pod.sock")):
        connector = aiohttp.UnixConnector(path=str(socket))
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                async with session.get("http://pod/_ignite/health") as resp:
                    if resp.status == 200:
                        return socket
            except aiohttp.ClientError:
                continue
    raise RuntimeError("no live pod found")


async def pod_floor(state_dir: Path, n: int, concurrency: int) -> float:
    """Requests per second one pod answers straight on its socket."""
    socket = await live_pod(state_dir)
    headers = {EXECUTION_ID_HEADER: FLOOR_EXECUTION_ID}
    connector = aiohttp.UnixConnector(path=str(socket), limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        remaining = n

        async def caller() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.post("http://pod/", data=b"x", headers=headers) as resp:
                    await resp.read()

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args()
    n = args.executions
    with_workers = ("--workers", str(args.workers))
    with LocalPlatform(
        private_state_dir("ignite-bench-"), gateway_port=None, server_args=with_workers
    ) as platform:
        stub = stub_for(platform.grpc_target)
        deploy_python(stub, "bench", "echo", HANDLER, max_concurrency=32)
        deploy_python(stub, "backlog", "echo", HANDLER, max_concurrency=32)
        request = compute.InvokeRequest(organization_name="bench", app_name="echo", body=b"x")
        for _ in range(50):  # warm: a pod is up
            list(stub.Invoke(request))

        def sync_call(_: int) -> float:
            start = time.perf_counter()
            list(stub.Invoke(request))
            return (time.perf_counter() - start) * 1000

        sync_latency = [sync_call(0) for _ in range(300)]
        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(sync_call, range(n)))
        sync_rate = n / (time.perf_counter() - start)

        # End to end: submitted while the workers run them.
        submit_rate = submit_all(stub, "bench", n)
        done = wait_drained(stub, "bench", n)
        last = max(e.completed_at_ms for e in done)
        first = min(e.created_at_ms for e in done)
        async_rate = n / ((last - first) / 1000)
        latency = [float(e.completed_at_ms - e.created_at_ms) for e in done]
        failed = sum(1 for e in done if e.status != common.EXECUTION_STATUS_COMPLETED)

        # Backlog drain: queued by a server with no workers, drained by one with.
        platform.server_args = ("--workers", "0")
        platform.restart_server()
        stub = stub_for(platform.grpc_target)
        submit_all(stub, "backlog", n)
        platform.server_args = with_workers
        platform.restart_server()
        stub = stub_for(platform.grpc_target)
        drained = wait_drained(stub, "backlog", n)
        completions = sorted(e.completed_at_ms for e in drained)
        drain_rate = (n - 1) / ((completions[-1] - completions[0]) / 1000)
        failed += sum(1 for e in drained if e.status != common.EXECUTION_STATUS_COMPLETED)
        floor_rate = asyncio.run(pod_floor(platform.state_dir, n, args.workers))

    print(f"{n} executions, {args.workers} workers, handler echoes its payload\n")
    print(f"| {'measure':<52} | {'value':>10} |")
    print(f"|{'-' * 54}|{'-' * 12}|")
    rows = [
        ("sync Invoke latency, median (ms)", statistics.median(sync_latency)),
        ("sync Invoke latency, p99 (ms)", pct(sync_latency, 0.99)),
        ("sync Invoke throughput, 32 callers (req/s)", sync_rate),
        ("InvokeAsync submit rate, 32 callers (req/s)", submit_rate),
        ("InvokeAsync completed per second, end to end", async_rate),
        ("submit-to-complete, median (ms)", statistics.median(latency)),
        ("submit-to-complete, p99 (ms)", pct(latency, 0.99)),
        ("async / sync throughput ratio", async_rate / sync_rate),
        ("InvokeAsync completed per second, backlog drain", drain_rate),
        (f"floor: the pod straight, {args.workers} callers (req/s)", floor_rate),
        ("backlog drain / floor", drain_rate / floor_rate),
        ("failed executions", failed),
    ]
    for name, value in rows:
        print(f"| {name:<52} | {value:>10.2f} |")
    verdict = "met" if drain_rate >= GOAL_PER_SECOND else "missed"
    print(
        f"\ngoal: >= {GOAL_PER_SECOND} executions completed per second on 2 cores: "
        f"{drain_rate:.0f} (backlog drain) — {verdict}"
    )


if __name__ == "__main__":
    main()
