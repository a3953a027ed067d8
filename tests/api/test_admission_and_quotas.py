"""Admission and quotas through the API, on a platform whose pods may have
2 GiB of memory in all: a version whose reserved pods do not fit is refused
with CAPACITY (and nothing stored changes), a pod start with no memory left
is refused at activation, each organization's caps answer QUOTA_EXCEEDED
naming the quota, and what one organization holds leaves the other its
share. The host's OOM killer never strikes meanwhile."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc

from ignite_launcher import LocalPlatform, private_state_dir
from tests.cli.runner import Dodil
from tests.support import (
    SEED_HANDLER,
    BearerStub,
    error_info,
    invoke,
    python_source,
    stub_for,
    unique_name,
)

POD_MEMORY_MB = 2048
SERVER_ARGS = (
    "--pod-memory-mb", str(POD_MEMORY_MB),
    "--quota-apps", "5",
    "--quota-reserved-memory-mb", "1024",
    "--quota-pod-memory-mb", "1536",
    "--quota-pending-executions", "3",
    "--quota-running-executions", "1",
)  # fmt: skip

#: Keeps what it was asked to allocate (MiB), touched, for the pod's life.
HOLD = b"""KEPT = []

def handler(payload, ctx):
    block = bytearray(int(payload or b"0") * 1024 * 1024)
    block[::4096] = b"x" * len(range(0, len(block), 4096))  # touch every page
    KEPT.append(block)
    return {"holding_mib": sum(len(k) for k in KEPT) // (1024 * 1024)}
"""

SLEEPY = b"""import time

def handler(payload, ctx):
    time.sleep(float(payload or b"0"))
    return {"slept": float(payload or b"0")}
"""


def _pods_memory_limit_mb(platform: LocalPlatform) -> int:
    """The memory limit of the server's pods' parent cgroup, read from the
    kernel."""
    assert platform.server is not None
    pid = platform.server.pid
    own = next(
        line.split(":", 2)[2]
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        if "memory" in line.split(":", 2)[1].split(",")
    )
    parent = Path("/sys/fs/cgroup/memory") / own.lstrip("/")
    (base,) = parent.glob(f"ignite-pods-{pid}-*")
    return int((base / "memory.limit_in_bytes").read_text()) // (1024 * 1024)


def _oom_kills() -> int:
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    raise AssertionError("no oom_kill counter")


@pytest.fixture(scope="module")
def limited() -> Iterator[LocalPlatform]:
    with LocalPlatform(private_state_dir("ignite-quota-"), server_args=SERVER_ARGS) as platform:
        yield platform


def _new_org(platform: LocalPlatform) -> str:
    name = unique_name("org")
    admin = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, None)
    admin.CreateOrganization(identity.CreateOrganizationRequest(name=name))
    return name


def _create(
    stub,
    org: str,
    name: str,
    memory_mb: int = 0,
    reserved: int = 0,
    code=SEED_HANDLER,
    scaledown_secs: int = 0,
):
    scaling = common.ScalingConfig(reserved_capacity=reserved, scaledown_period_secs=scaledown_secs)
    stub.CreateApp(
        compute.CreateAppRequest(
            organization_name=org,
            name=name,
            runtime={"python": {}},
            limits=common.ResourceLimits(memory_mb=memory_mb) if memory_mb else None,
            scaling=scaling if reserved or scaledown_secs else None,
        )
    )
    stub.SaveDraft(
        compute.SaveDraftRequest(organization_name=org, app_name=name, code=python_source(code))
    )


def _publish(stub, org: str, name: str) -> None:
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name=name))


def _publish_cold(stub, org: str, name: str) -> None:
    """Publish an app created with a 1 s scale-down period (a publish
    returns with a ready pod: the readiness gate), wait until that pod went,
    then keep pods for the default period again (scaling changes in place):
    the app's next request starts a pod, which stays."""
    _publish_when_admitted(stub, org, name)
    deadline = time.monotonic() + 60
    while stub.GetApp(
        compute.GetAppRequest(organization_name=org, app_name=name)
    ).app.ready_replicas:
        assert time.monotonic() < deadline, "the publish's readiness pod never went"
        time.sleep(0.2)
    stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=org,
            app_name=name,
            app=common.AppMeta(scaling=common.ScalingConfig(scaledown_period_secs=300)),
            update_mask={"paths": ["scaling"]},
        )
    )


def _publish_when_admitted(stub, org: str, name: str, timeout: float = 60) -> None:
    """Publish, retrying while the version's first pod has no room (pods of
    an earlier test drain in the background and give their memory back when
    they exit)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _publish(stub, org, name)
            return
        except grpc.RpcError as err:
            info = error_info(err)
            if info is None or info.reason != "CAPACITY" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _refusal(call, request) -> tuple[grpc.StatusCode, str, dict[str, str], str]:
    try:
        call(request)
    except grpc.RpcError as err:
        info = error_info(err)
        assert info is not None
        return err.code(), info.reason, dict(info.metadata), err.details()
    raise AssertionError("the call succeeded")


def _invoke_refusal(stub, org: str, name: str) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    try:
        invoke(stub, org, name, b"{}")
    except grpc.RpcError as err:
        info = error_info(err)
        assert info is not None
        return err.code(), info.reason, dict(info.metadata)
    raise AssertionError("the invocation succeeded")


def test_reserved_pods_that_do_not_fit_are_refused_and_the_host_never_ooms(limited):
    stub = stub_for(limited.grpc_target)
    oom_before = _oom_kills()
    # The kernel holds all pods together to the capacity.
    assert _pods_memory_limit_mb(limited) == POD_MEMORY_MB
    a, b = _new_org(limited), _new_org(limited)

    # The example: 6 warm pods of 8 GiB on a platform with 2 GiB.
    _create(stub, a, "huge", memory_mb=8192, reserved=6)
    code, reason, meta, message = _refusal(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=a, app_name="huge")
    )
    print(f"\n8 GiB x 6 reserved on {POD_MEMORY_MB} MiB: {code.name} {reason}: {message}")
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "CAPACITY")
    assert meta["total_mb"] == str(POD_MEMORY_MB)
    # Nothing was published: the app still has no version, its draft stays.
    app = stub.GetApp(compute.GetAppRequest(organization_name=a, app_name="huge")).app
    assert app.active_version == 0
    assert stub.GetDraft(compute.GetDraftRequest(organization_name=a, app_name="huge")).draft

    # Fits the machine: 3 x 512 MiB reserved, but A's reservation quota is
    # 1 GiB.
    _create(stub, a, "warm", memory_mb=512, reserved=3, code=HOLD)
    code, reason, meta, _ = _refusal(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=a, app_name="warm")
    )
    assert (code, reason, meta["quota"]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "reserved_memory_mb",
    )
    # C's app is published while there is room, and goes cold.
    c = _new_org(limited)
    _create(stub, c, "cold", memory_mb=256, scaledown_secs=1)
    _publish_cold(stub, c, "cold")

    # Two fit, and start.
    stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=a,
            app_name="warm",
            app=common.AppMeta(scaling=common.ScalingConfig(reserved_capacity=2)),
            update_mask={"paths": ["scaling"]},
        )
    )
    _publish(stub, a, "warm")
    # B reserves the same: together 2 GiB, the whole machine.
    _create(stub, b, "warm", memory_mb=512, reserved=2, code=HOLD)
    _publish(stub, b, "warm")
    _wait_ready(stub, a, "warm", 2)
    _wait_ready(stub, b, "warm", 2)
    # The pods really use memory: 2 x 150 MiB in each organization's.
    for org in (a, b):
        for _ in range(2):
            assert invoke(stub, org, "warm", b"150")[0] == 200

    # A third organization's reserved pods no longer fit the machine.
    _create(stub, c, "warm", memory_mb=256, reserved=1)
    code, reason, meta, message = _refusal(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=c, app_name="warm")
    )
    print(f"a reservation past the machine: {code.name} {reason}: {message}")
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "CAPACITY")
    assert meta["free_mb"] == "0"

    # A pod start with no memory left is refused when it is activated.
    code, reason, meta = _invoke_refusal(stub, c, "cold")
    print(f"activation with the machine full: {code.name} {reason} {meta}")
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "CAPACITY")
    # So is a new version, whose first pod cannot start (the readiness
    # gate): the publish says so, and version 1 stays.
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=c, app_name="cold", code=python_source(SEED_HANDLER + b"# v2\n")
        )
    )
    code, reason, meta, message = _refusal(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=c, app_name="cold")
    )
    print(f"a publish with the machine full: {code.name} {reason}: {message}")
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "CAPACITY")
    assert "version 2 cannot start (version 1 keeps serving)" in message
    assert (
        stub.GetApp(compute.GetAppRequest(organization_name=c, app_name="cold")).app.active_version
        == 1
    )

    # Giving memory back admits it again: B drops its reservation.
    stub.UpdateApp(
        compute.UpdateAppRequest(
            organization_name=b,
            app_name="warm",
            app=common.AppMeta(scaling=common.ScalingConfig(reserved_capacity=0)),
            update_mask={"paths": ["scaling"]},
        )
    )
    stub.DeleteApp(compute.DeleteAppRequest(organization_name=b, app_name="warm"))
    deadline = time.monotonic() + 60
    while True:
        try:
            assert invoke(stub, c, "cold", b'{"name": "C"}')[0] == 200
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline, "the freed memory was never admitted again"
            time.sleep(0.5)
    assert invoke(stub, a, "warm", b"0")[0] == 200
    oom_after = _oom_kills()
    print(f"host oom_kill counter: {oom_before} before, {oom_after} after")
    assert oom_after == oom_before
    # The next tests get the machine back.
    for org, name in ((a, "warm"), (c, "cold")):
        stub.DeleteApp(compute.DeleteAppRequest(organization_name=org, app_name=name))


def _invoke_when_admitted(stub, org: str, name: str, timeout: float = 60) -> int:
    """Invoke, retrying while the machine or the organization is full: pods
    that stopped (an earlier test's, a publish's readiness pod) give their
    memory back only once they have exited, a moment after they stop
    counting as ready."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return invoke(stub, org, name, b"{}")[0]
        except grpc.RpcError as err:
            info = error_info(err)
            full = info is not None and info.reason in ("CAPACITY", "QUOTA_EXCEEDED")
            if not full or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _wait_ready(stub, org: str, name: str, replicas: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name=name)).app
        if app.deployment_state == common.DEPLOYMENT_STATE_DEPLOYED:
            return
        assert time.monotonic() < deadline, f"{org}/{name} never got {replicas} warm pods"
        time.sleep(0.2)


def test_an_organizations_pods_stop_at_its_memory_quota(limited):
    stub = stub_for(limited.grpc_target)
    a, b = _new_org(limited), _new_org(limited)
    # A pod bigger than the organization may ever hold is refused at publish.
    _create(stub, a, "big", memory_mb=2048)
    code, reason, meta, _ = _refusal(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=a, app_name="big")
    )
    assert (code, reason, meta["quota"]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "pod_memory_mb",
    )
    # Three apps of 512 MiB fill A's 1.5 GiB; a fourth is refused at activation.
    for name in ("one", "two", "three", "four"):
        _create(stub, a, name, memory_mb=512, scaledown_secs=1)
        _publish_cold(stub, a, name)
    for name in ("one", "two", "three"):
        assert _invoke_when_admitted(stub, a, name) == 200
    code, reason, meta = _invoke_refusal(stub, a, "four")
    print(f"\nA's fourth 512 MiB pod: {code.name} {reason} {meta}")
    assert (code, reason, meta["quota"]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "pod_memory_mb",
    )
    assert meta["organization"] == a
    # A new version of a full organization's app cannot start either.
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=a, app_name="one", code=python_source(SEED_HANDLER + b"# v2\n")
        )
    )
    code, reason, meta, _ = _refusal(
        stub.PublishDraft, compute.PublishDraftRequest(organization_name=a, app_name="one")
    )
    assert (code, reason, meta["quota"]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "pod_memory_mb",
    )
    # B's share is untouched by A's.
    _create(stub, b, "one", memory_mb=512)
    _publish_when_admitted(stub, b, "one")
    assert _invoke_when_admitted(stub, b, "one") == 200
    for name in ("one", "two", "three", "four"):
        stub.DeleteApp(compute.DeleteAppRequest(organization_name=a, app_name=name))
    stub.DeleteApp(compute.DeleteAppRequest(organization_name=b, app_name="one"))


def test_app_count_and_pending_executions_are_capped_per_organization(limited):
    stub = stub_for(limited.grpc_target)
    a, b = _new_org(limited), _new_org(limited)
    for n in range(5):
        stub.CreateApp(
            compute.CreateAppRequest(organization_name=a, name=f"app{n}", runtime={"python": {}})
        )
    code, reason, meta, message = _refusal(
        stub.CreateApp,
        compute.CreateAppRequest(organization_name=a, name="app5", runtime={"python": {}}),
    )
    print(f"\nA's sixth app: {code.name} {reason}: {message}")
    assert (code, reason, meta["quota"], meta["limit"], meta["used"]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "apps",
        "5",
        "5",
    )
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=b, name="app5", runtime={"python": {}})
    )

    # One runs at a time (running cap 1), three may wait (pending cap 3).
    stub.DeleteApp(compute.DeleteAppRequest(organization_name=a, app_name="app0"))
    _create(stub, a, "sleepy", code=SLEEPY)
    _publish_when_admitted(stub, a, "sleepy")

    def submit(org: str) -> str:
        return stub.InvokeAsync(
            compute.InvokeAsyncRequest(organization_name=org, app_name="sleepy", body=b"3")
        ).execution_id

    first = submit(a)
    deadline = time.monotonic() + 30
    while (
        stub.GetExecution(
            compute.GetExecutionRequest(organization_name=a, execution_id=first)
        ).execution.status
        == common.EXECUTION_STATUS_PENDING
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for _ in range(3):
        submit(a)
    code, reason, meta, _ = _refusal(
        stub.InvokeAsync,
        compute.InvokeAsyncRequest(organization_name=a, app_name="sleepy", body=b"0"),
    )
    assert (code, reason, meta["quota"]) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "QUOTA_EXCEEDED",
        "pending_executions",
    )
    # B's queue is its own.
    _create(stub, b, "sleepy", code=SLEEPY)
    _publish_when_admitted(stub, b, "sleepy")
    quick = submit(b)
    assert quick


def test_the_cli_shows_the_refusal_of_reserved_pods_that_do_not_fit(limited, tmp_path):
    org = _new_org(limited)
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "app").mkdir()
    (tmp_path / "work" / "app" / "handler.py").write_bytes(SEED_HANDLER)
    dodil = Dodil(config_home=tmp_path / "xdg", cwd=tmp_path / "work")
    dodil("ignite", "config", "set", "api_endpoint", limited.grpc_target).ok()
    dodil("ignite", "config", "set", "organization", org).ok()
    refused = dodil(
        "ignite", "app", "deploy", "huge", "--code", "app", "--runtime", "python",
        "--memory-mb", "8192", "--reserved-capacity", "6",
    )  # fmt: skip
    print("\n$ dodil ignite app deploy huge ... --memory-mb 8192 --reserved-capacity 6")
    print(refused.stderr)
    assert refused.code != 0
    assert refused.error_line().startswith("error: RESOURCE_EXHAUSTED (CAPACITY): ")
    got = json.loads(dodil("ignite", "app", "get", "huge", "-o", "json").ok().stdout)
    assert got.get("active_version", 0) == 0
