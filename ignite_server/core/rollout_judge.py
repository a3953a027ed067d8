"""Judging one step of a gradual rollout, with no I/O.

A ``StepWindow`` collects, for the old and the new version, every request
this server ran during the step: whether it failed (the platform could not
serve it, or the handler answered 5xx) and how long it took. At the step's
end ``judge`` compares the new version with the old one:

* **error rate**: rolled back when the new version's failure share exceeds
  the old one's by more than ``max_error_rate_increase_pct`` points;
* **latency**: rolled back when the new version's p95 exceeds the old one's
  by more than ``max_p95_increase_pct`` percent *and* by at least
  ``P95_SLACK_MS`` (a 2 ms p95 against 1 ms is noise, not a regression);
* a new version that served fewer than ``min_requests`` requests cannot be
  judged: the step passes, and the verdict says so.

Latencies are kept up to ``MAX_SAMPLES`` per version and step, then sampled
(reservoir), so a busy app's window stays small; counts stay exact.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ignite_server.domain.models import RolloutPolicy

#: A p95 regression smaller than this is never a reason to roll back.
P95_SLACK_MS = 20.0
#: Latency samples kept per version and step.
MAX_SAMPLES = 10_000


@dataclass
class VersionSample:
    """One version's requests during a step."""

    requests: int = 0
    failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, failed: bool, seconds: float, rng: random.Random) -> None:
        self.requests += 1
        self.failures += failed
        if len(self.latencies_ms) < MAX_SAMPLES:
            self.latencies_ms.append(seconds * 1000)
        else:
            slot = rng.randrange(self.requests)
            if slot < MAX_SAMPLES:
                self.latencies_ms[slot] = seconds * 1000

    @property
    def error_rate_pct(self) -> float:
        return 100.0 * self.failures / self.requests if self.requests else 0.0

    @property
    def p95_ms(self) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    def text(self, version: int) -> str:
        return (
            f"v{version} {self.failures}/{self.requests} failed ({self.error_rate_pct:.1f}%),"
            f" p95 {self.p95_ms:.0f} ms"
        )


@dataclass
class StepWindow:
    """What this server saw of one step of one rollout."""

    step: int
    from_version: int
    to_version: int
    old: VersionSample = field(default_factory=VersionSample)
    new: VersionSample = field(default_factory=VersionSample)
    _rng: random.Random = field(default_factory=random.Random)

    def add(self, version: int, failed: bool, seconds: float) -> None:
        if version == self.to_version:
            self.new.add(failed, seconds, self._rng)
        elif version == self.from_version:
            self.old.add(failed, seconds, self._rng)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    #: The numbers and why, for the app's logs and GetApp.
    summary: str


def judge(window: StepWindow, policy: RolloutPolicy) -> Verdict:
    """Pass or roll back the step ``window`` saw (see the module docstring)."""
    new, old = window.new, window.old
    numbers = f"{new.text(window.to_version)}; {old.text(window.from_version)}"
    if new.requests < policy.min_requests:
        return Verdict(
            True,
            f"{numbers}: too few requests to judge (fewer than {policy.min_requests}), passed",
        )
    error_increase = new.error_rate_pct - old.error_rate_pct
    if error_increase > policy.max_error_rate_increase_pct:
        return Verdict(
            False,
            f"{numbers}: the error rate is {error_increase:.1f} points above the old"
            f" version's (bound {policy.max_error_rate_increase_pct})",
        )
    p95_bound = old.p95_ms * (1 + policy.max_p95_increase_pct / 100)
    if old.requests and new.p95_ms > p95_bound and new.p95_ms - old.p95_ms >= P95_SLACK_MS:
        return Verdict(
            False,
            f"{numbers}: p95 is {new.p95_ms - old.p95_ms:.0f} ms above the old version's"
            f" (bound +{policy.max_p95_increase_pct}% and {P95_SLACK_MS:.0f} ms)",
        )
    return Verdict(True, f"{numbers}: within bounds")
