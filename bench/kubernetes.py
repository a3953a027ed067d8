"""The Kubernetes backend beside the local one: prints one table.

Both platforms are started here (ignite_launcher.LocalPlatform, gRPC, seed
000's handler, ``scaledown_period_secs`` 1); the Kubernetes one with
``--backend kubernetes`` on the test bed, which must be up (``make
testbed-up``; ``make runtime-images LOAD=1``). Rows:

* publish to ready: PublishDraft's wall time, which returns once a pod of
  the new version answers its health check (the readiness gate; on the
  cluster this includes creating its Deployment, Service, NetworkPolicy and
  ScaledObject and KEDA taking the ScaledObject up);
* cold start from zero: Invoke to the first byte once the version went back
  to zero pods (COLD), median / max of ``--cold`` samples;
* warm latency, concurrency 1: median / p99 of ``--warm`` Invokes.

    .venv/bin/python bench/kubernetes.py [--cold 5] [--warm 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ignite_launcher.platform import LocalPlatform
from ignite_launcher.state import private_state_dir
from tests.support import SEED_HANDLER, deploy_python, stub_for, unique_name
from tests.testbed.bed import read_env_file

TESTBED_ENV = Path("/tmp/ignite-testbed/testbed.env")
#: Longest wait for a version to go back to zero pods (period + KEDA's
#: cooldown + pod termination).
COLD_WAIT_SECS = 120


def _first_byte(stub: Any, org: str, app: str) -> float:
    started = time.perf_counter()
    for _frame in stub.Invoke(
        compute.InvokeRequest(organization_name=org, app_name=app, body=b"{}"), timeout=120
    ):
        elapsed = time.perf_counter() - started
        break
    else:
        raise RuntimeError("no answer")
    return elapsed * 1000


def _wait_cold(stub: Any, org: str, app: str) -> None:
    deadline = time.monotonic() + COLD_WAIT_SECS
    while time.monotonic() < deadline:
        got = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name=app)).app
        if got.deployment_state == common.DEPLOYMENT_STATE_COLD:
            return
        time.sleep(0.25)
    raise TimeoutError("the app did not scale to zero")


def measure(platform: LocalPlatform, cold: int, warm: int) -> dict[str, str]:
    stub = stub_for(platform.grpc_target)
    org = unique_name("bench")
    started = time.perf_counter()
    deploy_python(stub, org, "greet", SEED_HANDLER, scaling={"scaledown_period_secs": 1})
    first = (time.perf_counter() - started) * 1000
    colds = []
    for _ in range(cold):
        _wait_cold(stub, org, "greet")
        time.sleep(0.5)
        colds.append(_first_byte(stub, org, "greet"))
    warms = []
    for _ in range(warm):
        started = time.perf_counter()
        list(
            stub.Invoke(
                compute.InvokeRequest(organization_name=org, app_name="greet", body=b"{}"),
                timeout=60,
            )
        )
        warms.append((time.perf_counter() - started) * 1000)
    warms.sort()
    return {
        "first": f"{first:.0f}",
        "cold": f"{statistics.median(colds):.0f} / {max(colds):.0f}",
        "warm": f"{statistics.median(warms):.1f} / {warms[int(len(warms) * 0.99) - 1]:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cold", type=int, default=5)
    parser.add_argument("--warm", type=int, default=200)
    args = parser.parse_args()
    bed = read_env_file(TESTBED_ENV)
    results = {}
    with LocalPlatform(private_state_dir("bench-local-"), gateway_port=None) as local:
        results["local"] = measure(local, args.cold, args.warm)
    k8s_args = (
        "--backend", "kubernetes", "--kubeconfig", bed["KUBECONFIG"],
        "--artifact-listen", f"{bed['TESTBED_HOST_IP']}:0", "--keda-scaler-listen", "127.0.0.1:0",
    )  # fmt: skip
    with LocalPlatform(
        private_state_dir("bench-k8s-"), gateway_port=None, server_args=k8s_args
    ) as cluster:
        results["kubernetes"] = measure(cluster, args.cold, args.warm)
    print("| measurement | local backend | Kubernetes backend (test bed) |")
    print("| --- | --- | --- |")
    for key, label in (
        ("first", "create, save and publish to ready, a new app (ms)"),
        ("cold", "cold start from zero pods, median / max (ms)"),
        ("warm", "warm latency, concurrency 1, median / p99 (ms)"),
    ):
        print(f"| {label} | {results['local'][key]} | {results['kubernetes'][key]} |")


if __name__ == "__main__":
    main()
