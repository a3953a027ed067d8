"""Executions on a real PostgreSQL: batches are claimed in one statement
and finished in one, each execution only under the lease that claimed it,
and a dead owner's batch is claimed again once its leases run out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from ulid import ULID

from ignite_server.domain.errors import NotFound
from ignite_server.domain.models import (
    ExecutionMetrics,
    ExecutionStatus,
    InvocationRequest,
    Submission,
)
from ignite_server.ports.execution_store import ExecutionEnd
from ignite_server.store.executions import PostgresExecutionStore
from tests.store.postgres import insert_app, migrated_database
from tests.support import unique_name

LEASE_MS = 30_000
MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as pool:
        yield pool


@pytest.fixture
async def app(pool: asyncpg.Pool) -> tuple[str, str]:
    org, name = unique_name("org"), "echo"
    await insert_app(pool, org, name)
    return org, name


def _request(body: bytes = b"") -> InvocationRequest:
    return InvocationRequest("POST", "/", "", {}, body)


def _now() -> int:
    return int(time.time() * 1000)


async def _submit(store: PostgresExecutionStore, app: tuple[str, str], n: int) -> list[str]:
    ids = []
    for i in range(n):
        execution, created = await store.submit(
            str(ULID()), Submission(*app, _request(b"%d" % i)), _now()
        )
        assert created
        ids.append(execution.id)
    return ids


def _end(execution_id: str, *, retention_ms: int | None = None) -> ExecutionEnd:
    return ExecutionEnd(
        execution_id=execution_id,
        status=ExecutionStatus.COMPLETED,
        result=b"done:" + execution_id.encode(),
        status_code=200,
        error="",
        error_class="",
        metrics=ExecutionMetrics(execution_ms=3, billed_duration_ms=3, result_size_bytes=31),
        function_version=1,
        completed_at_ms=_now(),
        retention_ms=retention_ms,
    )


async def test_a_batch_is_claimed_once_and_finished_in_one_write(pool, app):
    store = PostgresExecutionStore(pool)
    ids = await _submit(store, app, 50)
    claimed = await store.claim("a", 64, LEASE_MS, _now(), MAX_ATTEMPTS)
    assert sorted(c.execution.id for c in claimed) == sorted(ids)
    assert {(c.execution.status, c.execution.attempts) for c in claimed} == {
        (ExecutionStatus.RUNNING, 1)
    }
    # Leased: nobody else gets them.
    assert await store.claim("b", 64, LEASE_MS, _now(), MAX_ATTEMPTS) == []
    # Another owner cannot record their end.
    assert await store.finish("b", [_end(i) for i in ids]) == set()

    ends = [_end(i, retention_ms=60_000 if n % 2 else None) for n, i in enumerate(ids)]
    assert await store.finish("a", ends) == set(ids)
    # Exactly once: the lease is gone with the first write.
    assert await store.finish("a", ends) == set()
    for execution_id in ids:
        stored = await store.get(app[0], execution_id)
        assert stored.status == ExecutionStatus.COMPLETED
        assert stored.result == b"done:" + execution_id.encode()
        assert stored.status_code == 200 and stored.function_version == 1
        assert stored.metrics.result_size_bytes == 31
    expiring = await pool.fetch(
        "SELECT id FROM executions WHERE id = ANY($1) AND expires_at_ms IS NOT NULL", ids
    )
    assert {r["id"] for r in expiring} == {i for n, i in enumerate(ids) if n % 2}


async def test_concurrent_claimers_take_disjoint_batches(pool, app):
    store = PostgresExecutionStore(pool)
    ids = await _submit(store, app, 100)
    batches = await asyncio.gather(
        *(store.claim(f"w{n}", 40, LEASE_MS, _now(), MAX_ATTEMPTS) for n in range(4))
    )
    taken = [c.execution.id for batch in batches for c in batch]
    assert sorted(taken) == sorted(ids)
    for n, batch in enumerate(batches):
        assert await store.finish(f"w{n}", [_end(c.execution.id) for c in batch]) == {
            c.execution.id for c in batch
        }


async def test_a_dead_owners_batch_is_claimed_again_and_its_late_end_refused(pool, app):
    store = PostgresExecutionStore(pool)
    ids = await _submit(store, app, 10)
    start = _now()
    first = await store.claim("dead", 10, 100, start, MAX_ATTEMPTS)
    assert len(first) == 10
    # Within the lease: not claimable, the heartbeat keeps it.
    assert await store.claim("alive", 10, LEASE_MS, start + 50, MAX_ATTEMPTS) == []
    # Past the lease: the whole batch goes to another owner, as a new attempt.
    second = await store.claim("alive", 10, LEASE_MS, start + 200, MAX_ATTEMPTS)
    assert sorted(c.execution.id for c in second) == sorted(ids)
    assert {c.execution.attempts for c in second} == {2}
    assert await store.heartbeat("dead", ids, 100, start + 200) == (set(), set())
    assert await store.finish("dead", [_end(i) for i in ids]) == set()
    assert await store.finish("alive", [_end(i) for i in ids]) == set(ids)


async def test_submit_is_one_statement_and_idempotent(pool, app):
    store = PostgresExecutionStore(pool)
    keyed = Submission(*app, _request(b"x"), idempotency_key="key-1")
    first, created = await store.submit(str(ULID()), keyed, _now())
    twin, again = await store.submit(
        str(ULID()), Submission(*app, _request(b"y"), 0, "key-1"), _now()
    )
    assert created and not again and twin.id == first.id
    assert first.status == ExecutionStatus.PENDING
    with pytest.raises(NotFound):
        await store.submit(str(ULID()), Submission(app[0], "missing", _request()), _now())
    with pytest.raises(NotFound):
        missing = Submission(app[0], "missing", _request(), idempotency_key="key-1")
        await store.submit(str(ULID()), missing, _now())
