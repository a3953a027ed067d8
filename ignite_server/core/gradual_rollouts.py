"""Gradual rollouts: traffic moves to a new version in steps, and back by
itself when a step shows the new version worse than the old one.

``begin`` (PublishDraft with a RolloutPolicy) leaves the old version active
and gives the new one (already made ready by the gate) the first step's
share of a traffic split. Each server runs one loop (``start``/``close``)
that every ``TICK_SECS`` claims the running rollouts no other live server
holds (a lease of ``LEASE_MS``, renewed by every claim) and, when a step's
``step_secs`` are over, judges it (rollout_judge.py) on what this server
saw of the step: passed, the next step's share (the last step, 100 %, makes
the new version active and ends the rollout, COMPLETED); failed, the old
version takes all traffic again (ROLLED_BACK). Each decision and its numbers
go to the app's logs and to the stored rollout GetApp shows.

A server that takes a running rollout over (after a restart, or from a
server that stopped) did not see the step from its start: it starts the
step again, with the step's split applied once more, so the stored step is
where a rollout goes on after any restart. A publish, rollback, traffic
change or settings change made meanwhile cancels the rollout; every step
re-reads the stored rollout under the app's lock (app_locks.py), so a
cancelled one never moves traffic again.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.core.app_locks import AppLocks
from ignite_server.core.logs import LogService
from ignite_server.core.rollout import Rollout
from ignite_server.core.rollout_judge import StepWindow, judge
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import (
    App,
    AppView,
    RolloutPolicy,
    RolloutState,
    RolloutStatus,
    TrafficTarget,
)
from ignite_server.ports.app_store import AppStore
from ignite_server.ports.rollout_store import RolloutStore

log = structlog.get_logger(__name__)

#: How often running rollouts are looked at: a step ends within this of its
#: time; the lease is renewed as often.
TICK_SECS = 0.5
#: How long a server's hold on a rollout lasts without renewal: another
#: server takes it over this long after the holder stopped.
LEASE_MS = 10_000
DEFAULT_STEP_SECS = 60
STEP_SECS_RANGE = (1, 86_400)
DEFAULT_MAX_ERROR_RATE_INCREASE_PCT = 5
DEFAULT_MAX_P95_INCREASE_PCT = 50
DEFAULT_MIN_REQUESTS = 10
MAX_STEPS = 10
MAX_P95_INCREASE_PCT = 10_000
MAX_MIN_REQUESTS = 1_000_000


def check_policy(given: RolloutPolicy) -> RolloutPolicy:
    """A caller's policy, checked, with defaults for its zeros and a final
    100 % step added when missing."""
    steps = list(given.steps)
    if steps and steps[-1] != 100:
        steps.append(100)
    if len(steps) < 2:
        raise _bad("a rollout needs at least one step below 100%", "ROLLOUT_STEPS_REQUIRED")
    if len(steps) > MAX_STEPS:
        raise _bad(f"a rollout has at most {MAX_STEPS} steps", "TOO_MANY_STEPS")
    if any(not 0 < p <= 100 for p in steps) or any(a >= b for a, b in itertools.pairwise(steps)):
        raise _bad(
            "rollout steps are percentages from 1 to 100, each larger than the one before",
            "INVALID_ROLLOUT_STEPS",
        )
    step_secs = given.step_secs or DEFAULT_STEP_SECS
    low, high = STEP_SECS_RANGE
    if not low <= step_secs <= high:
        raise _bad(f"rollout.step_secs must be between {low} and {high}", "OUT_OF_RANGE")
    error_pct = given.max_error_rate_increase_pct or DEFAULT_MAX_ERROR_RATE_INCREASE_PCT
    if error_pct > 100:
        raise _bad("rollout.max_error_rate_increase_pct is at most 100", "OUT_OF_RANGE")
    p95_pct = given.max_p95_increase_pct or DEFAULT_MAX_P95_INCREASE_PCT
    if p95_pct > MAX_P95_INCREASE_PCT:
        raise _bad(
            f"rollout.max_p95_increase_pct is at most {MAX_P95_INCREASE_PCT}", "OUT_OF_RANGE"
        )
    min_requests = given.min_requests or DEFAULT_MIN_REQUESTS
    if min_requests > MAX_MIN_REQUESTS:
        raise _bad(f"rollout.min_requests is at most {MAX_MIN_REQUESTS}", "OUT_OF_RANGE")
    return RolloutPolicy(tuple(steps), step_secs, error_pct, p95_pct, min_requests)


def split_at(status: RolloutStatus, step: int) -> tuple[TrafficTarget, ...]:
    """The traffic split of ``status``'s rollout at ``step``."""
    percent = status.policy.steps[step]
    return (
        TrafficTarget(status.from_version, 100 - percent),
        TrafficTarget(status.to_version, percent),
    )


def _bad(message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(message, reason=reason, metadata={"field": "rollout"})


def _now_ms() -> int:
    return int(time.time() * 1000)


class GradualRollouts:
    """Starts, steps, rolls back and cancels rollouts (module docstring)."""

    def __init__(
        self,
        store: AppStore,
        rollouts: RolloutStore,
        mover: Rollout,
        logs: LogService | None,
        locks: AppLocks,
        *,
        owner: str,
    ) -> None:
        self._store = store
        self._rollouts = rollouts
        self._mover = mover
        self._logs = logs
        self._locks = locks
        self._owner = owner
        #: App id → what this server saw of its rollout's current step.
        self._windows: dict[str, StepWindow] = {}
        self._tasks = TaskSupervisor("gradual rollouts")

    # --- requests --------------------------------------------------------------

    def observe(self, app_id: str, version: int, failed: bool, seconds: float) -> None:
        """One request of ``app_id`` ran on ``version`` (a cheap no-op for
        apps with no rollout here)."""
        window = self._windows.get(app_id)
        if window is not None:
            window.add(version, failed, seconds)

    # --- changes (the caller holds the app's lock) -------------------------------

    async def status(self, organization: str, name: str) -> RolloutStatus | None:
        return await self._rollouts.get(organization, name)

    async def shown(self, view: AppView) -> AppView:
        """``view`` with the app's rollout, as GetApp shows it."""
        return replace(view, rollout=await self.status(view.app.organization, view.app.name))

    async def begin(self, app: App, to_version: int, policy: RolloutPolicy) -> App:
        """Give ``to_version`` (ready) the first step's share of ``app``'s traffic."""
        now = _now_ms()
        await self.cancel(app, f"version {to_version} was published with a rollout of its own")
        status = RolloutStatus(
            organization=app.organization,
            app=app.name,
            state=RolloutState.RUNNING,
            from_version=app.active_version,
            to_version=to_version,
            policy=policy,
            step=0,
            decision="",
            started_at_ms=now,
            step_started_at_ms=now,
            updated_at_ms=now,
        )
        steps = " → ".join(f"{p}%" for p in policy.steps)
        status = replace(
            status,
            decision=f"started: v{to_version} takes {policy.steps[0]}% ({steps},"
            f" {policy.step_secs}s a step)",
        )
        await self._rollouts.put(status)
        self._windows[app.id] = StepWindow(0, app.active_version, to_version)
        moved = await self._store.activate(
            app.organization, app.name, app.active_version, now, traffic=split_at(status, 0)
        )
        self._note(status, status.decision)
        return moved

    async def cancel(self, app: App, why: str) -> None:
        """End ``app``'s running rollout, if any, because of ``why``."""
        self._windows.pop(app.id, None)
        ended = await self._rollouts.finish(
            app.organization, app.name, RolloutState.CANCELLED, f"cancelled: {why}", _now_ms()
        )
        if ended is not None:
            self._note(ended, ended.decision)

    # --- the loop ----------------------------------------------------------------

    def start(self) -> None:
        """Start this server's loop: ``tick`` every ``TICK_SECS`` (a tick
        that fails is logged and the next one runs on time)."""
        self._tasks.every(TICK_SECS, self.tick, name="tick")

    async def close(self) -> None:
        """Stop the loop, then give up this server's leases so that another
        server takes its rollouts over at once rather than after LEASE_MS."""
        await self._tasks.close()
        try:
            await self._rollouts.release(self._owner)
        except Exception:
            # Shutting down with the database gone: the leases lapse instead.
            log.warning("rollouts.release_failed", exc_info=True)

    async def tick(self) -> None:
        """Claim the running rollouts and move those whose step is over."""
        claimed = await self._rollouts.claim(self._owner, _now_ms(), LEASE_MS)
        held = {s.app_id for s in claimed}
        for app_id in [a for a in self._windows if a not in held]:
            del self._windows[app_id]
        for status in claimed:
            try:
                await self._drive(status)
            except Exception:
                log.exception("rollout.step_failed", app=status.app_id)

    async def _drive(self, status: RolloutStatus) -> None:
        window = self._windows.get(status.app_id)
        if window is None or (window.step, window.to_version) != (status.step, status.to_version):
            await self._resume(status)
            return
        if _now_ms() < status.step_started_at_ms + status.policy.step_secs * 1000:
            return
        verdict = judge(window, status.policy)
        steps = status.policy.steps
        at = f"step {status.step + 1}/{len(steps)} ({steps[status.step]}%)"
        async with self._locks.hold(status.organization, status.app):
            if not await self._still(status):
                return
            now = _now_ms()
            if not verdict.passed:
                decision = (
                    f"rolled back at {at}: {verdict.summary}; v{status.from_version}"
                    " serves all traffic"
                )
                app = await self._end(status, RolloutState.ROLLED_BACK, decision, now)
            elif steps[status.step + 1] >= 100:
                decision = (
                    f"completed after {at}: {verdict.summary}; v{status.to_version}"
                    " serves all traffic"
                )
                app = await self._end(status, RolloutState.COMPLETED, decision, now)
            else:
                following = status.step + 1
                decision = (
                    f"{at} passed: {verdict.summary}; v{status.to_version} now takes"
                    f" {steps[following]}%"
                )
                app = await self._store.activate(
                    status.organization,
                    status.app,
                    status.from_version,
                    now,
                    traffic=split_at(status, following),
                )
                await self._rollouts.advance(
                    status.organization,
                    status.app,
                    from_step=status.step,
                    step=following,
                    decision=decision,
                    step_started_at_ms=now,
                    now_ms=now,
                )
                self._windows[status.app_id] = StepWindow(
                    following, status.from_version, status.to_version
                )
            await self._mover.moved(app)
        log.info("rollout.decided", app=status.app_id, decision=decision)
        self._note(status, decision)

    async def _end(
        self, status: RolloutStatus, state: RolloutState, decision: str, now: int
    ) -> App:
        """All traffic to the old version (ROLLED_BACK) or the new one
        (COMPLETED), then the rollout ends (in this order: a server that
        stops between the two starts the step again, it never leaves the
        split without its rollout)."""
        serving = status.to_version if state == RolloutState.COMPLETED else status.from_version
        app = await self._store.activate(status.organization, status.app, serving, now)
        await self._rollouts.finish(status.organization, status.app, state, decision, now)
        self._windows.pop(status.app_id, None)
        return app

    async def _resume(self, status: RolloutStatus) -> None:
        """Take over a rollout whose step this server did not see begin:
        the step starts again, with its split applied once more."""
        steps = status.policy.steps
        at = f"step {status.step + 1}/{len(steps)} ({steps[status.step]}%)"
        decision = f"{at} taken over by this server; the step starts again"
        async with self._locks.hold(status.organization, status.app):
            if not await self._still(status):
                return
            now = _now_ms()
            app = await self._store.activate(
                status.organization,
                status.app,
                status.from_version,
                now,
                traffic=split_at(status, status.step),
            )
            await self._rollouts.advance(
                status.organization,
                status.app,
                from_step=status.step,
                step=status.step,
                decision=decision,
                step_started_at_ms=now,
                now_ms=now,
            )
            self._windows[status.app_id] = StepWindow(
                status.step, status.from_version, status.to_version
            )
            await self._mover.moved(app)
        log.info("rollout.resumed", app=status.app_id, step=status.step)
        self._note(status, decision)

    async def _still(self, status: RolloutStatus) -> bool:
        """Whether ``status`` is still the app's running rollout at its step."""
        current = await self._rollouts.get(status.organization, status.app)
        return (
            current is not None
            and current.state == RolloutState.RUNNING
            and (current.step, current.to_version, current.started_at_ms)
            == (status.step, status.to_version, status.started_at_ms)
        )

    def _note(self, status: RolloutStatus, decision: str) -> None:
        if self._logs is not None:
            self._logs.platform_event(
                status.organization,
                status.app,
                status.to_version,
                "",
                f"rollout v{status.from_version} → v{status.to_version}: {decision}",
            )
