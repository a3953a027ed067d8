"""One way into PostgreSQL for every store: a pooled connection whose
driver failures leave the store as domain errors.

A store's method runs its statements inside ``async with connection(pool)
as conn``; if the server is down, restarting or unreachable (whatever
asyncpg raises for that, see errors.py), the caller gets ``Unavailable`` /
``DATABASE_DOWN``, so nothing above the stores knows which driver is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import structlog

from ignite_server.domain.errors import Unavailable
from ignite_server.store.errors import DATABASE_DOWN
from ignite_server.store.migrate import migrate

log = structlog.get_logger(__name__)


async def open_pool(dsn: str, *, max_size: int = 20) -> asyncpg.Pool:
    """Open a pool and bring the schema up to date (store/migrations/)."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size)
    async with pool.acquire() as conn:
        await migrate(conn)
    return pool


@contextlib.asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection from ``pool``; driver failures become Unavailable."""
    try:
        async with pool.acquire() as conn:
            yield conn
    except DATABASE_DOWN as exc:
        log.warning("database.down", error=str(exc) or type(exc).__name__)
        raise Unavailable(
            "the database is unavailable; retry later", reason="DATABASE_DOWN"
        ) from exc
