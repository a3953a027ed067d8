"""The server's Prometheus metrics: every series defined here, recorded
where things happen (core/invoker.py, core/revision.py, core/worker.py,
core/draft_builds.py, core/identity.py, api/rpc_boundary.py), and served on
the admin listener (``--metrics-listen``) by ignite_common/admin_http.py.

Names follow Prometheus' conventions: an ``ignite_`` prefix, base units
(seconds, bytes), ``_total`` on counters, histograms for latencies.
docs/observability.md lists each series with its labels.

Label values are bounded: ``app`` is ``org/name`` of an app that exists
(recorded only after the app was resolved), ``version`` one of its
versions, ``path`` one of ``PATHS``, ``outcome`` one of ``OUTCOMES``,
``reason`` a stable ErrorInfo reason of ours; never an execution id or
anything a caller typed.

Cost on the warm path: one dict lookup of a cached labelled child per
series per invocation (``_child``), no lock held across an await. Gauges
of what runs (pods, queues, the database pool) cost nothing per request:
a collector reads them from their owners when /metrics is scraped.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: How an invocation reached the server (gRPC metadata ``x-ignite-via``,
#: set by the gateway; anything else counts as ``grpc``); ``async`` is a
#: stored execution run by a worker.
PATHS = frozenset({"grpc", "http", "app_url", "mcp", "async"})
VIA_METADATA = "x-ignite-via"

#: What became of an invocation: the handler's answer by HTTP status class
#: (``ok`` 1xx-3xx, ``client_error`` 4xx, ``handler_error`` 5xx), or why it
#: got none (``timeout``, ``queue_full``, ``unavailable``: no pod could take
#: it, ``no_capacity``: no memory or quota for a pod, ``pod_failure``: the
#: pod died under it, ``cancelled``).
OUTCOMES = (
    "ok", "client_error", "handler_error", "timeout", "queue_full", "unavailable",
    "no_capacity", "pod_failure", "cancelled",
)  # fmt: skip

#: Latency buckets, seconds: from a warm call (~1 ms) to a slow handler.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
#: Platform overhead is small by design; finer buckets at the low end.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
#: A cold start: a pooled Python pod (~10 ms) to a Deno engine (~0.2 s) to
#: a heavy import (seconds).
COLD_START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Builds: Python in milliseconds, Rust from scratch in minutes.
BUILD_BUCKETS = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Queue age of an async execution, from submission to its claim.
QUEUE_AGE_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

INVOCATIONS = Counter(
    "ignite_invocations_total",
    "Invocations run on pods, by app, version, path and outcome.",
    ("app", "version", "path", "outcome"),
)
INVOKE_DURATION = Histogram(
    "ignite_invoke_duration_seconds",
    "Time from the server taking an invocation to its last byte, cold starts included.",
    ("app", "path"),
    buckets=LATENCY_BUCKETS,
)
PLATFORM_OVERHEAD = Histogram(
    "ignite_invoke_overhead_seconds",
    "Time of an invocation spent in the platform rather than waiting on the pod or a cold start.",
    ("path",),
    buckets=OVERHEAD_BUCKETS,
)
COLD_STARTS = Counter(
    "ignite_cold_starts_total",
    "Invocations that found no ready pod and waited for one to start.",
    ("app",),
)
COLD_START_DURATION = Histogram(
    "ignite_cold_start_duration_seconds",
    "How long a cold invocation waited for its pod.",
    ("app",),
    buckets=COLD_START_BUCKETS,
)
ACTIVATIONS = Counter(
    "ignite_activations_total",
    "Times an app version went from no pod to starting one.",
    ("app",),
)
POD_STARTS = Counter(
    "ignite_pod_starts_total",
    "Pods started, by app and outcome (started, failed, refused: no memory or quota).",
    ("app", "outcome"),
)
QUEUE_REJECTIONS = Counter(
    "ignite_activation_queue_rejections_total",
    "Invocations refused because the app's activation queue was full (RESOURCE_EXHAUSTED).",
    ("app",),
)
BUILDS = Counter(
    "ignite_builds_total",
    "Draft builds by runtime and outcome (succeeded, failed).",
    ("runtime", "outcome"),
)
BUILD_DURATION = Histogram(
    "ignite_build_duration_seconds",
    "How long a draft build took, by runtime.",
    ("runtime",),
    buckets=BUILD_BUCKETS,
)
EXECUTIONS_SUBMITTED = Counter(
    "ignite_executions_submitted_total",
    "Asynchronous executions accepted (InvokeAsync; an idempotent repeat counts once).",
)
EXECUTIONS_FINISHED = Counter(
    "ignite_executions_finished_total",
    "Asynchronous executions that reached a terminal status, by status and error class.",
    ("status", "error_class"),
)
EXECUTION_RETRIES = Counter(
    "ignite_execution_retries_total",
    "Attempts of asynchronous executions sent back to the queue for a retry, by error class.",
    ("error_class",),
)
EXECUTION_QUEUE_AGE = Histogram(
    "ignite_execution_queue_age_seconds",
    "Time from an execution's submission (or its retry) to a worker claiming it.",
    buckets=QUEUE_AGE_BUCKETS,
)
TOKEN_FAILURES = Counter(
    "ignite_token_verification_failures_total",
    "Calls refused because their credential did not verify, by reason.",
    ("reason",),
)
RPCS = Counter(
    "ignite_grpc_server_handled_total",
    "RPCs completed by the server, by method and status code.",
    ("method", "code"),
)
RPC_DURATION = Histogram(
    "ignite_grpc_server_handling_seconds",
    "Time to complete an RPC (a stream: until its end), by method.",
    ("method",),
    buckets=LATENCY_BUCKETS,
)

#: How the invocation being handled reached the server (api/ sets it).
INVOCATION_PATH: contextvars.ContextVar[str] = contextvars.ContextVar(
    "ignite_invocation_path", default="grpc"
)

_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, cached: the warm path pays one dict lookup."""
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels) if labels else metric
    return child


def path_from_metadata(value: str | None) -> str:
    """The path label of an invocation from ``x-ignite-via`` (bounded)."""
    return value if value in PATHS and value != "async" else "grpc"


def outcome_of_status(status_code: int) -> str:
    """The outcome of an invocation the handler answered."""
    if status_code >= 500:
        return "handler_error"
    if status_code >= 400:
        return "client_error"
    return "ok"


def record_invocation(
    app: str,
    version: int,
    outcome: str,
    duration_s: float,
    *,
    cold_start_s: float | None = None,
    pod_s: float = 0.0,
) -> None:
    """One invocation run by the invoker (the path comes from the context)."""
    path = INVOCATION_PATH.get()
    _child(INVOCATIONS, app, str(version), path, outcome).inc()
    _child(INVOKE_DURATION, app, path).observe(duration_s)
    waited = cold_start_s or 0.0
    _child(PLATFORM_OVERHEAD, path).observe(max(0.0, duration_s - pod_s - waited))
    if cold_start_s is not None:
        _child(COLD_STARTS, app).inc()
        _child(COLD_START_DURATION, app).observe(cold_start_s)


def record_rpc(method: str, code: str, duration_s: float) -> None:
    """One RPC through api/rpc_boundary.py (methods are the services' own)."""
    _child(RPCS, method, code).inc()
    _child(RPC_DURATION, method).observe(duration_s)


def count(metric: Any, *labels: str) -> None:
    """Add one to a counter's labelled child."""
    _child(metric, *labels).inc()


def observe(metric: Any, value: float, *labels: str) -> None:
    """One observation of a histogram's labelled child."""
    _child(metric, *labels).observe(value)


# --- what runs now, read at scrape time -------------------------------------


@dataclass(frozen=True)
class RevisionLoad:
    """What one app version runs and holds, as its Revision knows it."""

    app: str
    ready_pods: int
    starting_pods: int
    queued: int
    in_flight: int


@dataclass(frozen=True)
class PoolUse:
    """A database connection pool's state."""

    size: int
    idle: int
    max_size: int


class _RuntimeCollector(Collector):
    def __init__(
        self,
        loads: Callable[[], Iterable[RevisionLoad]] | None,
        pool: Callable[[], PoolUse] | None,
    ) -> None:
        self._loads = loads
        self._pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self._loads is not None:
            pods = GaugeMetricFamily(
                "ignite_pods",
                "Pods of each app by state (ready, starting).",
                labels=("app", "state"),
            )
            queued = GaugeMetricFamily(
                "ignite_activation_queue_depth",
                "Invocations waiting for a pod slot, per app.",
                labels=("app",),
            )
            in_flight = GaugeMetricFamily(
                "ignite_invocations_in_flight",
                "Invocations running on pods now, per app.",
                labels=("app",),
            )
            totals: dict[str, list[int]] = {}
            for load in self._loads():
                t = totals.setdefault(load.app, [0, 0, 0, 0])
                t[0] += load.ready_pods
                t[1] += load.starting_pods
                t[2] += load.queued
                t[3] += load.in_flight
            for app, (ready, starting, waiting, running) in sorted(totals.items()):
                pods.add_metric((app, "ready"), ready)
                pods.add_metric((app, "starting"), starting)
                queued.add_metric((app,), waiting)
                in_flight.add_metric((app,), running)
            yield pods
            yield queued
            yield in_flight
        if self._pool is not None:
            use = self._pool()
            connections = GaugeMetricFamily(
                "ignite_db_pool_connections",
                "PostgreSQL connections of the server's pool by state (in_use, idle).",
                labels=("state",),
            )
            connections.add_metric(("in_use",), use.size - use.idle)
            connections.add_metric(("idle",), use.idle)
            yield connections
            yield GaugeMetricFamily(
                "ignite_db_pool_max_connections",
                "The most connections the server's PostgreSQL pool opens.",
                value=use.max_size,
            )


_collector: _RuntimeCollector | None = None


def watch_runtime(
    loads: Callable[[], Iterable[RevisionLoad]] | None = None,
    pool: Callable[[], PoolUse] | None = None,
) -> None:
    """Report the pods, queues and pool these callables describe on every
    scrape (server.py wires them; a second call replaces the first)."""
    global _collector
    if _collector is not None:
        REGISTRY.unregister(_collector)
    _collector = _RuntimeCollector(loads, pool)
    REGISTRY.register(_collector)
