"""Running invocations on pods: ports/app_runner.py's ``AppRunner``.

Construction (server start-up, server.py)::

    activator = Activator(backend, owns_backend=True)  # any PodBackend
    ...
    async for frame in activator.invoke(target, request, execution_id): ...
    await activator.close()                          # closes the backend too

An invocation finds the ``RevisionThrottler`` (core/revision_throttler.py)
of its app version and takes a slot on a ready pod there (held while a pod
starts, bounded by the activation deadline); ``pod_proxy.proxy`` sends it
to that pod as real HTTP and streams the answer back as a ``ResponseHead``
and ``ResponseChunk``\\ s, then the activator adds the ``ResponseTrailer``;
an ``InvocationMeter`` records what it cost and how it ended. Each handler
has one concern, as in Knative's activator: the throttler holds and admits,
the proxy speaks HTTP, the meter measures.

The app's ``timeout_secs`` bounds the time spent waiting on the pod (not
on the consumer of the stream); past it the request ends with
DeadlineExceeded and the pod, which still runs the handler, is stopped as
soon as it runs nothing else. A pod that dies under a request ends it with
Unavailable (or ResourceExhausted ``OUT_OF_MEMORY`` when the kernel killed
it for its memory limit), and is replaced. A cancelled invocation (its caller
went away, or its execution was cancelled) and one whose consumer closed it
before the trailer are cut off like a timed-out one.

A revision is keyed by app, version, and everything a pod is started with
(env, resources, concurrency, artifact): a change of settings starts fresh
pods and drains the old ones. One periodic task ticks every revision's
autoscaler every ``TICK_SECS``; it and the drains are owned by the
activator's TaskSupervisor, which ``close`` cancels and awaits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Collection
from contextlib import aclosing

import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.core.capacity import PodCapacity
from ignite_server.core.invocation_meter import InvocationMeter
from ignite_server.core.pod_proxy import proxy
from ignite_server.core.request_log import PlatformEvent
from ignite_server.core.revision_throttler import RevisionThrottler
from ignite_server.domain.errors import DeadlineExceeded, Unavailable
from ignite_server.domain.models import (
    DeploymentState,
    InvocationRequest,
    ResponseFrame,
    RunTarget,
)
from ignite_server.observability import metrics
from ignite_server.ports.app_runner import DeploymentStatus
from ignite_server.ports.pod_backend import PodBackend, PodSpec

log = structlog.get_logger(__name__)

#: Per-pod concurrency when an app sets max_concurrency 0. Python handlers
#: run in threads under one GIL: a handful overlap I/O waits well, many more
#: only queue inside the pod where the platform cannot see or spread them.
DEFAULT_MAX_CONCURRENCY = 8
#: Requests that may wait per app version for a free pod slot. Each holds
#: its body (up to 32 MiB) in memory, so the bound protects the server.
DEFAULT_QUEUE_DEPTH = 256
#: How long a request may wait for a pod (cold start or free slot) before
#: Unavailable; a cold Python pod takes ~20-150 ms, a heavy import seconds.
DEFAULT_ACTIVATION_TIMEOUT_SECS = 30.0
#: Autoscaler period: fine enough that scale-down periods of a few seconds
#: are honoured closely, coarse enough to cost nothing.
TICK_SECS = 0.5


class Activator:
    """Runs app invocations on pods of a ``PodBackend``; see the module docstring."""

    def __init__(
        self,
        backend: PodBackend,
        *,
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
        activation_timeout_secs: float = DEFAULT_ACTIVATION_TIMEOUT_SECS,
        owns_backend: bool = False,
        capacity: PodCapacity | None = None,
        events: PlatformEvent | None = None,
    ) -> None:
        self.backend = backend
        #: Pod starts are admitted against it (core/capacity.py).
        self.capacity = capacity
        if capacity is not None:
            capacity.reclaim_with(self._reclaim_idle)
        #: Pod exits and failed starts, for the apps' logs (request_log.py).
        self.events = events
        self.queue_depth = queue_depth
        self.activation_timeout_secs = activation_timeout_secs
        self._owns_backend = owns_backend
        self._throttlers: dict[tuple[str, int, str], RevisionThrottler] = {}
        #: The autoscaler's ticks (started with the first revision), drains
        #: of retired revisions, and changes told to the backend.
        self._tasks = TaskSupervisor("activator")
        self._ticking = False
        #: Revisions no longer routed to, whose pods are finishing.
        self._draining: set[RevisionThrottler] = set()
        self._closed = False

    # --- AppRunner -------------------------------------------------------------

    async def invoke(
        self, target: RunTarget, request: InvocationRequest, execution_id: str
    ) -> AsyncGenerator[ResponseFrame, None]:
        """Run one invocation (see ports/app_runner.py ``AppRunner.invoke``):
        hold it until a pod has a slot for it, proxy it to that pod
        (core/pod_proxy.py), meter it (core/invocation_meter.py)."""
        throttler = self._throttler_for(target)
        loop = asyncio.get_running_loop()
        timeout = target.resources.timeout_secs
        with InvocationMeter(target, execution_id, cold=throttler.ready_replicas == 0) as meter:
            try:
                async with throttler.slot(loop.time() + self.activation_timeout_secs) as slot:
                    meter.slot_taken(slot.pod)
                    answer = proxy(slot, request, execution_id, loop.time() + timeout, meter)
                    async with aclosing(answer):
                        async for frame in answer:
                            yield frame
                    throttler.served()
                    trailer = meter.trailer(slot.pod.stats())
            except TimeoutError:
                # The slot was abandoned on the way out: the handler may still run.
                raise _timeout(timeout) from None
            # Outside the slot: the pod has answered in full, so a consumer
            # closing the stream after the trailer cuts nothing off.
            yield trailer

    def status(self, app_id: str) -> DeploymentStatus:
        """What runs for ``app_id`` now, with the backend's warnings."""
        throttlers = [r for (a, _, _), r in self._throttlers.items() if a == app_id]
        warnings = " ".join(self.backend.info.warnings)
        versions = frozenset(v for (a, v, _) in self._throttlers if a == app_id)
        observed = self.backend.observed(app_id, versions)
        if observed is not None:
            said = observed.message
            exits = [r.last_exit for r in throttlers if r.last_exit is not None]
            if not said and exits:
                said = f"a pod {exits[-1].message}"
            return DeploymentStatus(
                state=observed.state,
                ready_replicas=observed.ready_replicas,
                message=" ".join(m for m in (said, warnings) if m),
            )
        if not throttlers:
            return DeploymentStatus(state=None, message=warnings)
        states = {r.state() for r in throttlers}
        ready = sum(r.ready_replicas for r in throttlers)
        message = ""
        for state in (
            DeploymentState.DEPLOYED,
            DeploymentState.ACTIVATING,
            DeploymentState.FAILED,
            DeploymentState.COLD,
        ):
            if state in states:
                break
        if state == DeploymentState.FAILED:
            message = next(r.last_error for r in throttlers if r.last_error)
        else:
            exits = [r.last_exit for r in throttlers if r.last_exit is not None]
            if exits:
                message = f"a pod {exits[-1].message}"
        return DeploymentStatus(
            state=state,
            ready_replicas=ready,
            message=" ".join(m for m in (message, warnings) if m),
        )

    async def retire(self, app_id: str, keep_version: int | Collection[int] | None) -> None:
        """Move the app's traffic off every version but ``keep_version``
        (one version, or the versions of a traffic split).

        Returns at once: new requests no longer reach those versions, and
        their pods drain in the background (requests running or queued on
        them finish first; ``close`` stops whatever is left), so a publish
        never waits for an old version's slow requests."""
        if self._closed:
            return  # close() stops every pod anyway
        keep = {keep_version} if isinstance(keep_version, int) else set(keep_version or ())
        doomed = [key for key in self._throttlers if key[0] == app_id and key[1] not in keep]
        drains = [self._spawn_retire(self._throttlers.pop(key)) for key in doomed]
        if keep_version is None:
            self._tasks.spawn(self._remove(app_id, drains), name=f"remove {app_id}")

    async def _rescale(self, spec: PodSpec) -> None:
        try:
            await self.backend.scaling_changed(spec)
        except Exception:
            log.exception("applying new scaling bounds failed", app=spec.app_id)

    async def _remove(self, app_id: str, drains: list[asyncio.Task[None]]) -> None:
        """Once the deleted app's pods are gone, what the backend keeps for it goes too."""
        await asyncio.gather(*drains, return_exceptions=True)
        try:
            await self.backend.remove_app(app_id)
        except Exception:
            log.exception("removing the app from the backend failed", app=app_id)

    async def close(self) -> None:
        """Stop the ticks, the drains and every pod (and the backend, if owned)."""
        self._closed = True
        draining = list(self._draining)
        await self._tasks.close()
        throttlers, self._throttlers = list(self._throttlers.values()), {}
        await asyncio.gather(*(r.close() for r in [*throttlers, *draining]))
        if self._owns_backend:
            await self.backend.close()

    # --- beyond AppRunner -----------------------------------------------------

    async def prepare(self, target: RunTarget, timeout_secs: float) -> None:
        """The readiness gate's half here: one pod of ``target`` started and
        answering its health check, within ``timeout_secs``. It is taken and
        given back as a request's slot would be, so a cold version starts
        one pod (shared with requests arriving meanwhile) and the autoscaler
        keeps it for the scale-down period, as after a request."""
        throttler = self._throttler_for(target)
        async with throttler.slot(asyncio.get_running_loop().time() + timeout_secs):
            pass

    async def warm(self, target: RunTarget) -> None:
        """Prepare ``target`` before its first request: start its
        ``reserved_capacity`` pods (call after publish or rollback)."""
        throttler = self._throttler_for(target)
        throttler.tick(time.monotonic())

    def loads(self) -> list[metrics.RevisionLoad]:
        """What every revision runs and holds now (read when metrics are
        scraped: a snapshot, never awaited)."""
        return [
            metrics.RevisionLoad(
                app=r.spec.app_id,
                ready_pods=r.ready_replicas,
                starting_pods=r.starting,
                queued=r.waiting,
                in_flight=r.in_flight,
            )
            for r in [*self._throttlers.values(), *self._draining]
        ]

    def throttler(self, target: RunTarget) -> RevisionThrottler | None:
        """The live throttler of the revision serving ``target``, if any (tests,
        diagnostics); unlike ``_throttler_for`` it never makes one."""
        return self._throttlers.get(target.key)

    # --- internals ------------------------------------------------------------

    async def _reclaim_idle(self, wanted_mb: int) -> None:
        """Stop idle pods of serving revisions, longest unused first (of any
        organization: idle pods are a cache, reserved ones a promise), until
        ``wanted_mb`` of memory is on its way back; returns once they exited."""
        idle = [
            (slot.last_used, id(slot), throttler, slot)
            for throttler in self._throttlers.values()
            for slot in throttler.idle_pods()
        ]
        freeing, stops = 0, []
        for _, _, throttler, slot in sorted(idle, key=lambda item: item[:2]):
            if freeing >= wanted_mb:
                break
            freeing += slot.grant.memory_mb if slot.grant is not None else 0
            stops.append(throttler.reclaim(slot))
        if stops:
            log.info("activator.reclaimed_idle_pods", pods=len(stops), memory_mb=freeing)
            await asyncio.gather(*stops)

    def _throttler_for(self, target: RunTarget) -> RevisionThrottler:
        if self._closed:
            raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN")
        key = target.key
        throttler = self._throttlers.get(key)
        if throttler is None:
            throttler = RevisionThrottler(
                _spec(target),
                target.app.scaling,
                self.backend,
                queue_depth=self.queue_depth,
                capacity=self.capacity,
                events=self.events,
            )
            # The same version with other settings: its old pods drain.
            stale = [k for k in self._throttlers if k[:2] == key[:2]]
            for old in stale:
                self._spawn_retire(self._throttlers.pop(old))
            self._throttlers[key] = throttler
            self._ensure_ticking()
        else:
            throttler.autoscaler.scaling = target.app.scaling
            if throttler.spec.scaling != target.app.scaling:
                throttler.spec = dataclasses.replace(throttler.spec, scaling=target.app.scaling)
                self._tasks.spawn(self._rescale(throttler.spec), name=f"rescale {key[0]}")
        return throttler

    def _spawn_retire(self, throttler: RevisionThrottler) -> asyncio.Task[None]:
        self._draining.add(throttler)
        task = self._tasks.spawn(throttler.drain(), name=f"drain {throttler.spec.app_id}")
        task.add_done_callback(lambda _: self._draining.discard(throttler))
        return task

    def _ensure_ticking(self) -> None:
        if not self._ticking:
            self._ticking = True
            self._tasks.every(TICK_SECS, self._tick, name="autoscaler")

    def _tick(self) -> None:
        now = time.monotonic()
        for throttler in list(self._throttlers.values()):
            try:
                throttler.tick(now)
            except Exception:
                log.exception("autoscaler tick failed", app=throttler.spec.app_id)


def _spec(target: RunTarget) -> PodSpec:
    return PodSpec(
        app_id=target.app.id,
        version=target.version.version,
        artifact_dir=target.artifact_dir,
        env=dict(target.app.env),
        resources=target.resources,
        max_concurrency=target.app.max_concurrency or DEFAULT_MAX_CONCURRENCY,
        scaling=target.app.scaling,
    )


def _timeout(timeout_secs: int) -> DeadlineExceeded:
    return DeadlineExceeded(
        f"the handler did not finish within its timeout of {timeout_secs}s",
        reason="EXECUTION_TIMEOUT",
    )
