"""Terminal states of executions, written in batches.

A worker that has run an execution hands its end to the ``CompletionWriter``
and takes the next one at once; the writer keeps one write in flight. Ends
that arrive while it writes, or during the LINGER_SECS it waits after the
first of a batch, go into the next write, so a busy server records many ends
per statement and an idle one adds a couple of milliseconds to one.

The write is conditional on the lease, as a single one was: an end whose
lease went to another worker meanwhile is not recorded (that worker's run
is). If the write fails (the database is down), the ends are dropped: their
leases lapse and the executions run again, as when a worker dies. The
writer counts what it recorded (ignite_executions_finished_total) and logs
what it could not, so the hot path logs nothing per execution.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from ignite_server.observability import metrics as platform_metrics
from ignite_server.ports.execution_store import ExecutionEnd, ExecutionStore

log = structlog.get_logger(__name__)

#: How long the first end of a batch waits for others: a couple of
#: milliseconds on an asynchronous invocation buys a statement per batch
#: instead of one per execution.
LINGER_SECS = 0.002
#: The most ends in one statement (bounds the statement's parameters).
MAX_BATCH = 256
#: Ends buffered before ``record`` makes its caller wait for a write, so a
#: slow database slows the workers instead of growing the buffer.
MAX_BUFFERED = 4 * MAX_BATCH


class CompletionWriter:
    """Buffers the ends of executions leased to ``owner`` and writes them."""

    def __init__(
        self,
        store: ExecutionStore,
        owner: str,
        *,
        linger_secs: float = LINGER_SECS,
        max_batch: int = MAX_BATCH,
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        #: Told after each batch is written (the claimer: shares freed).
        self._on_written = on_written
        self._owner = owner
        self._linger = linger_secs
        self._max_batch = max_batch
        self._buffer: list[ExecutionEnd] = []
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop(), name="execution-completions")

    async def close(self) -> None:
        """Stop the loop, then write what is buffered (shutdown keeps the
        work that finished instead of running it again)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._buffer:
            await self._write_batch()

    async def record(self, end: ExecutionEnd) -> None:
        """Queue ``end`` for the next write."""
        while len(self._buffer) >= MAX_BUFFERED:
            self._room.clear()
            await self._room.wait()
        self._buffer.append(end)
        self._arrived.set()

    async def _write_loop(self) -> None:
        while True:
            await self._arrived.wait()
            if len(self._buffer) < self._max_batch:
                await asyncio.sleep(self._linger)
            await self._write_batch()

    async def _write_batch(self) -> None:
        batch = self._buffer[: self._max_batch]
        del self._buffer[: self._max_batch]
        if not self._buffer:
            self._arrived.clear()
        try:
            recorded = await self._store.finish(self._owner, batch)
        except Exception:
            log.exception("executions.completion_failed", count=len(batch))
            return
        finally:
            self._room.set()
        if self._on_written is not None:
            self._on_written()
        for end in batch:
            if end.execution_id in recorded:
                platform_metrics.count(
                    platform_metrics.EXECUTIONS_FINISHED, end.status.name, end.error_class or "none"
                )
            else:
                log.warning(
                    "execution.completion_rejected",
                    execution_id=end.execution_id,
                    reason="lease lost",
                )
