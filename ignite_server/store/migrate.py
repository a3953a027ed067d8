"""Versioned SQL migrations, applied in order at start-up.

Each file ``migrations/NNNN_name.sql`` runs once, in its own transaction,
and is recorded in ``schema_migrations``. An advisory lock makes concurrent
starts against one database apply each migration exactly once.
"""

from __future__ import annotations

import importlib.resources
import re

import asyncpg
import structlog

log = structlog.get_logger(__name__)

#: Any constant works; it only has to be the same for every Ignite server.
_LOCK_KEY = 0x1671E


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in importlib.resources.files("ignite_server.store.migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_\w+\.sql", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply every migration not yet applied; return the names applied."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for number, name, sql in _migrations():
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name
                )
            log.info("store.migrated", migration=name)
            applied.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied
