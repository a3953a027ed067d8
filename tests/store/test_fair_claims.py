"""Fair shares of the execution queue on a real PostgreSQL: claims go
round-robin across organizations, an organization past its running cap gets
nothing more while others do, and an organization's backlog is capped."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest
from ulid import ULID

from ignite_server.domain.errors import ResourceExhausted
from ignite_server.domain.models import InvocationRequest
from ignite_server.store.executions import PostgresExecutionStore
from tests.store.postgres import insert_app, migrated_database
from tests.support import unique_name

LEASE_MS = 30_000
MAX_ATTEMPTS = 3


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with migrated_database() as pool:
        yield pool


async def _app(pool: asyncpg.Pool) -> tuple[str, str]:
    org = unique_name("org")
    await insert_app(pool, org, "work")
    return org, "work"


def _now() -> int:
    return int(time.time() * 1000)


async def _submit(store: PostgresExecutionStore, app: tuple[str, str], n: int) -> list[str]:
    ids = []
    for _ in range(n):
        execution, _ = await store.submit(
            str(ULID()), *app, InvocationRequest("POST", "/", "", {}, b""), 0, "", _now()
        )
        ids.append(execution.id)
    return ids


async def _drain(pool: asyncpg.Pool) -> None:
    """Nothing of an earlier test stays claimable."""
    await pool.execute("UPDATE executions SET status = 4 WHERE status IN (1, 2)")


async def test_claims_go_round_robin_across_organizations(pool):
    await _drain(pool)
    store = PostgresExecutionStore(pool)
    flood, quiet, third = await _app(pool), await _app(pool), await _app(pool)
    await _submit(store, flood, 300)
    quiet_ids = await _submit(store, quiet, 1)
    third_ids = await _submit(store, third, 2)
    claimed = await store.claim("w", 4, LEASE_MS, _now(), MAX_ATTEMPTS)
    by_org = Counter(c.execution.organization for c in claimed)
    print(f"one claim of 4 behind a backlog of 300: {dict(by_org)}")
    # The newest organizations' work is in the very first claim, beside
    # the flood's oldest, instead of after its 300: first the oldest of each
    # organization, then the second of each, oldest first.
    assert {c.execution.id for c in claimed} >= {*quiet_ids, third_ids[0]}
    assert by_org == {flood[0]: 2, quiet[0]: 1, third[0]: 1}


async def test_an_organization_at_its_running_cap_gets_no_more(pool):
    await _drain(pool)
    store = PostgresExecutionStore(pool)
    flood, quiet = await _app(pool), await _app(pool)
    await _submit(store, flood, 50)
    first = await store.claim("w1", 64, LEASE_MS, _now(), MAX_ATTEMPTS, per_org_limit=5)
    assert Counter(c.execution.organization for c in first) == {flood[0]: 5}
    # Another server's claim sees the five running: nothing more for flood.
    assert await store.claim("w2", 64, LEASE_MS, _now(), MAX_ATTEMPTS, per_org_limit=5) == []
    quiet_ids = await _submit(store, quiet, 2)
    second = await store.claim("w2", 64, LEASE_MS, _now(), MAX_ATTEMPTS, per_org_limit=5)
    assert sorted(c.execution.id for c in second) == sorted(quiet_ids)
    # Once flood's running ones end, it gets its share again.
    from tests.store.test_executions import _end

    assert len(await store.finish("w1", [_end(c.execution.id) for c in first[:3]])) == 3
    third = await store.claim("w1", 64, LEASE_MS, _now(), MAX_ATTEMPTS, per_org_limit=5)
    assert Counter(c.execution.organization for c in third) == {flood[0]: 3}


async def test_the_pending_backlog_of_an_organization_is_capped(pool):
    store = PostgresExecutionStore(pool)
    full, other = await _app(pool), await _app(pool)
    for _ in range(3):
        await store.submit(
            str(ULID()), *full, InvocationRequest("POST", "/", "", {}, b""), 0, "", _now(), 3
        )
    with pytest.raises(ResourceExhausted) as refused:
        await store.submit(
            str(ULID()), *full, InvocationRequest("POST", "/", "", {}, b""), 0, "", _now(), 3
        )
    assert refused.value.reason == "QUOTA_EXCEEDED"
    assert refused.value.metadata["quota"] == "pending_executions"
    assert refused.value.metadata["limit"] == "3" and refused.value.metadata["used"] == "3"
    # The other organization is not affected by the first one's backlog.
    _, created = await store.submit(
        str(ULID()), *other, InvocationRequest("POST", "/", "", {}, b""), 0, "", _now(), 3
    )
    assert created
