"""Apps on a real cluster (the test bed): seed 000 through the gRPC API on a
server with ``--backend kubernetes``, the objects it made as the apiserver
has them, scale to zero and back through KEDA, and deletion."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.backends.kubernetes.conftest import ROOT, Kubectl, assert_hardened
from tests.support import (
    SEED_HANDLER,
    deploy_archive,
    deploy_python,
    error_info,
    invoke,
    python_source,
    read_logs,
    tar_gz,
)

LABEL_APP = "ignite.dodil.io/app"
LABEL_ORG = "ignite.dodil.io/organization"


def _selector(org: str, app: str) -> str:
    return f"{LABEL_ORG}={org},{LABEL_APP}={app}"


def _wait(what: str, check: Any, limit: float = 90.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        time.sleep(every)


def _state(stub: Any, org: str, app: str) -> int:
    got = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name=app))
    return int(got.app.deployment_state)


def test_seed_000_runs_on_the_cluster_in_hardened_pods(
    k8s_stub, org: str, kubectl: Kubectl
) -> None:
    deploy_python(k8s_stub, org, "greet", SEED_HANDLER)
    status, body = invoke(k8s_stub, org, "greet", b'{"name": "Ada"}', timeout=120)
    assert status == 200
    answer = json.loads(body)
    assert answer["greeting"] == "Hello, Ada!"
    assert answer["function_id"] == f"{org}/greet"
    assert _state(k8s_stub, org, "greet") == common.DEPLOYMENT_STATE_DEPLOYED

    selector = _selector(org, "greet")
    [deployment] = kubectl.get("deployments", selector)
    labels = deployment["metadata"]["labels"]
    assert labels[LABEL_ORG] == org and labels[LABEL_APP] == "greet"
    assert labels["ignite.dodil.io/version"] == "1"
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "ConfigMap"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod.get("initContainers", []) + pod["containers"]:
        assert_hardened(container)
        # The standard tier's limits (docs/limits.md).
        assert container["resources"]["limits"]["memory"].endswith("Mi")
        assert container["resources"]["limits"]["cpu"].endswith("m")
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["medium"] == "Memory" and tmp["emptyDir"]["sizeLimit"]
    [service] = kubectl.get("services", selector)
    assert service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    [policy] = kubectl.get("networkpolicies", selector)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    # Egress: the artifact listener (here the host on the bridge) and DNS only.
    to_artifacts, to_dns = policy["spec"]["egress"]
    assert {"ipBlock": {"cidr": "10.244.0.1/32"}} in to_artifacts["to"]
    assert [p["port"] for p in to_artifacts["ports"]] != [53]
    assert {p["port"] for p in to_dns["ports"]} == {53}
    [from_server] = policy["spec"]["ingress"]
    assert from_server["from"] == to_artifacts["to"]
    [scaled] = kubectl.get("scaledobjects.keda.sh", selector)
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "external-push"
    assert scaled["spec"]["maxReplicaCount"] == 10
    assert scaled["spec"]["minReplicaCount"] == 0
    assert scaled["spec"]["cooldownPeriod"] == 300

    # What the handler printed reached the app's logs, with its execution.
    entries = _wait(
        "the handler's print in the logs",
        lambda: [
            e for e in read_logs(k8s_stub, org, app_name="greet") if "greeting Ada" in e.message
        ],
        limit=30,
    )
    assert entries[0].execution_id == answer["execution_id"]


def test_scale_to_zero_and_back_with_one_activation(k8s_stub, org: str, kubectl: Kubectl) -> None:
    deploy_python(
        k8s_stub, org, "cold", SEED_HANDLER, scaling={"scaledown_period_secs": 2, "max_replicas": 1}
    )
    assert invoke(k8s_stub, org, "cold", b"{}", timeout=120)[0] == 200
    selector = _selector(org, "cold")

    def scaled_to_zero() -> bool:
        [deployment] = kubectl.get("deployments", selector)
        return deployment["spec"].get("replicas") == 0 and not deployment["status"].get(
            "readyReplicas"
        )

    _wait("scale to zero", scaled_to_zero, limit=90)
    _wait("no pod left", lambda: not kubectl.get("pods", selector), limit=60)
    assert _state(k8s_stub, org, "cold") == common.DEPLOYMENT_STATE_COLD

    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        results = list(
            pool.map(
                lambda i: invoke(k8s_stub, org, "cold", json.dumps({"name": str(i)}).encode(), 120),
                range(50),
            )
        )
    elapsed = time.monotonic() - started
    assert [status for status, _ in results] == [200] * 50, results
    assert {json.loads(body)["greeting"] for _, body in results} == {
        f"Hello, {i}!" for i in range(50)
    }
    # One activation: the revision's ReplicaSet made exactly one new pod.
    pods = kubectl.get("pods", selector)
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    print(f"50 cold invokes through one activation in {elapsed:.2f}s")


def test_deleting_the_app_leaves_nothing(k8s_stub, org: str, kubectl: Kubectl) -> None:
    deploy_python(k8s_stub, org, "gone", SEED_HANDLER)
    assert invoke(k8s_stub, org, "gone", b"{}", timeout=120)[0] == 200
    selector = _selector(org, "gone")
    kinds = (
        "configmaps,deployments,replicasets,pods,services,networkpolicies,"
        "scaledobjects.keda.sh,horizontalpodautoscalers"
    )
    assert kubectl.get(kinds, selector)
    k8s_stub.DeleteApp(compute.DeleteAppRequest(organization_name=org, app_name="gone"))
    _wait("every object of the app to go", lambda: not kubectl.get(kinds, selector), limit=60)


SLOW_HANDLER = b"""import time

def handler(payload, ctx):
    time.sleep(0.3)
    return {"ok": True}
"""


def test_load_scales_one_to_three_never_more_and_back(k8s_stub, org: str, kubectl: Kubectl) -> None:
    deploy_python(
        k8s_stub,
        org,
        "busy",
        SLOW_HANDLER,
        scaling={"max_replicas": 3, "scale_threshold": 1, "scaledown_period_secs": 2},
    )
    assert invoke(k8s_stub, org, "busy", b"{}", timeout=120)[0] == 200
    selector = _selector(org, "busy")
    stop = threading.Event()
    failures: list[Any] = []

    def caller() -> None:
        while not stop.is_set():
            status, body = invoke(k8s_stub, org, "busy", b"{}", timeout=120)
            if status != 200:
                failures.append((status, body))

    seen_replicas, seen_ready = 0, 0
    with ThreadPoolExecutor(6) as pool:
        for _ in range(6):
            pool.submit(caller)
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and seen_ready < 3:
                [deployment] = kubectl.get("deployments", selector)
                seen_replicas = max(seen_replicas, deployment["spec"].get("replicas") or 0)
                seen_ready = max(seen_ready, deployment["status"].get("readyReplicas") or 0)
                time.sleep(0.5)
            time.sleep(3)  # a little more load at three pods: never a fourth
            [deployment] = kubectl.get("deployments", selector)
            seen_replicas = max(seen_replicas, deployment["spec"].get("replicas") or 0)
        finally:
            stop.set()
    assert not failures
    assert seen_ready == 3
    assert seen_replicas == 3

    def back_to_zero() -> bool:
        [deployment] = kubectl.get("deployments", selector)
        return deployment["spec"].get("replicas") == 0

    _wait("scale back down to zero", back_to_zero, limit=90)


def _invoke_error(stub: Any, org: str, app: str) -> tuple[grpc.StatusCode, str, str]:
    try:
        invoke(stub, org, app, b"{}", timeout=120)
    except grpc.RpcError as err:
        info = error_info(err)
        return err.code(), info.reason if info else "", err.details() or ""  # type: ignore[attr-defined]
    raise AssertionError("the invoke succeeded")


HOG_HANDLER = b"""def handler(payload, ctx):
    hoard = []
    while True:
        hoard.append(bytearray(16 * 1024 * 1024))
"""


def test_a_handler_past_its_memory_limit_is_oomkilled_and_reported(
    k8s_stub, org: str, kubectl: Kubectl
) -> None:
    deploy_python(k8s_stub, org, "hog", HOG_HANDLER, limits={"memory_mb": 128})
    code, reason, _ = _invoke_error(k8s_stub, org, "hog")
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "OUT_OF_MEMORY")

    def oom_killed() -> bool:
        for pod in kubectl.get("pods", _selector(org, "hog")):
            for status in pod["status"].get("containerStatuses", []):
                for state in (status.get("state", {}), status.get("lastState", {})):
                    if state.get("terminated", {}).get("reason") == "OOMKilled":
                        return True
        return False

    _wait("the kubelet's OOMKilled verdict on the pod", oom_killed, limit=30)


def test_a_crash_looping_version_fails_its_publish_with_the_reason(k8s_stub, org: str) -> None:
    try:
        deploy_python(k8s_stub, org, "crash", b"raise RuntimeError('broken at import')\n")
        raise AssertionError("a version that cannot start was published")
    except grpc.RpcError as err:
        info = error_info(err)
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert info is not None and info.reason == "VERSION_NOT_READY"
        details = err.details() or ""  # type: ignore[attr-defined]
    assert "exited with status 1 while starting" in details
    # The container's last words: the runtime's own report of the import.
    assert "handler.py:1: RuntimeError: broken at import" in details
    app = k8s_stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="crash")).app
    assert app.active_version == 0
    code, reason, _ = _invoke_error(k8s_stub, org, "crash")
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_PUBLISHED")


#: Seed 002's handler and module, as shipped in the Go runtime's examples.
GO_EXAMPLE = ROOT / "runtimes" / "go" / "examples" / "hello"


def test_seed_002_go_app_runs_on_the_native_image(k8s_stub, org: str, kubectl: Kubectl) -> None:
    archive = tar_gz(
        {
            "main.go": (GO_EXAMPLE / "main.go").read_bytes(),
            "go.mod": (GO_EXAMPLE / "go.mod").read_bytes(),
        }
    )
    deploy_archive(k8s_stub, org, "hello-go", "go", archive)
    status, body = invoke(k8s_stub, org, "hello-go", b'{"name": "Gopher"}', timeout=120)
    assert status == 200, body
    assert json.loads(body)["greeting"] == "Hello, Gopher!"
    [deployment] = kubectl.get("deployments", _selector(org, "hello-go"))
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ignite.local/runtime/native:1"
    # The native image has no interpreter: an init container fetches the binary.
    [fetch] = deployment["spec"]["template"]["spec"]["initContainers"]
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "code", "mountPath": "/code", "readOnly": True} in container["volumeMounts"]


def _versioned(tag: str) -> bytes:
    return f"def handler(payload, ctx):\n    return {{'version': {tag!r}}}\n".encode()


def test_publish_and_rollback_under_load_lose_nothing(k8s_stub, org: str, kubectl: Kubectl) -> None:
    deploy_python(k8s_stub, org, "roll", _versioned("one"), scaling={"scaledown_period_secs": 2})
    assert invoke(k8s_stub, org, "roll", b"{}", timeout=120)[0] == 200
    stop = threading.Event()
    seen: list[str] = []
    failures: list[Any] = []

    def caller() -> None:
        while not stop.is_set():
            try:
                status, body = invoke(k8s_stub, org, "roll", b"{}", timeout=120)
                seen.append(json.loads(body)["version"] if status == 200 else f"status {status}")
            except grpc.RpcError as err:
                failures.append(err.code())

    def answered(version: str) -> Any:
        start = len(seen)
        return lambda: version in seen[start:]

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(caller)
        try:
            k8s_stub.SaveDraft(
                compute.SaveDraftRequest(
                    organization_name=org, app_name="roll", code=python_source(_versioned("two"))
                )
            )
            k8s_stub.PublishDraft(
                compute.PublishDraftRequest(organization_name=org, app_name="roll")
            )
            _wait("version two to answer", answered("two"), limit=90, every=0.2)
            k8s_stub.RollbackApp(
                compute.RollbackAppRequest(organization_name=org, app_name="roll", version=1)
            )
            _wait("version one to answer again", answered("one"), limit=90, every=0.2)
        finally:
            stop.set()
    assert not failures
    assert set(seen) == {"one", "two"}

    def version_two_gone() -> bool:
        selector = _selector(org, "roll") + ",ignite.dodil.io/version=2"
        [deployment] = kubectl.get("deployments", selector)
        return deployment["spec"].get("replicas") == 0 and not kubectl.get("pods", selector)

    _wait("version two's pods to go", version_two_gone, limit=90)


#: Seed 003's crate, as shipped in the Rust runtime's examples.
RUST_EXAMPLE = ROOT / "runtimes" / "rust" / "examples" / "hello"


def test_seed_003_rust_app_runs_on_the_native_image(k8s_stub, org: str) -> None:
    archive = tar_gz(
        {
            "Cargo.toml": (RUST_EXAMPLE / "Cargo.toml").read_bytes(),
            "src/lib.rs": (RUST_EXAMPLE / "src" / "lib.rs").read_bytes(),
        }
    )
    deploy_archive(k8s_stub, org, "hello-rs", "rust", archive)
    status, body = invoke(k8s_stub, org, "hello-rs", b'{"message": "Hi from the cluster"}', 120)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["message"] == "Hi from the cluster"
    assert answer["function_id"] == f"{org}/hello-rs"


def test_changed_scaling_reaches_the_scaled_object(k8s_stub, org: str, kubectl: Kubectl) -> None:
    deploy_python(k8s_stub, org, "grow", SEED_HANDLER, scaling={"max_replicas": 2})
    assert invoke(k8s_stub, org, "grow", b"{}", timeout=120)[0] == 200
    k8s_stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=org,
            app_name="grow",
            app={"scaling": {"max_replicas": 4, "scaledown_period_secs": 7}},
            update_mask={"paths": ["scaling"]},
        )
    )
    # The running revision keeps its pods; the next request carries the
    # app's new settings to it, and its ScaledObject gets the new bounds.
    selector = _selector(org, "grow")
    assert invoke(k8s_stub, org, "grow", b"{}", timeout=120)[0] == 200

    def rescaled() -> bool:
        [scaled] = kubectl.get("scaledobjects.keda.sh", selector)
        return scaled["spec"]["maxReplicaCount"] == 4 and scaled["spec"]["cooldownPeriod"] == 7

    _wait("the ScaledObject's new bounds", rescaled, limit=60, every=1)


DENO_EXAMPLE = ROOT / "runtimes" / "deno" / "examples" / "hello"


def test_deno_app_runs_on_the_deno_image(k8s_stub, org: str, kubectl: Kubectl) -> None:
    archive = tar_gz(
        {name: (DENO_EXAMPLE / name).read_bytes() for name in ("main.ts", "deno.json")}
    )
    deploy_archive(k8s_stub, org, "hello-ts", "deno", archive)
    status, body = invoke(k8s_stub, org, "hello-ts", b'{"name": "Dino"}', timeout=120)
    assert status == 200, body
    assert json.loads(body)["greeting"] == "Hello, Dino!"
    [deployment] = kubectl.get("deployments", _selector(org, "hello-ts"))
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ignite.local/runtime/deno:2"


SLEEPY_HANDLER = b"""import time

def handler(payload, ctx):
    if payload == b"sleep":
        time.sleep(60)
    return {"ok": True}
"""


def test_a_request_past_its_timeout_gets_its_pod_deleted(
    k8s_stub, org: str, kubectl: Kubectl
) -> None:
    deploy_python(k8s_stub, org, "sleepy", SLEEPY_HANDLER, limits={"timeout_secs": 2})
    assert invoke(k8s_stub, org, "sleepy", b"{}", timeout=120)[0] == 200
    selector = _selector(org, "sleepy")
    [before] = kubectl.get("pods", selector)
    try:
        invoke(k8s_stub, org, "sleepy", b"sleep", timeout=120)
        raise AssertionError("the invoke outlived its timeout")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert (error_info(err) or object()).reason == "EXECUTION_TIMEOUT"  # type: ignore[attr-defined]
    # The handler cannot be interrupted: its pod is deleted at once.
    name = before["metadata"]["name"]
    _wait(
        "the stuck pod to go",
        lambda: name not in {p["metadata"]["name"] for p in kubectl.get("pods", selector)},
        limit=30,
    )
    assert invoke(k8s_stub, org, "sleepy", b"{}", timeout=120)[0] == 200


def test_reserved_capacity_keeps_a_warm_pod_before_any_request(
    k8s_stub, org: str, kubectl: Kubectl
) -> None:
    deploy_python(
        k8s_stub,
        org,
        "warm",
        SEED_HANDLER,
        scaling={"reserved_capacity": 1, "scaledown_period_secs": 1},
    )
    _wait(
        "the reserved pod",
        lambda: _state(k8s_stub, org, "warm") == common.DEPLOYMENT_STATE_DEPLOYED,
        limit=60,
    )
    [scaled] = kubectl.get("scaledobjects.keda.sh", _selector(org, "warm"))
    assert scaled["spec"]["minReplicaCount"] == 1
    time.sleep(4)  # several scale-down periods: the reserved pod stays
    [deployment] = kubectl.get("deployments", _selector(org, "warm"))
    assert deployment["status"].get("readyReplicas") == 1
    started = time.monotonic()
    assert invoke(k8s_stub, org, "warm", b"{}", timeout=120)[0] == 200
    assert time.monotonic() - started < 1.0  # no cold start


def test_a_restarted_server_serves_again_and_left_nothing_running(
    k8s_platform, k8s_stub, org: str, kubectl: Kubectl
) -> None:
    """Last in the module: it restarts the session's server."""
    deploy_python(k8s_stub, org, "again", SEED_HANDLER)
    assert invoke(k8s_stub, org, "again", b"{}", timeout=120)[0] == 200
    selector = _selector(org, "again")
    [before] = kubectl.get("deployments", selector)
    k8s_platform.restart_server()
    # The stopping server scaled its revisions to zero on the way out.
    [after] = [
        d
        for d in kubectl.get("deployments", selector)
        if d["metadata"]["name"] == before["metadata"]["name"]
    ]
    assert after["spec"]["replicas"] == 0
    status, body = invoke(k8s_stub, org, "again", b'{"name": "back"}', timeout=120)
    assert (status, json.loads(body)["greeting"]) == (200, "Hello, back!")
