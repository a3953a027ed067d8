"""Executions survive a crashing server, and cancellation reaches the pod.

These tests run a platform of their own: they kill its server, and they
need to know exactly how many workers it has (2) and a short lease (2 s)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform, private_state_dir
from tests.eventually import eventually
from tests.support import deploy_python, read_logs, stub_for, unique_name, wait_terminal

SLOW_HANDLER = b"""
import time
def handler(payload, ctx):
    print("start", ctx["execution_id"])
    time.sleep(float(payload or b"0"))
    print("finished", ctx["execution_id"])
    return "ok"
"""


@pytest.fixture(scope="module")
def durable() -> Iterator[LocalPlatform]:
    with LocalPlatform(
        private_state_dir("ignite-durable-"),
        gateway_port=None,
        server_args=("--workers", "2", "--execution-lease-secs", "2"),
    ) as platform:
        yield platform


def _submit(stub, org, body: bytes) -> str:
    return stub.InvokeAsync(
        compute.InvokeAsyncRequest(organization_name=org, app_name="slow", body=body)
    ).execution_id


def test_server_killed_mid_run_loses_no_execution(durable):
    org = unique_name("org")
    stub = stub_for(durable.grpc_target)
    deploy_python(stub, org, "slow", SLOW_HANDLER, max_concurrency=4)
    ids = [_submit(stub, org, b"0.02") for _ in range(200)]

    # Let some finish, then crash the server in the middle of the run.
    def some_completed() -> bool:
        listed = stub.ListExecutions(
            compute.ListExecutionsRequest(
                organization_name=org, status=common.EXECUTION_STATUS_COMPLETED, page_size=500
            )
        )
        return len(listed.executions) >= 30

    eventually(some_completed, within=60, every=0.05, what="30 executions completed")
    durable.kill_server()
    durable.start_server()
    stub = stub_for(durable.grpc_target)
    done = wait_terminal(stub, org, ids, timeout=180)
    assert len(done) == 200
    assert {e.status for e in done.values()} == {common.EXECUTION_STATUS_COMPLETED}
    assert all(e.result == b"ok" for e in done.values())
    assert max(e.attempts for e in done.values()) <= 3


def test_cancel_pending_and_running(durable):
    org = unique_name("org")
    stub = stub_for(durable.grpc_target)
    # One request per pod, so stopping the cancelled one's pod harms nobody.
    deploy_python(stub, org, "slow", SLOW_HANDLER, max_concurrency=1)
    # Two workers: two long executions occupy them, the third waits.
    running = [_submit(stub, org, b"4") for _ in range(2)]
    time.sleep(0.5)
    pending = _submit(stub, org, b"0")
    state = stub.GetExecution(
        compute.GetExecutionRequest(organization_name=org, execution_id=pending)
    )
    assert state.execution.status == common.EXECUTION_STATUS_PENDING

    cancelled = stub.CancelExecution(
        compute.CancelExecutionRequest(organization_name=org, execution_id=pending)
    ).execution
    assert cancelled.status == common.EXECUTION_STATUS_CANCELLED

    stub.CancelExecution(
        compute.CancelExecutionRequest(organization_name=org, execution_id=running[0])
    )
    done = wait_terminal(stub, org, running, timeout=30)
    assert done[running[0]].status == common.EXECUTION_STATUS_CANCELLED
    assert done[running[1]].status == common.EXECUTION_STATUS_COMPLETED
    # The cancelled one was stopped in its pod: it started and never finished.
    time.sleep(5)
    lines = [
        e.message.split()[0]
        for e in read_logs(stub, org, execution_id=running[0])
        if e.stream == compute.LOG_STREAM_STDOUT
    ]
    assert lines == ["start"]
    # The pending one never ran at all, and stays cancelled.
    assert read_logs(stub, org, execution_id=pending) == []
    after = stub.GetExecution(
        compute.GetExecutionRequest(organization_name=org, execution_id=pending)
    )
    assert after.execution.status == common.EXECUTION_STATUS_CANCELLED


QUICK_HANDLER = b"""
def handler(payload, ctx):
    return "done"
"""


def test_ephemeral_and_ttl_executions_are_deleted(durable):
    org = unique_name("org")
    stub = stub_for(durable.grpc_target)
    deploy_python(
        stub, org, "gone-after-read", QUICK_HANDLER, storage_mode=common.STORAGE_MODE_EPHEMERAL
    )
    deploy_python(
        stub, org, "short-lived", QUICK_HANDLER, storage_mode=common.STORAGE_MODE_TTL, ttl_seconds=1
    )
    deploy_python(stub, org, "kept", QUICK_HANDLER)

    def submit(app: str) -> str:
        return stub.InvokeAsync(
            compute.InvokeAsyncRequest(organization_name=org, app_name=app)
        ).execution_id

    ephemeral, ttl, kept = submit("gone-after-read"), submit("short-lived"), submit("kept")
    done = wait_terminal(stub, org, [ephemeral, ttl, kept])
    assert {e.status for e in done.values()} == {common.EXECUTION_STATUS_COMPLETED}

    def exists(execution_id: str) -> bool:
        try:
            stub.GetExecution(
                compute.GetExecutionRequest(organization_name=org, execution_id=execution_id)
            )
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND
            return False
        return True

    # EPHEMERAL: read once after completion (wait_terminal did), then gone.
    assert not exists(ephemeral)
    # TTL: gone once ttl_seconds passed and the sweeper ran (every lease, 2 s).
    eventually(lambda: not exists(ttl), within=30, every=0.5, what="the TTL execution deleted")
    # PERSISTENT: kept.
    assert exists(kept)
