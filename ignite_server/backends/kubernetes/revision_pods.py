"""The cluster pods of one revision and the starts waiting for them.

``take`` is ``PodBackend.start`` for one revision: it hands out a healthy
pod not yet handed out at once (a warm one), or waits for the next pod to
become healthy. Meanwhile the revision's demand (handed out + waiting)
goes to KEDA through the scaler, which scales the Deployment. A pod counts
as healthy once the server's own probe of ``/_ignite/health`` on the pod's
IP answers 200, polled a few ms apart from when the pod has an address
(the kubelet reports a started container and its readiness up to a second
late). Pod events come from the backend's watch (``observe``):
an ended handle is told why, and a pod that cannot start (crash loop,
image error, artifact fetch failure) fails the waiting starts with the
reason, as does a start that saw no healthy pod within ``START_TIMEOUT_SECS``.
An image app's pod is probed the way its app asks instead (``_answers``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from ignite_server.backends.kubernetes import pod as pods
from ignite_server.backends.kubernetes.objects import ClusterRevision
from ignite_server.backends.kubernetes.pod import KubernetesPod
from ignite_server.backends.kubernetes.scaler import Demand
from ignite_server.backends.pod_logs import PodLogDemux
from ignite_server.ports.pod_backend import ExitReason, PodExit, PodStartError
from ignite_server.ports.pod_protocol import HEALTH_PATH

log = structlog.get_logger(__name__)

#: How long a start waits for a healthy pod: scheduling, the artifact's
#: fetch and the runtime's start, on a busy cluster.
START_TIMEOUT_SECS = 90.0
#: The server's own readiness probe: a Python runtime answers ~20 ms after
#: its container starts, so polling every few ms keeps it off the cold start.
PROBE_EVERY_SECS = 0.02
PROBE_TIMEOUT_SECS = 1.0

_handles = itertools.count(1)


class RevisionPods:
    """Pods of one revision (see the module docstring)."""

    def __init__(
        self,
        revision: ClusterRevision,
        demand: Demand,
        logs: Callable[[str], PodLogDemux],
        stopper: Callable[[KubernetesPod, float], Awaitable[None]],
        probe_session: aiohttp.ClientSession,
    ) -> None:
        self.revision = revision
        self._demand = demand
        self._logs = logs
        self._stopper = stopper
        self._session = probe_session
        #: The latest state of each cluster pod of the revision, by name.
        self.cluster: dict[str, Any] = {}
        self.handed: dict[str, KubernetesPod] = {}
        #: Pods whose probe passed, with the restart count it passed at.
        self._healthy: dict[str, int] = {}
        #: Pods the platform had deleted: never handed out again.
        self.condemned: set[str] = set()
        self._waiters: deque[asyncio.Future[KubernetesPod]] = deque()
        self._probing: dict[str, asyncio.Task[None]] = {}
        #: Why the last start failed; cleared by the next hand-out.
        self.last_failure = ""

    @property
    def name(self) -> str:
        return self.revision.name

    @property
    def waiting(self) -> int:
        """Starts waiting for a pod."""
        return sum(1 for w in self._waiters if not w.done())

    def healthy(self, name: str) -> bool:
        """The server's probe of this pod passed (and it has not restarted since)."""
        pod = self.cluster.get(name)
        return pod is not None and self._healthy.get(name) == pods.restarts(pod)

    def _update_demand(self) -> None:
        self._demand.set(self.name, len(self.handed) + self.waiting)

    # --- starts --------------------------------------------------------------

    async def take(self) -> KubernetesPod:
        """A healthy pod for one ``start`` (see the module docstring)."""
        for name in self.cluster:
            if self._available(name):
                return self._hand_out(name)
        failure = self._failure()
        if failure:
            raise PodStartError(failure)
        waiter: asyncio.Future[KubernetesPod] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._update_demand()
        try:
            async with asyncio.timeout(START_TIMEOUT_SECS):
                await asyncio.wait({waiter})
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed over just as the start was given up
            self._forget(waiter)
            if isinstance(exc, TimeoutError):
                self.last_failure = (
                    f"no pod of the app became ready within {START_TIMEOUT_SECS:.0f}s"
                    f"{self._situation()}"
                )
                raise PodStartError(self.last_failure) from None
            raise
        self._forget(waiter)
        return waiter.result()

    def _forget(self, waiter: asyncio.Future[KubernetesPod]) -> None:
        waiter.cancel()
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        self._update_demand()

    def _available(self, name: str) -> bool:
        pod = self.cluster.get(name)
        return (
            pod is not None
            and name not in self.handed
            and name not in self.condemned
            and self._healthy.get(name) == pods.restarts(pod)
            and pods.has_address(pod)
        )

    def _hand_out(self, name: str) -> KubernetesPod:
        pod = self.cluster[name]
        handle = KubernetesPod(
            handle_id=f"{name}.{next(_handles)}",
            name=name,
            ip=pod.status.pod_ip,
            port=self.revision.port,
            restarts=pods.restarts(pod),
            spec=self.revision.spec,
            logs=self._logs(name),
            stopper=self._stopper,
        )
        self.handed[name] = handle
        self.last_failure = ""
        self._update_demand()
        return handle

    def _offer(self, name: str) -> None:
        """A pod became healthy: give it to the oldest waiting start."""
        while self._waiters and self._available(name):
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(self._hand_out(name))
                return

    def release(self, handle: KubernetesPod) -> None:
        """The platform gave ``handle`` back; its pod may be handed out again."""
        if self.handed.get(handle.name) is handle:
            del self.handed[handle.name]
            self._update_demand()
        self._offer(handle.name)

    def _failure(self) -> str:
        for pod in self.cluster.values():
            if pod.metadata.deletion_timestamp is None and pod.metadata.name not in self.handed:
                failure = pods.start_failure(pod)
                if failure:
                    return failure
        return ""

    def _situation(self) -> str:
        phases = sorted({getattr(p.status, "phase", "") or "?" for p in self.cluster.values()})
        return f" (pods: {', '.join(phases)})" if phases else " (no pod was scheduled)"

    # --- cluster events --------------------------------------------------------

    def observe(self, event: str, pod: Any) -> None:
        """A watch event about one of the revision's pods."""
        name = pod.metadata.name
        if event == "DELETED":
            self.cluster.pop(name, None)
            self._healthy.pop(name, None)
            self.condemned.discard(name)
            self._end(name, PodExit(ExitReason.KILLED, None, "was deleted from the cluster"))
            self._stop_probe(name)
            return
        self.cluster[name] = pod
        handle = self.handed.get(name)
        if handle is not None:
            verdict = pods.ended(pod, handle.restarts, self.revision.spec.resources.memory_mb)
            if verdict is None and pod.metadata.deletion_timestamp is not None:
                verdict = PodExit(ExitReason.KILLED, None, "was deleted from the cluster")
            if verdict is not None:
                self._healthy.pop(name, None)
                self._end(name, verdict)
            return
        if self._healthy.get(name, -1) != pods.restarts(pod):
            self._healthy.pop(name, None)
        failure = pods.start_failure(pod)
        if failure and self._waiters:
            self._fail_waiters(failure)
            return
        if pods.has_address(pod) and name not in self.condemned:
            if name in self._healthy:
                self._offer(name)
            elif name not in self._probing:
                task = asyncio.create_task(self._probe(name, pods.restarts(pod)))
                self._probing[name] = task
                task.add_done_callback(lambda _: self._probing.pop(name, None))

    def _end(self, name: str, how: PodExit) -> None:
        handle = self.handed.pop(name, None)
        if handle is not None:
            handle.end(how)
            self._update_demand()

    def _fail_waiters(self, failure: str) -> None:
        log.warning("kubernetes.pod.start_failed", revision=self.name, reason=failure)
        self.last_failure = failure
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PodStartError(failure))
        self._update_demand()

    async def _probe(self, name: str, restarts_then: int) -> None:
        pod = self.cluster.get(name)
        if pod is None:
            return
        ip, port = pod.status.pod_ip, self.revision.port
        loop = asyncio.get_running_loop()
        end = loop.time() + START_TIMEOUT_SECS
        while loop.time() < end:
            current = self.cluster.get(name)
            if current is None or not pods.has_address(current):
                return
            if pods.restarts(current) != restarts_then:
                return
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                async with asyncio.timeout(PROBE_TIMEOUT_SECS):
                    if await self._answers(ip, port):
                        self._healthy[name] = restarts_then
                        self._offer(name)
                        return
            await asyncio.sleep(PROBE_EVERY_SECS)

    async def _answers(self, ip: str, port: int) -> bool:
        """One probe: the runtime's health endpoint answers 200; an image
        app's ``health_path`` answers 2xx or 3xx, or without one, its port
        accepts a connection (docs/runtimes/images.md, "Readiness")."""
        launch = self.revision.launch
        if launch is None or launch.health_path:
            path = launch.health_path if launch is not None else HEALTH_PATH
            async with self._session.get(
                f"http://{ip}:{port}{path}", allow_redirects=False
            ) as response:
                if launch is None:
                    return response.status == 200
                return 200 <= response.status < 400
        _, writer = await asyncio.open_connection(ip, port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _stop_probe(self, name: str) -> None:
        task = self._probing.pop(name, None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        for task in list(self._probing.values()):
            task.cancel()
        self._fail_waiters("the server is shutting down")
        self._demand.set(self.name, 0)
