"""Holding requests until a pod can take them (the Knative activator /
KEDA interceptor pattern), for one version of one app.

A ``RevisionThrottler`` owns the pods of one app version and a FIFO of waiting
requests. ``slot`` hands out a slot on the least-loaded ready pod that is
below its concurrency limit, for one request, and takes it back however the
request ends. When there is none the request waits in the
queue (bounded: a full queue answers ResourceExhausted) until a slot frees
or a pod becomes ready, or until its deadline (Unavailable).

Activation: the first waiting request of a version with no pod starts one
pod; every request arriving while that pod starts waits for the same pod
(one activation, however many cold requests). Once a pod is ready, the
queued requests are dispatched to it and, if they still outnumber the
slots, more pods start at once as the autoscaler asks. A pod that fails to
start fails the waiting requests with its reason, and for
``FAILED_RETRY_SECS`` new requests fail fast instead of restarting a broken
app in a loop.

Every pod start is admitted first (core/capacity.py): a start the machine
or the organization's quota has no memory for is not tried; with no pod
ready, the waiting requests fail with that RESOURCE_EXHAUSTED (``CAPACITY``
or ``QUOTA_EXCEEDED``), and with pods ready they wait for those. A pod's
memory is given back when it has exited.

Periodically ``tick`` compares the pods with the autoscaler's target: it
starts missing pods (replacing pods that died) and drains surplus ones (no
new requests; stopped once idle). A request that ran past its timeout
leaves its pod "stuck": the pod takes no more requests and is stopped as
soon as it runs nothing else, which cuts the handler off.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.core.autoscaler import Autoscaler, Load
from ignite_server.core.capacity import PodCapacity, PodGrant
from ignite_server.core.request_log import PlatformEvent
from ignite_server.domain.errors import ResourceExhausted, Unavailable
from ignite_server.domain.models import DeploymentState, Scaling
from ignite_server.observability import metrics, tracing
from ignite_server.ports.pod_backend import ExitReason, Pod, PodBackend, PodExit, PodSpec
from ignite_server.ports.pod_backend import PodStartError as _PodStartError

log = structlog.get_logger(__name__)

#: After a pod of a version failed to start, new requests fail at once for
#: this long: a broken app is not restarted once per request, and a fixed
#: one (a new version) is unaffected.
FAILED_RETRY_SECS = 2.0
#: Grace given to a drained pod to exit on SIGTERM before it is killed; it
#: is idle by then, so this only covers the runtime's own shutdown.
STOP_GRACE_SECS = 5.0
#: A refused pod start is logged at most this often per version (the
#: autoscaler asks again every tick while reserved pods are missing).
REFUSAL_LOG_SECS = 30.0
#: aiohttp must not add headers of its own: the pod sees the user's request.
SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


@dataclass(eq=False)
class PodSlot:
    """A ready pod as the activator tracks it."""

    pod: Pod
    session: aiohttp.ClientSession
    capacity: int
    in_flight: int = 0
    #: Requests that ran past their timeout and still occupy the pod.
    stuck: int = 0
    #: Takes no new requests; stopped once it runs nothing.
    draining: bool = False
    #: A stop was requested.
    stopping: bool = False
    started_at: float = field(default_factory=time.monotonic)
    #: When a request last ended on it (idle pods longest unused are
    #: reclaimed first).
    last_used: float = field(default_factory=time.monotonic)
    #: The memory the pod was admitted with, given back when it exits.
    grant: PodGrant | None = None

    @property
    def free(self) -> bool:
        return not self.draining and self.pod.exit is None and self.in_flight < self.capacity


class RevisionThrottler:
    """The pods of one app version and the requests waiting for them."""

    def __init__(
        self,
        spec: PodSpec,
        scaling: Scaling,
        backend: PodBackend,
        *,
        queue_depth: int,
        capacity: PodCapacity | None = None,
        events: PlatformEvent | None = None,
    ) -> None:
        self.spec = spec
        self.capacity = capacity
        #: Where pod exits and failed starts are told in the app's log.
        self._events = events
        self._organization = spec.app_id.partition("/")[0]
        self._refusal_logged_at = -1e9
        self.autoscaler = Autoscaler(scaling, spec.max_concurrency)
        self.backend = backend
        self.queue_depth = queue_depth
        self.slots: list[PodSlot] = []
        self.starting = 0
        #: Times this version went from no pod to starting one.
        self.activations = 0
        #: Pods started for this version, for tests and status.
        self.pods_started = 0
        self.retired = False
        self.last_error = ""
        self._last_error_at = -1e9
        self.last_exit: PodExit | None = None
        self._waiters: deque[asyncio.Future[PodSlot]] = deque()
        #: Pod starts, watches and stops.
        self._tasks = TaskSupervisor(f"revision {spec.app_id} v{spec.version}")
        self._changed = asyncio.Event()

    # --- requests ------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(s.in_flight for s in self.slots)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def slot(self, deadline: float) -> AsyncIterator[PodSlot]:
        """A slot on a ready pod for one request, held for the ``async
        with`` block (as Knative's ``throttler.Try``): waits until
        ``deadline`` (loop time) for one and gives it back when the block
        ends, also with an error (the pod answered, badly).

        A block that is cut off abandons the slot instead, since the handler
        may still be running on the pod: by a timeout, by a cancellation, or
        by GeneratorExit, when the block is held in an async generator whose
        consumer stopped reading and closed it (a gRPC client that hung up
        between frames, a worker that stopped at an oversized result)."""
        taken = await self._acquire(deadline)
        try:
            yield taken
        except (TimeoutError, asyncio.CancelledError, GeneratorExit):
            self._abandon(taken)
            raise
        except BaseException:
            self._release(taken)
            raise
        self._release(taken)

    async def _acquire(self, deadline: float) -> PodSlot:
        """A slot on a ready pod, waiting until ``deadline`` (loop time)."""
        now = time.monotonic()
        self.autoscaler.request_started(now)
        slot = self._free_slot()
        if slot is not None:
            slot.in_flight += 1
            return slot
        if not self._ready() and now - self._last_error_at < FAILED_RETRY_SECS:
            raise Unavailable(
                f"the app could not be started: {self.last_error}", reason="ACTIVATION_FAILED"
            )
        if len(self._waiters) >= self.queue_depth:
            metrics.count(metrics.QUEUE_REJECTIONS, self.spec.app_id)
            raise ResourceExhausted(
                f"too many requests are waiting for {self.spec.app_id} "
                f"({self.queue_depth}); retry later",
                reason="QUEUE_FULL",
            )
        waiter: asyncio.Future[PodSlot] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._scale_for_demand(now)
        timeout = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Cancelled right after a slot was handed over: give it back.
                self._release(waiter.result())
            else:
                self._forget_waiter(waiter)
            raise
        if not waiter.done():
            self._forget_waiter(waiter)
            if self._ready():
                message = "no pod had room for the request before its deadline"
                reason = "NO_CAPACITY"
            else:
                message = "the app did not become ready before the request's deadline"
                reason = "ACTIVATION_TIMEOUT"
            raise Unavailable(message, reason=reason)
        return waiter.result()

    def _forget_waiter(self, waiter: asyncio.Future[PodSlot]) -> None:
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        self._changed.set()

    def _release(self, slot: PodSlot) -> None:
        """Give back a slot after its request finished."""
        slot.in_flight -= 1
        slot.last_used = time.monotonic()
        self._after_release(slot)

    def served(self) -> None:
        """A request was answered in full: an earlier pod's death (an
        out-of-memory kill, a crash) is history, no longer the app's status."""
        self.last_exit = None

    def _abandon(self, slot: PodSlot) -> None:
        """Give up on a request still running on ``slot`` (it timed out): the
        pod takes nothing new and is stopped once it runs nothing else."""
        slot.stuck += 1
        slot.draining = True
        self._after_release(slot)

    def _after_release(self, slot: PodSlot) -> None:
        if slot.draining and slot.in_flight - slot.stuck <= 0:
            self._stop(slot)
        self._dispatch()
        self._changed.set()

    def _free_slot(self) -> PodSlot | None:
        free = [s for s in self.slots if s.free]
        return min(free, key=lambda s: s.in_flight) if free else None

    def _ready(self) -> bool:
        return any(s.pod.exit is None and not s.draining for s in self.slots)

    def _dispatch(self) -> None:
        while self._waiters:
            slot = self._free_slot()
            if slot is None:
                return
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            slot.in_flight += 1
            waiter.set_result(slot)

    def _fail_waiters(self, error: Exception) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    # --- scaling -------------------------------------------------------------

    def _load(self) -> Load:
        return Load(in_flight=self.in_flight, waiting=len(self._waiters))

    def _live(self) -> list[PodSlot]:
        return [s for s in self.slots if not s.draining and s.pod.exit is None]

    def _scale_for_demand(self, now: float) -> None:
        """Start pods for queued requests: one while activating, then as many
        as the autoscaler asks for (also while retiring: requests queued
        before the retirement are still served)."""
        live = len(self._live())
        if live == 0:
            if self.starting == 0:
                self._start_pod()
            return
        want = self.autoscaler.observe(now, self._load())
        for _ in range(want - live - self.starting):
            self._start_pod()

    def tick(self, now: float) -> None:
        """Move the pod count towards the autoscaler's target."""
        if self.retired:
            return
        target = self.autoscaler.observe(now, self._load())
        live = self._live()
        if not live and self.starting:
            return  # an activation is under way; it decides what follows
        missing = target - len(live) - self.starting
        for _ in range(missing):
            self._start_pod()
        surplus = len(live) - target
        if surplus > 0:
            # Drain the idlest, newest pods: they lose the least work and the
            # oldest pods have the warmest caches.
            for slot in sorted(live, key=lambda s: (s.in_flight, -s.started_at))[:surplus]:
                slot.draining = True
                if slot.in_flight - slot.stuck <= 0:
                    self._stop(slot)

    def _start_pod(self) -> None:
        if not self._live() and self.starting == 0:
            self.activations += 1
            metrics.count(metrics.ACTIVATIONS, self.spec.app_id)
        self.starting += 1
        self.pods_started += 1
        self._spawn(self._run_start())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._tasks.closed:
            work.close()  # closed: every pod was stopped already
            return
        self._tasks.spawn(work)

    async def _run_start(self) -> None:
        grant = None
        if self.capacity is not None:
            try:
                grant = await self.capacity.admit_reclaiming(
                    self._organization,
                    self.spec.resources.memory_mb,
                    f"a pod of {self.spec.app_id}",
                )
            except ResourceExhausted as exc:
                self.starting -= 1
                metrics.count(metrics.POD_STARTS, self.spec.app_id, "refused")
                self._start_refused(exc)
                return
        try:
            with tracing.span("ignite.pod.start", {tracing.APP: self.spec.app_id}):
                pod = await self.backend.start(self.spec)
        except BaseException as exc:
            self.starting -= 1
            if grant is not None and self.capacity is not None:
                self.capacity.release(grant)
            if isinstance(exc, _PodStartError):
                metrics.count(metrics.POD_STARTS, self.spec.app_id, "failed")
                self._start_failed(exc.message)
                return
            if not isinstance(exc, Exception):
                raise
            metrics.count(metrics.POD_STARTS, self.spec.app_id, "failed")
            log.exception("pod start crashed", app=self.spec.app_id)
            self._start_failed(f"internal error starting the pod: {type(exc).__name__}")
            return
        self.starting -= 1
        metrics.count(metrics.POD_STARTS, self.spec.app_id, "started")
        session = aiohttp.ClientSession(
            connector=pod.connector(),
            auto_decompress=False,
            skip_auto_headers=SKIP_AUTO_HEADERS,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        slot = PodSlot(pod=pod, session=session, capacity=self.spec.max_concurrency, grant=grant)
        self.slots.append(slot)
        self.last_error = ""
        self._last_error_at = -1e9
        self._spawn(self._watch(slot))
        if self.retired and not self._waiters:
            slot.draining = True
            self._stop(slot)
        self._dispatch()
        self._scale_for_demand(time.monotonic())
        self._changed.set()

    def _start_refused(self, error: ResourceExhausted) -> None:
        """No memory for another pod: requests wait for the pods there are,
        or, with none ready, fail with the refusal."""
        now = time.monotonic()
        if now - self._refusal_logged_at >= REFUSAL_LOG_SECS:
            self._refusal_logged_at = now
            log.warning(
                "pod start refused", app=self.spec.app_id, reason=error.reason, error=error.message
            )
        if not self._ready() and self.starting == 0:
            self._fail_waiters(error)
        self._changed.set()

    def _start_failed(self, message: str) -> None:
        log.warning("pod failed to start", app=self.spec.app_id, error=message)
        self._event(f"POD START FAILED: {message}")
        if self._ready():
            return
        self.last_error = message
        self._last_error_at = time.monotonic()
        if self.starting == 0:
            self._fail_waiters(
                Unavailable(f"the app could not be started: {message}", reason="ACTIVATION_FAILED")
            )
        self._changed.set()

    async def _watch(self, slot: PodSlot) -> None:
        try:
            end = await slot.pod.wait()
        finally:
            if slot.grant is not None and self.capacity is not None:
                self.capacity.release(slot.grant)
        if end.reason != ExitReason.STOPPED:
            self.last_exit = end
            if end.reason != ExitReason.START_FAILED:
                self._event(f"POD EXITED ({end.reason}): the pod {end.message}")
        if slot in self.slots:
            self.slots.remove(slot)
        await slot.session.close()
        if self._waiters:
            self._scale_for_demand(time.monotonic())
        self._changed.set()

    def _event(self, message: str) -> None:
        if self._events is not None:
            self._events(self.spec.app_id, self.spec.version, "", message)

    def idle_pods(self) -> list[PodSlot]:
        """Pods running nothing beyond the revision's reserved ones, longest
        unused first: what the machine may take back for another pod."""
        live = self._live()
        spare = len(live) - self.autoscaler.scaling.reserved_capacity
        idle = [s for s in live if s.in_flight == 0 and not s.stopping and s.grant is not None]
        return sorted(idle, key=lambda s: s.last_used)[: max(0, spare)]

    async def reclaim(self, slot: PodSlot) -> None:
        """Stop an idle pod for its memory; returns once it has exited and
        its grant is given back. The revision's target starts over from its
        load, so the pod is not started again without demand."""
        slot.draining = True
        self.autoscaler.forget_peak()
        self._stop(slot)
        await slot.pod.wait()
        while slot.grant is not None and not slot.grant.released:
            # _watch gives it back once it sees the exit, then tells _changed.
            self._changed.clear()
            await self._changed.wait()

    def _stop(self, slot: PodSlot) -> None:
        if slot.pod.exit is None and not slot.stopping:
            slot.stopping = True
            self._spawn(self._stop_pod(slot))

    async def _stop_pod(self, slot: PodSlot) -> None:
        # A stuck pod is cut off at once; an idle one may exit gracefully.
        await slot.pod.stop(0 if slot.stuck else STOP_GRACE_SECS)

    # --- status and shutdown ------------------------------------------------

    def state(self) -> DeploymentState:
        """What this version really runs now."""
        if self._ready():
            return DeploymentState.DEPLOYED
        if self.starting:
            return DeploymentState.ACTIVATING
        if self.last_error:
            return DeploymentState.FAILED
        return DeploymentState.COLD

    @property
    def ready_replicas(self) -> int:
        return len(self._live())

    async def drain(self) -> None:
        """Stop taking part in scaling, let waiting and running requests
        finish, then stop every pod."""
        self.retired = True
        while self._waiters or any(s.in_flight - s.stuck > 0 for s in self.slots):
            if not self._waiters and not self.slots and not self.starting:
                break
            self._changed.clear()
            await self._changed.wait()
        for slot in list(self.slots):
            slot.draining = True
            self._stop(slot)
        await self._settle()

    async def close(self) -> None:
        """Stop at once: waiting requests fail, pods are stopped."""
        self.retired = True
        self._fail_waiters(Unavailable("the server is shutting down", reason="SHUTTING_DOWN"))
        await asyncio.gather(*(s.pod.stop(0) for s in self.slots), return_exceptions=True)
        await self._tasks.close()
        await self._close_sessions()

    async def _settle(self) -> None:
        await self._tasks.wait()
        await self._close_sessions()

    async def _close_sessions(self) -> None:
        for slot in list(self.slots):
            await slot.session.close()
