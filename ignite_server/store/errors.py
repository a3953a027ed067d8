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
    # Another backend crashed and PostgreSQL is resetting all of them.
    asyncpg.exceptions.CrashShutdownError,
    # A pooled connection whose backend sent its dying FATAL ("unexpected
    # postmaster exit") while idle is left in an error state that the next
    # operation on it trips over; the pool then discards it.
    asyncpg.exceptions.InternalClientError,
)
