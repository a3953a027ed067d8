"""App log lines waiting to be written, divided per app and per organization.

Lines arrive from pods' output readers (``add``, a plain call that must stay
cheap: it runs once per line of a flood) and leave in batches for the store
(``take``). What one app prints never costs another app's lines:

- each app has a token bucket of APP_LINES_PER_SEC lines (APP_LINE_BURST at
  once): an app printing faster loses the excess at once, before it is
  buffered;
- each app has its own FIFO of at most APP_MAX_BUFFERED lines; a full one
  drops that app's oldest line. All apps together hold at most
  MAX_BUFFERED_LINES; past that the app holding the most gives up its
  oldest line, never a quiet app;
- batches are taken round-robin across apps, so a quiet app's lines are in
  the next write, not behind a flood;
- an organization whose lines stored today (UTC) reached its daily quota
  gets no more lines stored until midnight UTC.

Every line dropped is counted for its app, and a batch carries one platform
line in that app's own log saying how many were dropped and why (at most
one per app every NOTICE_INTERVAL_SECS, so a flood leaves a few notices, not
a flood of them), so a reader of the log sees the gap.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace

from ignite_server.domain.models import LogEntry, LogStream

#: Lines per second one app may have stored, sustained: far above what a
#: handler that logs a few lines per request at a thousand requests per
#: second prints, and a fraction of what one database writes.
APP_LINES_PER_SEC = 2_000
#: Lines one app may print at once above that rate (a stack trace, a burst
#: of requests).
APP_LINE_BURST = 20_000
#: Lines one app may have waiting while the store catches up.
APP_MAX_BUFFERED = 20_000
#: Lines all apps together may have waiting: bounds the server's memory
#: (at most 16 KiB each).
MAX_BUFFERED_LINES = 50_000
#: A log line longer than this is cut (a handler printing a blob).
MAX_LINE_CHARS = 16 * 1024
#: An app's drop notices are at least this far apart.
NOTICE_INTERVAL_SECS = 1.0
#: Bytes a stored line costs beyond its text (its row, the indexes), for
#: the daily quota.
LINE_OVERHEAD_BYTES = 64

#: Why lines were dropped, as the notice says it.
RATE = "the app printed more than {rate} lines per second"
BACKLOG = "the log store fell behind"
QUOTA = "organization {org} used its log quota of {mib} MiB for today (UTC)"


def utc_day(timestamp_ms: int) -> str:
    """The UTC date of a timestamp, as the quota counts days (YYYY-MM-DD)."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp_ms / 1000))


def line_bytes(message: str) -> int:
    """What a line counts against the daily quota."""
    return len(message.encode("utf-8", "replace")) + LINE_OVERHEAD_BYTES


@dataclass
class _AppLog:
    """One app's waiting lines, its rate bucket and what it lost."""

    organization: str
    app: str
    lines: deque[LogEntry] = field(default_factory=deque)
    tokens: float = APP_LINE_BURST
    refilled: float = field(default_factory=time.monotonic)
    #: Lines dropped since the last notice, by cause.
    dropped: dict[str, int] = field(default_factory=dict)
    #: The newest version that printed (the notice goes under it).
    version: int = 0
    #: When the last drop notice was written (monotonic seconds).
    noticed_at: float = -1e9


class LogBuffer:
    """Waiting log lines, per app; see the module docstring."""

    def __init__(
        self,
        *,
        max_log_bytes_per_day: int,
        lines_per_sec: float = APP_LINES_PER_SEC,
        burst: int = APP_LINE_BURST,
        app_max_buffered: int = APP_MAX_BUFFERED,
        max_buffered: int = MAX_BUFFERED_LINES,
    ) -> None:
        self._quota = max_log_bytes_per_day
        self._rate = lines_per_sec
        self._burst = burst
        self._app_max = app_max_buffered
        self._max = max_buffered
        self._apps: dict[tuple[str, str], _AppLog] = {}
        self._size = 0
        #: Bytes each organization stored per (organization, UTC day), as the
        #: store last counted them (every server's lines) ...
        self._reported: dict[tuple[str, str], int] = {}
        #: ... and what this server accepted since it last reported.
        self._unreported: dict[tuple[str, str], int] = {}

    def __len__(self) -> int:
        return self._size

    def add(self, entry: LogEntry) -> None:
        """Buffer a line, or count it as dropped for its app."""
        key = (entry.organization, entry.app)
        app = self._apps.get(key)
        if app is None:
            app = self._apps[key] = _AppLog(entry.organization, entry.app, tokens=self._burst)
        app.version = entry.version or app.version
        if entry.stream != LogStream.PLATFORM:
            if not self._take_token(app):
                app.dropped[RATE] = app.dropped.get(RATE, 0) + 1
                return
            if self._over_quota(entry):
                app.dropped[QUOTA] = app.dropped.get(QUOTA, 0) + 1
                return
        if len(entry.message) > MAX_LINE_CHARS:
            entry = replace(entry, message=entry.message[:MAX_LINE_CHARS] + "…")
        if len(app.lines) >= self._app_max:
            self._drop_oldest(app)
        elif self._size >= self._max:
            self._drop_oldest(max(self._apps.values(), key=lambda a: len(a.lines)))
        app.lines.append(entry)
        self._size += 1
        if entry.stream != LogStream.PLATFORM:
            usage_key = (entry.organization, utc_day(entry.timestamp_ms))
            self._unreported[usage_key] = self._unreported.get(usage_key, 0) + line_bytes(
                entry.message
            )

    def admits(self, organization: str, app: str) -> bool:
        """Whether a line of the app would pass its rate now (its bucket is
        refilled, not drawn from)."""
        state = self._apps.get((organization, app))
        if state is None or state.tokens >= 1:
            return True
        now = time.monotonic()
        state.tokens = min(self._burst, state.tokens + (now - state.refilled) * self._rate)
        state.refilled = now
        return state.tokens >= 1

    def drop(self, organization: str, app: str, lines: int) -> None:
        """Count ``lines`` of the app as dropped for its rate, unread."""
        key = (organization, app)
        state = self._apps.get(key)
        if state is None:
            state = self._apps[key] = _AppLog(organization, app, tokens=0)
        state.dropped[RATE] = state.dropped.get(RATE, 0) + lines

    def take(self, limit: int) -> list[LogEntry]:
        """Up to ``limit`` lines, round-robin across apps, each app's drop
        notice first; apps with nothing left are forgotten."""
        batch: list[LogEntry] = []
        now = time.monotonic()
        for app in list(self._apps.values()):
            if app.dropped and now - app.noticed_at >= NOTICE_INTERVAL_SECS:
                app.noticed_at = now
                batch.append(self._notice(app))
        while len(batch) < limit and self._size:
            active = [a for a in self._apps.values() if a.lines]
            share = max(1, (limit - len(batch)) // len(active))
            for app in active:
                for _ in range(min(share, len(app.lines), limit - len(batch))):
                    batch.append(app.lines.popleft())
                    self._size -= 1
        for key in [k for k, a in self._apps.items() if not a.lines and not a.dropped]:
            # An idle app is forgotten once its bucket is full again:
            # forgetting a flooding app's bucket would refill it early.
            app = self._apps[key]
            if app.tokens + (now - app.refilled) * self._rate >= self._burst:
                del self._apps[key]
        return batch

    def unreported_usage(self) -> dict[tuple[str, str], int]:
        """Bytes accepted per (organization, UTC day) since the last call,
        for the store to add to its counts."""
        usage, self._unreported = self._unreported, {}
        return usage

    def stored_usage(self, totals: dict[tuple[str, str], int]) -> None:
        """The store's counts per (organization, UTC day) after it added
        this server's; counts of past days are forgotten."""
        self._reported.update(totals)
        today = utc_day(int(time.time() * 1000))
        for key in [k for k in self._reported if k[1] < today]:
            del self._reported[key]

    # --- internals ------------------------------------------------------------

    def _take_token(self, app: _AppLog) -> bool:
        if app.tokens < 1:
            now = time.monotonic()
            app.tokens = min(self._burst, app.tokens + (now - app.refilled) * self._rate)
            app.refilled = now
            if app.tokens < 1:
                return False
        app.tokens -= 1
        return True

    def _over_quota(self, entry: LogEntry) -> bool:
        key = (entry.organization, utc_day(entry.timestamp_ms))
        return self._reported.get(key, 0) + self._unreported.get(key, 0) >= self._quota

    def _drop_oldest(self, app: _AppLog) -> None:
        if app.lines:
            app.lines.popleft()
            self._size -= 1
            app.dropped[BACKLOG] = app.dropped.get(BACKLOG, 0) + 1

    def _notice(self, app: _AppLog) -> LogEntry:
        causes = "; ".join(
            f"{count} because {cause}" for cause, count in sorted(app.dropped.items())
        ).format(
            rate=int(self._rate),
            org=app.organization,
            mib=self._quota // (1024 * 1024),
        )
        count = sum(app.dropped.values())
        app.dropped = {}
        return LogEntry(
            timestamp_ms=int(time.time() * 1000),
            organization=app.organization,
            app=app.app,
            version=app.version,
            execution_id="",
            stream=LogStream.PLATFORM,
            message=f"{count} lines dropped ({causes})",
        )
