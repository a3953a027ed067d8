"""The port for app logs: written in batches, read by app or execution."""

from __future__ import annotations

from typing import Protocol

from ignite_server.domain.models import LogEntry

#: The notification channel a store signals when log lines are written.
LOG_CHANNEL = "ignite_logs"


class LogStore(Protocol):
    """Stored log lines, each with an increasing id."""

    async def write(self, entries: list[LogEntry]) -> None: ...

    async def read(
        self,
        organization: str,
        app: str,
        execution_id: str,
        since_ms: int,
        after_id: int,
        limit: int,
        newest: bool,
    ) -> list[tuple[int, LogEntry]]:
        """(id, entry) pairs in id order; the ``newest`` ``limit`` when asked."""
        ...

    async def add_usage(self, usage: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """Add bytes per (organization, UTC day "YYYY-MM-DD") to the stored
        counts; returns the counts after the addition."""
        ...

    async def delete_older_than(self, ts_ms: int) -> int:
        """Delete entries (and daily counts) older than ``ts_ms``."""
        ...
