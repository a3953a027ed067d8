"""One cluster pod handed to the platform, and what a pod's status says.

A ``KubernetesPod`` is a handle: the platform's use of one ready pod of a
revision, from ``start`` until ``stop`` or the pod's end. The same cluster
pod can be handed out again later (a released pod that KEDA has not yet
scaled away is a warm pod); each hand-out is a new handle with its own id.
The end of a handle is read from the pod's status: the app container
restarted or terminated (``OOMKilled`` → OUT_OF_MEMORY), or the pod was
deleted.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

import aiohttp

from ignite_server.backends.kubernetes.objects import APP_CONTAINER, FETCH_CONTAINER
from ignite_server.backends.pod_logs import PodLogDemux
from ignite_server.ports.pod_backend import ExitReason, PodExit, PodSpec, PodStats

#: Waiting reasons of a container that will not start by itself soon.
START_FAILURES = frozenset(
    {
        "CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
        "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
        "RunContainerError",
    }
)  # fmt: skip


class KubernetesPod:
    """A pod of the Kubernetes backend (see ports/pod_backend.py ``Pod``)."""

    def __init__(
        self,
        *,
        handle_id: str,
        name: str,
        ip: str,
        port: int,
        restarts: int,
        spec: PodSpec,
        logs: PodLogDemux,
        stopper: Callable[[KubernetesPod, float], Awaitable[None]],
    ) -> None:
        self.id = handle_id
        #: The cluster pod's name.
        self.name = name
        self.ip = ip
        #: The port the pod serves on (an image app's own, else IGNITE_PORT).
        self.port = port
        #: The app container's restart count when handed out.
        self.restarts = restarts
        self.spec = spec
        self._logs = logs
        self._stopper = stopper
        self._exit: asyncio.Future[PodExit] = asyncio.get_running_loop().create_future()

    def connector(self) -> aiohttp.BaseConnector:
        return aiohttp.TCPConnector(limit=max(1, self.spec.max_concurrency) * 2)

    @property
    def base_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    @property
    def exit(self) -> PodExit | None:
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> PodExit:
        return await asyncio.shield(self._exit)

    def executing(self, execution_id: str) -> AbstractContextManager[None]:
        return self._logs.executing(execution_id)

    def stats(self) -> PodStats:
        # The kubelet's usage figures need metrics-server; not read (yet).
        return PodStats(cpu_used_ms=0, memory_used_mb=0, memory_peak_mb=0)

    async def stop(self, grace_secs: float = 5.0) -> PodExit:
        if not self._exit.done():
            await self._stopper(self, grace_secs)
            self.end(PodExit(ExitReason.STOPPED, None, "stopped by the platform"))
        return self._exit.result()

    def end(self, how: PodExit) -> None:
        """The handle is over (first verdict wins)."""
        if not self._exit.done():
            self._exit.set_result(how)


def container_status(pod: Any, name: str = APP_CONTAINER) -> Any:
    for status in (pod.status.container_statuses or []) if pod.status else []:
        if status.name == name:
            return status
    return None


def restarts(pod: Any) -> int:
    status = container_status(pod)
    return status.restart_count if status is not None else 0


def is_running(pod: Any) -> bool:
    """Running with an address, not being deleted: worth probing."""
    status = container_status(pod)
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status is not None
        and bool(pod.status.pod_ip)
        and status is not None
        and status.state is not None
        and status.state.running is not None
    )


def has_address(pod: Any) -> bool:
    """The pod has an IP and is not being deleted: worth probing, since the
    kubelet reports a started container up to a second late."""
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status is not None
        and bool(pod.status.pod_ip)
        and pod.status.phase in ("Pending", "Running")
    )


def is_ready(pod: Any) -> bool:
    """The kubelet's readiness probe passes."""
    if pod.status is None or pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def ended(pod: Any, restarts_then: int, memory_mb: int) -> PodExit | None:
    """How the app container ended after it was handed out, if it did."""
    status = container_status(pod)
    if status is None:
        return None
    terminated = None
    if status.restart_count > restarts_then and status.last_state is not None:
        terminated = status.last_state.terminated
    if status.state is not None and status.state.terminated is not None:
        terminated = status.state.terminated
    if terminated is None:
        if status.restart_count > restarts_then:
            return PodExit(ExitReason.EXITED, None, "restarted")
        return None
    return classify(terminated, memory_mb)


def classify(terminated: Any, memory_mb: int) -> PodExit:
    code = terminated.exit_code
    if terminated.reason == "OOMKilled":
        return PodExit(
            ExitReason.OUT_OF_MEMORY,
            code,
            f"killed for exceeding its memory limit ({memory_mb} MB)",
        )
    if code is not None and code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return PodExit(ExitReason.KILLED, code, f"killed by {name}")
    return PodExit(ExitReason.EXITED, code, f"exited with status {code}")


def start_failure(pod: Any) -> str:
    """Why a pod that was never handed out cannot start, or ""."""
    if pod.status is None:
        return ""
    for status in pod.status.init_container_statuses or []:
        if status.name != FETCH_CONTAINER:
            continue
        state = status.state
        term = state.terminated if state is not None else None
        last = status.last_state.terminated if status.last_state is not None else None
        failed = term if term is not None and term.exit_code else last
        if failed is not None and failed.exit_code:
            why = (failed.message or failed.reason or "").strip()
            return f"the pod could not fetch the app's artifact: {why}"
        if (
            state is not None
            and state.waiting is not None
            and state.waiting.reason in START_FAILURES
        ):
            why = f"{state.waiting.reason} {state.waiting.message or ''}".strip()
            return f"the pod's init container cannot start: {why}"
    status = container_status(pod)
    if status is None or status.state is None:
        return ""
    waiting = status.state.waiting
    if (
        waiting is not None
        and waiting.reason in START_FAILURES
        and waiting.reason != "CrashLoopBackOff"
    ):
        why = f"{waiting.reason}: {waiting.message or ''}".strip()
        return f"the image {status.image} cannot be run: {why}"
    term = status.state.terminated
    if term is None and status.last_state is not None:
        term = status.last_state.terminated
    if term is not None and not status.ready and (status.restart_count or term.exit_code):
        verdict = classify(term, 0)
        reason = (
            "CrashLoopBackOff"
            if waiting is not None and waiting.reason == "CrashLoopBackOff"
            else term.reason
        )
        if verdict.reason == ExitReason.OUT_OF_MEMORY:
            return f"the app was OOMKilled while starting ({reason})"
        said = last_words(term.message)
        return f"the app {verdict.message} while starting ({reason})" + (
            f":\n{said}" if said else ""
        )
    return ""


#: Of a container's termination message (its log's end when it failed,
#: terminationMessagePolicy FallbackToLogsOnError), what a start failure
#: repeats: enough for a traceback's last frame, not a log dump.
LAST_WORDS_LINES = 12
LAST_WORDS_CHARS = 2000


def last_words(message: str | None) -> str:
    """The end of a container's termination message, trimmed."""
    lines = [line.rstrip() for line in (message or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[-LAST_WORDS_LINES:])[-LAST_WORDS_CHARS:]
