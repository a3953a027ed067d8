"""Time series of one app over the last hour, for the console's charts,
from the platform's own data: the server's /metrics, scraped by the gateway
every ``SCRAPE_SECS`` into a ring of one hour.

Per scrape and app the ring keeps the cumulative invocation count, the
cumulative buckets of ``ignite_invoke_duration_seconds`` (summed over
paths), the cold start count and the ready pods. A point of a series is the
difference of two neighbouring scrapes: invocations and cold starts in the
interval, p50 and p99 latency estimated from the bucket differences the way
PromQL's ``histogram_quantile`` does (linear within a bucket), and the ready
pods at its end. Nothing is kept per request; memory is bounded by
apps times ``HISTORY_SECS / SCRAPE_SECS``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field

import aiohttp
import structlog
from prometheus_client.parser import text_string_to_metric_families

from ignite_common.task_supervisor import TaskSupervisor

_log = structlog.get_logger("ignite_gateway.console")

#: How often the server's /metrics is read: fine enough for an hour's chart.
SCRAPE_SECS = 10.0
#: How long the ring remembers.
HISTORY_SECS = 3600.0


@dataclass
class _AppSample:
    invocations: float = 0.0
    cold_starts: float = 0.0
    ready_pods: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Scrape:
    at: float
    apps: dict[str, _AppSample]


def parse_scrape(text: str, at: float) -> _Scrape:
    """The per-app numbers the charts need from one /metrics text."""
    apps: dict[str, _AppSample] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            app = sample.labels.get("app")
            if app is None:
                continue
            entry = apps.setdefault(app, _AppSample())
            if sample.name == "ignite_invocations_total":
                entry.invocations += sample.value
            elif sample.name == "ignite_cold_starts_total":
                entry.cold_starts += sample.value
            elif sample.name == "ignite_pods" and sample.labels.get("state") == "ready":
                entry.ready_pods += sample.value
            elif sample.name == "ignite_invoke_duration_seconds_bucket":
                le = float(sample.labels["le"])
                entry.buckets[le] = entry.buckets.get(le, 0.0) + sample.value
    return _Scrape(at, apps)


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """``histogram_quantile(q, ...)`` over cumulative ``buckets`` (le → count)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count
            )
        previous_bound, previous_count = bound, count
    return previous_bound


class SeriesRing:
    """Scrapes ``metrics_url`` and answers an app's series."""

    def __init__(self, metrics_url: str, *, scrape_secs: float = SCRAPE_SECS) -> None:
        self.metrics_url = metrics_url
        self.scrape_secs = scrape_secs
        self._ring: deque[_Scrape] = deque(maxlen=int(HISTORY_SECS / scrape_secs) + 1)
        self._tasks = TaskSupervisor("console-series")
        self._session: aiohttp.ClientSession | None = None
        self.last_error = ""

    async def start(self) -> None:
        if self.metrics_url:
            timeout = aiohttp.ClientTimeout(total=max(2.0, self.scrape_secs))
            session = self._session = aiohttp.ClientSession(timeout=timeout)
            self._tasks.every(
                self.scrape_secs, lambda: self.scrape(session), name="scrape", first=True
            )

    async def close(self) -> None:
        await self._tasks.close()
        if self._session is not None:
            await self._session.close()

    async def scrape(self, session: aiohttp.ClientSession) -> None:
        try:
            async with session.get(self.metrics_url) as response:
                text = await response.text()
            self._ring.append(parse_scrape(text, time.time()))
            self.last_error = ""
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.last_error = f"the server's metrics could not be read: {type(exc).__name__}"
            _log.warning("console.scrape_failed", url=self.metrics_url, error=type(exc).__name__)

    def series(self, app: str) -> list[dict[str, float | None]]:
        """The app's points, oldest first (see the module docstring)."""
        points: list[dict[str, float | None]] = []
        scrapes = list(self._ring)
        for before, after in itertools.pairwise(scrapes):
            now = after.apps.get(app, _AppSample())
            then = before.apps.get(app, _AppSample())
            delta = {
                le: max(0.0, count - then.buckets.get(le, 0.0)) for le, count in now.buckets.items()
            }
            p50, p99 = quantile(0.5, delta), quantile(0.99, delta)
            points.append(
                {
                    "t": round(after.at * 1000),
                    "invocations": max(0.0, now.invocations - then.invocations),
                    "p50_ms": None if p50 is None else round(p50 * 1000, 2),
                    "p99_ms": None if p99 is None else round(p99 * 1000, 2),
                    "cold_starts": max(0.0, now.cold_starts - then.cold_starts),
                    "ready_pods": now.ready_pods,
                }
            )
        return points
