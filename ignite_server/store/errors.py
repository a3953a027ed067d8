"""Driver failures that mean "the database cannot be reached right now"."""

from __future__ import annotations

import asyncpg

#: Raised by asyncpg when the server is down, restarting or unreachable.
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
)
