"""A PostgreSQL of a test module's own (the embedded cluster the server
runs, migrated), and the rows a store test needs around its subject."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from ignite_launcher import private_state_dir
from ignite_server.store.database import open_pool
from ignite_server.store.embedded import EmbeddedPostgres


@asynccontextmanager
async def migrated_database() -> AsyncIterator[asyncpg.Pool]:
    """A fresh embedded cluster with the current schema; a pool to it."""
    cluster = EmbeddedPostgres(private_state_dir("ignite-pg-") / "postgres")
    pool = await open_pool(await cluster.start())
    try:
        yield pool
    finally:
        await pool.close()
        await cluster.stop()


async def insert_app(pool: asyncpg.Pool, organization: str, name: str) -> None:
    """An app row (all defaults) that executions can reference."""
    now = int(time.time() * 1000)
    await pool.execute(
        """
        INSERT INTO apps (organization, name, tier, limits, scaling, env, storage_mode,
            created_at_ms, updated_at_ms)
        VALUES ($1, $2, 0, '{}', '{}', '{}', 0, $3, $3)
        """,
        organization,
        name,
        now,
    )
