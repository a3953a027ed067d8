"""App logs: collection from pods and reading, with follow.

Pods' output arrives line by line through ``emit`` (a plain call, cheap
enough for a pod's output reader) into a ``LogBuffer`` (core/log_buffer.py:
per-app rate limits and FIFOs, the organizations' daily quotas) that a
background task writes to the store in batches every FLUSH_INTERVAL_SECS,
round-robin across apps. A flood from one app loses that app's own lines,
with a notice in that app's log, never another app's; the server's memory
stays bounded. Readers get past entries first, then (with follow) new ones
as the store announces them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog

from ignite_server.core.log_buffer import LogBuffer
from ignite_server.core.validation import check_name
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import LogEntry, LogStream
from ignite_server.domain.quotas import DEFAULT_MAX_LOG_BYTES_PER_DAY
from ignite_server.ports.log_store import LOG_CHANNEL, LogStore
from ignite_server.ports.pod_backend import PodLogRecord

log = structlog.get_logger(__name__)

#: How often buffered lines are written: low enough that `logs -f` feels live.
FLUSH_INTERVAL_SECS = 0.1
#: Lines per write: one statement each.
WRITE_BATCH = 2000
#: Default retention of log entries (docs/logs.md).
DEFAULT_RETENTION_SECS = 7 * 86_400
#: How often the janitor deletes expired entries.
JANITOR_INTERVAL_SECS = 600
#: Past entries returned by default before following.
DEFAULT_READ_LIMIT = 1000
MAX_READ_LIMIT = 10_000
#: Longest a follower sleeps without a notification before looking anyway.
FOLLOW_POLL_SECS = 1.0


class PodLogSink:
    """Pods' lines into the app logs: a ``LogSink`` that is also a
    ``LogGate`` (ports/pod_backend.py), so a pod's reader can drop a
    flood's lines by the chunk, unparsed, while the app is past its rate."""

    def __init__(self, buffer: LogBuffer, emit: Callable[[LogEntry], None]) -> None:
        self._buffer = buffer
        self._emit = emit

    def __call__(self, record: PodLogRecord) -> None:
        organization, _, app = record.app_id.partition("/")
        self._emit(
            LogEntry(
                timestamp_ms=record.timestamp_ms,
                organization=organization,
                app=app,
                version=record.version,
                execution_id=record.execution_id,
                stream=record.stream,
                message=record.message,
            )
        )

    def admits(self, app_id: str) -> bool:
        organization, _, app = app_id.partition("/")
        return self._buffer.admits(organization, app)

    def dropped(self, app_id: str, lines: int) -> None:
        organization, _, app = app_id.partition("/")
        self._buffer.drop(organization, app, lines)


class LogService:
    def __init__(
        self,
        store: LogStore,
        wait_for_news: Callable[[str, float], Awaitable[None]],
        retention_secs: int = DEFAULT_RETENTION_SECS,
        *,
        max_log_bytes_per_day: int = DEFAULT_MAX_LOG_BYTES_PER_DAY,
    ) -> None:
        self._store = store
        self._wait = wait_for_news
        self._retention_ms = retention_secs * 1000
        self._buffer = LogBuffer(max_log_bytes_per_day=max_log_bytes_per_day)
        self._tasks: list[asyncio.Task[None]] = []

    def emit(self, entry: LogEntry) -> None:
        """Take one line for the store (or count it dropped for its app)."""
        self._buffer.add(entry)

    def pod_sink(self) -> PodLogSink:
        """What pod backends send their pods' lines to."""
        return PodLogSink(self._buffer, self.emit)

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
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="logs-flush"),
            asyncio.create_task(self._janitor_loop(), name="logs-janitor"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def flush(self) -> None:
        """Write what is buffered (what arrives meanwhile waits for the next
        flush), then add the bytes accepted to the organizations' counts."""
        for _ in range(len(self._buffer) // WRITE_BATCH + 1):
            batch = self._buffer.take(WRITE_BATCH)
            if not batch:
                break
            try:
                await self._store.write(batch)
            except Exception:
                log.exception("logs.write_failed", lines=len(batch))
                break
        usage = self._buffer.unreported_usage()
        if usage:
            try:
                self._buffer.stored_usage(await self._store.add_usage(usage))
            except Exception:
                log.exception("logs.usage_failed")

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_SECS)
            await self.flush()

    async def _janitor_loop(self) -> None:
        while True:
            try:
                cutoff = int(time.time() * 1000) - self._retention_ms
                deleted = await self._store.delete_older_than(cutoff)
                if deleted:
                    log.info("logs.expired", entries=deleted)
            except Exception:
                log.exception("logs.janitor_failed")
            await asyncio.sleep(JANITOR_INTERVAL_SECS)

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
