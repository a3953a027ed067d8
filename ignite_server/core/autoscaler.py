"""How many pods one app version should run: the scaling decision, no I/O.

Every observation gives a *desired* pod count:

* ``CONCURRENCY``: ``ceil((in_flight + waiting) / threshold)``; the default
  threshold is the pod's own concurrency limit (pods are filled up).
* ``REQUEST_RATE``: ``ceil(rate / threshold)`` with ``rate`` the requests
  started per second over the last ``RATE_WINDOW_SECS``; never less than
  the pods the in-flight and waiting requests need at the pod concurrency
  limit, so a slow handler is not starved by a low rate.

The *target* is the largest desired count observed during the last
``scaledown_period_secs`` (scale up at once, scale down only after the
signal stayed low for the whole period: Knative's scale-down delay), raised
to ``reserved_capacity`` and capped at ``max_replicas``. With no traffic the
desired count is 0, so an app with no reserved capacity scales to zero one
period after its last request.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from ignite_server.domain.models import ScaleMetric, Scaling

#: The window over which REQUEST_RATE is measured: long enough to smooth
#: bursts of a few requests, short enough to follow a ramp (Knative's panic
#: window is 6 s).
RATE_WINDOW_SECS = 6
#: Requests per second one pod is expected to absorb when REQUEST_RATE is
#: chosen without a threshold: a typical short Python handler runs in a few
#: ms, so 100/s keeps a pod busy without queueing.
DEFAULT_RATE_THRESHOLD = 100
#: Observations within one bucket keep only their maximum, so the history
#: of a busy app (one observation per queued request) stays small: a 300 s
#: period is 600 buckets.
HISTORY_BUCKET_SECS = 0.5


@dataclass
class Load:
    """One observation of an app version's traffic."""

    in_flight: int
    waiting: int


class Autoscaler:
    """The scaling decision for one app version (see the module docstring)."""

    def __init__(self, scaling: Scaling, capacity: int) -> None:
        self.scaling = scaling
        #: Requests one pod takes at once (its max_concurrency).
        self.capacity = max(1, capacity)
        self._history: deque[tuple[float, int]] = deque()
        # Per-second buckets of request starts: [second, count].
        self._starts: deque[list[int]] = deque()

    def request_started(self, now: float) -> None:
        """Count one request towards the REQUEST_RATE."""
        second = int(now)
        if self._starts and self._starts[-1][0] == second:
            self._starts[-1][1] += 1
        else:
            self._starts.append([second, 1])
        self._trim_starts(now)

    def rate(self, now: float) -> float:
        """Requests started per second over the last RATE_WINDOW_SECS."""
        self._trim_starts(now)
        return sum(count for _, count in self._starts) / RATE_WINDOW_SECS

    def _trim_starts(self, now: float) -> None:
        oldest = int(now) - RATE_WINDOW_SECS
        while self._starts and self._starts[0][0] <= oldest:
            self._starts.popleft()

    def desired(self, now: float, load: Load) -> int:
        """The pods this very moment's load asks for, within the bounds."""
        demand = load.in_flight + load.waiting
        needed = math.ceil(demand / self.capacity)
        threshold = self.scaling.scale_threshold
        if self.scaling.scale_metric == ScaleMetric.REQUEST_RATE:
            per_pod = threshold or DEFAULT_RATE_THRESHOLD
            wanted = max(needed, math.ceil(self.rate(now) / per_pod))
        else:
            per_pod = min(threshold, self.capacity) if threshold else self.capacity
            wanted = math.ceil(demand / per_pod)
        return self._bounded(wanted)

    def observe(self, now: float, load: Load) -> int:
        """Record an observation and return the target pod count."""
        desired = self.desired(now, load)
        bucket = now - now % HISTORY_BUCKET_SECS
        if self._history and self._history[-1][0] == bucket:
            desired = max(desired, self._history[-1][1])
            self._history[-1] = (bucket, desired)
        else:
            self._history.append((bucket, desired))
        horizon = now - self.scaling.scaledown_period_secs
        while self._history and self._history[0][0] + HISTORY_BUCKET_SECS <= horizon:
            self._history.popleft()
        return self._bounded(max(d for _, d in self._history))

    def forget_peak(self) -> None:
        """Drop the peak kept for the scale-down period: the machine took
        the revision's idle pods back, so its target starts over from the
        load it sees next."""
        self._history.clear()

    def _bounded(self, pods: int) -> int:
        ceiling = max(1, self.scaling.max_replicas)
        return min(ceiling, max(pods, self.scaling.reserved_capacity))
