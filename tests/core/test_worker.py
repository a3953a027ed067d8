"""The worker pool: its outcome table (docs/executions.md), what each way
an execution ends records as status, error_class, and whether it is
retried; and, on a real PostgreSQL, how it claims and records in batches,
recovers a dead pool's batch and stops a cancelled execution."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from ulid import ULID

from ignite_server.core.invocations import Invocations
from ignite_server.core.run_targets import RunTargets
from ignite_server.core.worker import (
    ExecutionWorkers,
    _handler_error,
    answer_outcome,
    failure_outcome,
)
from ignite_server.domain.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    IgniteError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from ignite_server.domain.models import (
    ClaimedExecution,
    ExecutionStatus,
    InvocationRequest,
    ResponseChunk,
    ResponseFrame,
    ResponseHead,
    ResponseTrailer,
    RunTarget,
    Submission,
)
from ignite_server.ports.execution_store import ExecutionEnd, ExecutionStore
from ignite_server.store.apps import PostgresAppStore
from ignite_server.store.executions import PostgresExecutionStore
from tests.core.conftest import make_target
from tests.eventually import eventually_async
from tests.store.postgres import migrated_database
from tests.support import unique_name

COMPLETED, FAILED, TIMEOUT = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.TIMEOUT,
)


@pytest.mark.parametrize(
    ("status_code", "expected"),
    [
        (200, (COMPLETED, "", False)),
        (204, (COMPLETED, "", False)),
        (302, (COMPLETED, "", False)),
        (400, (FAILED, "client", False)),
        (404, (FAILED, "client", False)),
        (499, (FAILED, "client", False)),
        (500, (FAILED, "user_code", True)),
        (503, (FAILED, "user_code", True)),
    ],
)
def test_an_answered_execution_is_classed_by_its_status(status_code: int, expected: tuple) -> None:
    assert answer_outcome(status_code) == expected


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (DeadlineExceeded("past 5s", reason="EXECUTION_TIMEOUT"), (TIMEOUT, "user_code", False)),
        (Unavailable("the pod exited", reason="POD_EXITED"), (FAILED, "platform", True)),
        (ResourceExhausted("killed", reason="OUT_OF_MEMORY"), (FAILED, "platform", True)),
        (Unavailable("no start", reason="ACTIVATION_FAILED"), (FAILED, "platform", True)),
        (NotFound("app gone", reason="APP_NOT_FOUND"), (FAILED, "client", False)),
        (FailedPrecondition("unpublished", reason="NOT_PUBLISHED"), (FAILED, "client", False)),
        (InvalidArgument("bad version", reason="INVALID_VERSION"), (FAILED, "client", False)),
    ],
)
def test_an_unanswered_execution_is_classed_by_why(error: IgniteError, expected: tuple) -> None:
    assert failure_outcome(error) == expected


def test_the_error_of_a_failed_answer_is_the_runtimes_message() -> None:
    assert _handler_error(b'{"error": "division by zero"}') == "division by zero"
    assert _handler_error(b"plain text") == "plain text"
    assert _handler_error(b"x" * 5000) == "x" * 2000


# --- the pool on a real PostgreSQL -------------------------------------------
#
# The pods are stood in for by an in-process handler (``_Handler``): what is
# tested here is how the pool claims, leases and records, which the runner
# does not take part in.


class _CountingStore(PostgresExecutionStore):
    """The real store, counting the claims and writes the pool makes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.claims = 0
        self.writes = 0

    async def claim(self, *args: Any) -> list[ClaimedExecution]:
        claimed = await super().claim(*args)
        self.claims += bool(claimed)
        return claimed

    async def finish(self, owner: str, ends: Sequence[ExecutionEnd]) -> set[str]:
        self.writes += 1
        return await super().finish(owner, ends)


class _Handler:
    """Answers every execution with its body; ``hold`` keeps them running."""

    def __init__(self, org: str, name: str, *, hold: bool = False) -> None:
        self.target = make_target(Path("/nonexistent"), org=org, name=name)
        self.runs: collections.Counter[str] = collections.Counter()
        self.released = asyncio.Event()
        if not hold:
            self.released.set()
        self.stopped: set[str] = set()

    async def resolve(self, organization: str, app: str, version: int) -> RunTarget:
        return self.target

    async def stream(
        self, target: RunTarget, request: InvocationRequest, execution_id: str
    ) -> AsyncIterator[ResponseFrame]:
        self.runs[execution_id] += 1
        try:
            await self.released.wait()
        except asyncio.CancelledError:
            self.stopped.add(execution_id)
            raise
        yield ResponseHead(200, {}, execution_id)
        yield ResponseChunk(b"echo:" + request.body)
        yield ResponseTrailer(0, 0)


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as pool:
        yield pool


async def _workers(
    database: asyncpg.Pool,
    store: ExecutionStore,
    handler: _Handler,
    *,
    workers: int,
    lease_secs: float = 30.0,
) -> ExecutionWorkers:
    async def no_news(channel: str, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.05))

    running = ExecutionWorkers(
        store,
        PostgresAppStore(database),
        cast(RunTargets, handler),
        cast(Invocations, handler),
        no_news,
        workers=workers,
        lease_secs=lease_secs,
    )
    await running.start()
    return running


async def _create_app(database: asyncpg.Pool, org: str, name: str) -> None:
    await PostgresAppStore(database).create_app(_Handler(org, name).target.app, None)


async def _submit_all(store: ExecutionStore, org: str, name: str, n: int) -> list[str]:
    now = int(time.time() * 1000)
    submitted = await asyncio.gather(
        *(
            store.submit(
                str(ULID()),
                Submission(org, name, InvocationRequest("POST", "/", "", {}, b"%d" % i)),
                now,
            )
            for i in range(n)
        )
    )
    return [execution.id for execution, _ in submitted]


async def _until(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    await eventually_async(check, within=within)


async def _statuses(store: ExecutionStore, org: str, ids: list[str]) -> dict[str, Any]:
    return {i: await store.get(org, i) for i in ids}


async def test_executions_submitted_at_once_are_claimed_in_batches_and_run_once(database):
    org, name = unique_name("org"), "echo"
    await _create_app(database, org, name)
    store = _CountingStore(database)
    ids = await _submit_all(store, org, name, 200)
    handler = _Handler(org, name)
    pool = await _workers(database, store, handler, workers=16)
    try:

        async def all_done() -> bool:
            done = await _statuses(store, org, ids)
            return all(e.terminal for e in done.values())

        await _until(all_done)
    finally:
        await pool.close()
    done = await _statuses(store, org, ids)
    assert {e.status for e in done.values()} == {ExecutionStatus.COMPLETED}
    assert all(e.result == b"echo:" + str(n).encode() for n, e in enumerate(done.values()))
    assert all(e.metrics.result_size_bytes == len(e.result) for e in done.values())
    assert handler.runs == collections.Counter({i: 1 for i in ids})
    assert {e.attempts for e in done.values()} == {1}
    # Claims and writes carry many executions each.
    assert store.claims < len(ids) / 4, store.claims
    assert store.writes < len(ids) / 4, store.writes


async def test_a_pool_that_dies_mid_batch_loses_none_of_it(database):
    org, name = unique_name("org"), "echo"
    await _create_app(database, org, name)
    store = _CountingStore(database)
    ids = await _submit_all(store, org, name, 12)
    stuck = _Handler(org, name, hold=True)
    dying = await _workers(database, store, stuck, workers=12, lease_secs=0.5)
    await _until(lambda: _true(len(stuck.runs) == len(ids)))
    # Gone without a word: its whole batch is RUNNING under its lease.
    await dying.close()
    assert {e.status for e in (await _statuses(store, org, ids)).values()} == {
        ExecutionStatus.RUNNING
    }
    handler = _Handler(org, name)
    pool = await _workers(database, store, handler, workers=4, lease_secs=0.5)
    try:

        async def all_done() -> bool:
            return all(e.terminal for e in (await _statuses(store, org, ids)).values())

        await _until(all_done)
    finally:
        await pool.close()
    done = await _statuses(store, org, ids)
    assert {e.status for e in done.values()} == {ExecutionStatus.COMPLETED}
    assert {e.attempts for e in done.values()} == {2}
    assert handler.runs == collections.Counter({i: 1 for i in ids})


async def test_a_cancelled_execution_of_a_batch_is_stopped_and_the_rest_run_on(database):
    org, name = unique_name("org"), "echo"
    await _create_app(database, org, name)
    store = PostgresExecutionStore(database)
    ids = await _submit_all(store, org, name, 6)
    handler = _Handler(org, name, hold=True)
    pool = await _workers(database, store, handler, workers=6, lease_secs=0.6)
    try:
        await _until(lambda: _true(len(handler.runs) == len(ids)))
        await store.request_cancel(org, ids[0], int(time.time() * 1000))

        async def cancelled() -> bool:
            return (await store.get(org, ids[0])).terminal

        await _until(cancelled)
        handler.released.set()

        async def all_done() -> bool:
            return all(e.terminal for e in (await _statuses(store, org, ids)).values())

        await _until(all_done)
    finally:
        await pool.close()
    done = await _statuses(store, org, ids)
    assert done[ids[0]].status == ExecutionStatus.CANCELLED
    assert handler.stopped == {ids[0]}
    assert {done[i].status for i in ids[1:]} == {ExecutionStatus.COMPLETED}


async def _true(value: bool) -> bool:
    return value
