"""InvokeAsync throughput and submit-to-complete latency, beside sync Invoke
of the same handler, on a platform this script starts itself.

    .venv/bin/python bench/async_executions.py [--executions 1000] [--workers 4]

Prints medians and p99s; every figure comes from this one run on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform, private_state_dir
from tests.support import deploy_python, stub_for, wait_terminal

HANDLER = b"""
def handler(payload, ctx):
    return {"echo": payload.decode()}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with LocalPlatform(
        private_state_dir("ignite-bench-"),
        gateway_port=None,
        server_args=("--workers", str(args.workers)),
    ) as platform:
        stub = stub_for(platform.grpc_target)
        deploy_python(stub, "bench", "echo", HANDLER, max_concurrency=32)
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
            list(pool.map(sync_call, range(args.executions)))
        sync_rate = args.executions / (time.perf_counter() - start)

        def submit(n: int) -> str:
            return stub.InvokeAsync(
                compute.InvokeAsyncRequest(
                    organization_name="bench", app_name="echo", body=b"%d" % n
                )
            ).execution_id

        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            ids = list(pool.map(submit, range(args.executions)))
        submitted = time.perf_counter() - start
        done = wait_terminal(stub, "bench", ids, timeout=600)
        last = max(e.completed_at_ms for e in done.values())
        first = min(e.created_at_ms for e in done.values())
        async_rate = args.executions / ((last - first) / 1000)
        latency = [float(e.completed_at_ms - e.created_at_ms) for e in done.values()]
        failed = sum(1 for e in done.values() if e.status != 3)

    print(f"{args.executions} executions, {args.workers} workers, handler echoes its payload\n")
    print(f"| {'measure':<44} | {'value':>10} |")
    print(f"|{'-' * 46}|{'-' * 12}|")
    rows = [
        ("sync Invoke latency, median (ms)", statistics.median(sync_latency)),
        ("sync Invoke latency, p99 (ms)", pct(sync_latency, 0.99)),
        ("sync Invoke throughput, 32 callers (req/s)", sync_rate),
        ("InvokeAsync submit rate, 32 callers (req/s)", args.executions / submitted),
        ("InvokeAsync completed per second", async_rate),
        ("submit-to-complete, median (ms)", statistics.median(latency)),
        ("submit-to-complete, p99 (ms)", pct(latency, 0.99)),
        ("async / sync throughput ratio", async_rate / sync_rate),
        ("failed executions", failed),
    ]
    for name, value in rows:
        print(f"| {name:<44} | {value:>10.1f} |")


if __name__ == "__main__":
    main()
