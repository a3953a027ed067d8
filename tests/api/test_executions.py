"""Asynchronous invocations: stored Execution records run by workers."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.eventually import eventually
from tests.support import deploy_python, expect_error, read_logs, wait_terminal

COUNTING_HANDLER = b"""
def handler(payload, ctx):
    print("ran", ctx["execution_id"])
    return {"n": int(payload or b"0")}
"""

FAILING_HANDLER = b"""
def handler(payload, ctx):
    raise RuntimeError("this handler always fails")
"""


def _submit(stub, org, app, body=b"", key=""):
    return stub.InvokeAsync(
        compute.InvokeAsyncRequest(
            organization_name=org, app_name=app, body=body, idempotency_key=key
        )
    ).execution_id


def test_thousand_executions_each_run_exactly_once(stub, org):
    deploy_python(stub, org, "count", COUNTING_HANDLER, max_concurrency=8)
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda n: _submit(stub, org, "count", str(n).encode()), range(1000)))
    assert len(set(ids)) == 1000
    done = wait_terminal(stub, org, ids, timeout=300)
    assert {e.status for e in done.values()} == {common.EXECUTION_STATUS_COMPLETED}
    assert {e.attempts for e in done.values()} == {1}
    # Each result is its own payload's: nothing was mixed up between runs.
    for n, execution_id in enumerate(ids):
        assert done[execution_id].result == f'{{"n": {n}}}'.encode()
        assert done[execution_id].function_version == 1

    # The handler's own output proves it ran once per execution.
    def every_run_logged() -> Counter[str] | None:
        runs = Counter(
            e.message.split()[1]
            for e in read_logs(stub, org, app_name="count")
            if e.message.startswith("ran ")
        )
        return runs if sum(runs.values()) >= len(ids) else None

    runs = eventually(every_run_logged, within=30, every=0.3, what="a log line per run")
    assert runs == Counter({execution_id: 1 for execution_id in ids})


def test_always_failing_handler_is_retried_then_fails(stub, org):
    deploy_python(stub, org, "fails", FAILING_HANDLER)
    execution_id = _submit(stub, org, "fails")
    execution = wait_terminal(stub, org, [execution_id], timeout=60)[execution_id]
    assert execution.status == common.EXECUTION_STATUS_FAILED
    assert execution.error_class == "user_code"
    assert execution.attempts == 3
    assert "this handler always fails" in execution.error
    assert execution.status_code == 500


def test_same_idempotency_key_yields_one_execution(stub, org):
    deploy_python(stub, org, "once", COUNTING_HANDLER)
    with ThreadPoolExecutor(100) as pool:
        ids = set(pool.map(lambda _: _submit(stub, org, "once", b"7", key="order-42"), range(100)))
    assert len(ids) == 1
    listed = stub.ListExecutions(
        compute.ListExecutionsRequest(organization_name=org, app_name="once")
    )
    assert [e.id for e in listed.executions] == list(ids)
    assert listed.executions[0].idempotency_key == "order-42"
    # A different key is a different execution.
    assert _submit(stub, org, "once", b"7", key="order-43") not in ids


def test_logs_of_one_execution_are_exactly_its_output(stub, org):
    deploy_python(
        stub,
        org,
        "talk",
        b"""
import sys
def handler(payload, ctx):
    word = payload.decode()
    for i in range(3):
        print(f"{word} line {i}")
    print(f"{word} to stderr", file=sys.stderr)
    return word
""",
    )
    ids = [_submit(stub, org, "talk", word.encode()) for word in ("alpha", "beta", "gamma")]
    wait_terminal(stub, org, ids)
    expected = ["beta line 0", "beta line 1", "beta line 2", "beta to stderr"]

    def logged() -> list[Any] | None:
        entries = read_logs(stub, org, execution_id=ids[1])
        return entries if len(entries) >= len(expected) else None

    entries = eventually(logged, within=20, every=0.2, what="the execution's log lines")
    user_lines = [
        e for e in entries if e.stream in (compute.LOG_STREAM_STDOUT, compute.LOG_STREAM_STDERR)
    ]
    assert sorted(e.message for e in user_lines) == sorted(expected)
    assert {e.execution_id for e in entries} == {ids[1]}
    assert {e.app_id for e in entries} == {f"{org}/talk"}
    assert {e.version for e in entries} == {1}
    assert [e.stream for e in user_lines if "stderr" in e.message] == [compute.LOG_STREAM_STDERR]


def test_list_executions_newest_first_filtered_and_paged(stub, org):
    deploy_python(stub, org, "lister", COUNTING_HANDLER)
    deploy_python(stub, org, "failer", FAILING_HANDLER)
    ids = [_submit(stub, org, "lister", str(n).encode()) for n in range(5)]
    failing = _submit(stub, org, "failer")
    wait_terminal(stub, org, [*ids, failing], timeout=60)
    seen, token = [], ""
    while True:
        page = stub.ListExecutions(
            compute.ListExecutionsRequest(
                organization_name=org, app_name="lister", page_size=2, page_token=token
            )
        )
        seen += [e.id for e in page.executions]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    failed = stub.ListExecutions(
        compute.ListExecutionsRequest(organization_name=org, status=common.EXECUTION_STATUS_FAILED)
    ).executions
    assert [e.id for e in failed] == [failing]


def test_async_errors(stub, org):
    code, reason = expect_error(
        stub.InvokeAsync, compute.InvokeAsyncRequest(organization_name=org, app_name="nothing")
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "APP_NOT_FOUND")
    stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name="unpublished", runtime={"python": {}})
    )
    code, reason = expect_error(
        stub.InvokeAsync, compute.InvokeAsyncRequest(organization_name=org, app_name="unpublished")
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_PUBLISHED")
    code, reason = expect_error(
        stub.GetExecution,
        compute.GetExecutionRequest(
            organization_name=org, execution_id="01J0000000000000000000000"
        ),
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "EXECUTION_NOT_FOUND")
