"""App logs: collection from pods and reading, with follow.

Pods' output arrives line by line through ``emit`` (a plain call, cheap
enough for a pod's output reader) into a bounded buffer that a background
task writes to the store in batches every FLUSH_INTERVAL_SECS. If the store
falls behind and the buffer fills, the oldest lines are dropped and a
platform entry says how many, so a log flood from one app cannot exhaust the
server's memory. Readers get past entries first, then (with follow) new ones
as the store announces them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.core.validation import check_name
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import LogEntry, LogStream
from ignite_server.ports.log_store import LOG_CHANNEL, LogStore

log = structlog.get_logger(__name__)

#: How often buffered lines are written: low enough that `logs -f` feels live.
FLUSH_INTERVAL_SECS = 0.1
#: Lines held in memory at most while the store catches up.
MAX_BUFFERED_LINES = 50_000
#: A log line longer than this is cut (a handler printing a blob).
MAX_LINE_CHARS = 16 * 1024
#: Default retention of log entries (docs/logs.md).
DEFAULT_RETENTION_SECS = 7 * 86_400
#: How often the janitor deletes expired entries.
JANITOR_INTERVAL_SECS = 600
#: Past entries returned by default before following.
DEFAULT_READ_LIMIT = 1000
MAX_READ_LIMIT = 10_000
#: Longest a follower sleeps without a notification before looking anyway.
FOLLOW_POLL_SECS = 1.0


class LogService:
    def __init__(
        self,
        store: LogStore,
        wait_for_news: Callable[[str, float], Awaitable[None]],
        retention_secs: int = DEFAULT_RETENTION_SECS,
    ) -> None:
        self._store = store
        self._wait = wait_for_news
        self._retention_ms = retention_secs * 1000
        self._buffer: deque[LogEntry] = deque()
        self._dropped = 0
        self._wake = asyncio.Event()
        self._tasks = TaskSupervisor("logs")

    def emit(self, entry: LogEntry) -> None:
        if len(entry.message) > MAX_LINE_CHARS:
            entry = LogEntry(**{**entry.__dict__, "message": entry.message[:MAX_LINE_CHARS] + "…"})
        if len(self._buffer) >= MAX_BUFFERED_LINES:
            self._buffer.popleft()
            self._dropped += 1
        self._buffer.append(entry)

    def platform_event(
        self, organization: str, app: str, version: int, execution_id: str, message: str
    ) -> None:
        """A line from the platform itself: cold start, pod killed, timeout, OOM."""
        self.emit(
            LogEntry(
                timestamp_ms=int(time.time() * 1000),
                organization=organization,
                app=app,
                version=version,
                execution_id=execution_id,
                stream=LogStream.PLATFORM,
                message=message,
            )
        )

    async def start(self) -> None:
        self._tasks.every(FLUSH_INTERVAL_SECS, self.flush, name="flush")
        self._tasks.every(JANITOR_INTERVAL_SECS, self._expire, name="janitor", first=True)

    async def close(self) -> None:
        await self._tasks.close()
        await self.flush()

    async def flush(self) -> None:
        if self._dropped:
            log.warning("logs.dropped", lines=self._dropped)
            self._dropped = 0
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(len(self._buffer), 2000))]
            try:
                await self._store.write(batch)
            except Exception:
                log.exception("logs.write_failed", lines=len(batch))
                return

    async def _expire(self) -> None:
        cutoff = int(time.time() * 1000) - self._retention_ms
        deleted = await self._store.delete_older_than(cutoff)
        if deleted:
            log.info("logs.expired", entries=deleted)

    async def read(
        self,
        organization: str,
        app: str,
        execution_id: str,
        *,
        follow: bool,
        since_ms: int,
        limit: int,
    ) -> AsyncIterator[LogEntry]:
        """Past entries (the most recent ``limit``), then new ones if ``follow``."""
        check_name(organization, "organization_name")
        if app:
            check_name(app, "app_name")
        if limit < 0:
            raise InvalidArgument(
                "limit must not be negative", reason="OUT_OF_RANGE", metadata={"field": "limit"}
            )
        limit = min(limit or DEFAULT_READ_LIMIT, MAX_READ_LIMIT)
        last_id = 0
        for row_id, entry in await self._store.read(
            organization, app, execution_id, since_ms, 0, limit, newest=True
        ):
            last_id = row_id
            yield entry
        while follow:
            await self._wait(LOG_CHANNEL, FOLLOW_POLL_SECS)
            while True:
                rows = await self._store.read(
                    organization, app, execution_id, since_ms, last_id, 500, newest=False
                )
                for row_id, entry in rows:
                    last_id = row_id
                    yield entry
                if len(rows) < 500:
                    break
