"""The pod backend port: where app processes ("pods") run.

A backend starts a pod from a built artifact directory (whose
``ignite-launch.json`` says how, see docs/pod-protocol.md), reports when it
is ready and when and why it exits, and stops it. It knows nothing about
scaling or requests: core/invoker.py decides how many pods run and sends
them HTTP through ``Pod.connector()``. Implementations: backends/local
(sandboxed child processes), backends/kubernetes (Deployments scaled by
KEDA on the demand ``start`` and ``stop`` express).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import aiohttp

from ignite_server.domain.models import DeploymentState, LogStream, Resources, Scaling


@dataclass(frozen=True)
class PodSpec:
    """What to run in one pod."""

    #: "org/name"
    app_id: str
    version: int
    artifact_dir: Path
    #: The app's own environment variables (never the server's).
    env: Mapping[str, str]
    resources: Resources
    #: Requests the platform sends the pod at once (>= 1).
    max_concurrency: int
    #: The app's scaling bounds, for backends whose cluster scales pods
    #: itself (Kubernetes: the ScaledObject's replica bounds and cooldown).
    scaling: Scaling | None = None


class ExitReason(enum.StrEnum):
    """Why a pod is gone."""

    #: The platform stopped it (scale-down, retire, close).
    STOPPED = "stopped"
    #: It went past its memory limit and the kernel killed it.
    OUT_OF_MEMORY = "out_of_memory"
    #: It died from a signal nobody on the platform sent.
    KILLED = "killed"
    #: Its process exited by itself.
    EXITED = "exited"
    #: It never became ready (load error, crash at start-up, start timeout).
    START_FAILED = "start_failed"


@dataclass(frozen=True)
class PodExit:
    """How a pod ended."""

    reason: ExitReason
    #: The process's exit status (negative: killed by that signal), if known.
    exit_code: int | None
    message: str


@dataclass(frozen=True)
class PodStats:
    """Resource use of a pod so far."""

    cpu_used_ms: int
    memory_used_mb: int
    memory_peak_mb: int


@dataclass(frozen=True)
class PodLogRecord:
    """One line an app printed, attributed to an execution where known."""

    app_id: str
    version: int
    pod_id: str
    stream: LogStream
    message: str
    timestamp_ms: int
    #: "" when the line cannot be attributed to one execution.
    execution_id: str = ""


LogSink = Callable[[PodLogRecord], None]


@runtime_checkable
class LogGate(Protocol):
    """A log sink that can say, before a line is even parsed, that its app
    is printing past its rate: a pod's reader then counts a flood's lines
    as dropped by the chunk instead of handling each (core/logs.py)."""

    def admits(self, app_id: str) -> bool:
        """Whether lines of ``app_id`` would be taken now."""
        ...

    def dropped(self, app_id: str, lines: int) -> None:
        """``lines`` of ``app_id`` were dropped unread for its rate."""
        ...


class PodStartError(Exception):
    """A pod could not be started or never became ready; ``message`` says why
    in words fit for the app's owner (the load error, the exit status)."""

    def __init__(self, message: str, *, reason: ExitReason = ExitReason.START_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class Pod(Protocol):
    """One running, ready pod."""

    #: Unique among the backend's pods.
    id: str
    spec: PodSpec

    def connector(self) -> aiohttp.BaseConnector:
        """A new aiohttp connector reaching the pod's HTTP server; the
        caller owns (and closes) it."""
        ...

    @property
    def base_url(self) -> str:
        """The URL prefix to use with ``connector()``, e.g. "http://pod"."""
        ...

    @property
    def exit(self) -> PodExit | None:
        """How the pod ended, or None while it runs."""
        ...

    async def wait(self) -> PodExit:
        """Wait until the pod has ended and say how."""
        ...

    def executing(self, execution_id: str) -> AbstractContextManager[None]:
        """Mark ``execution_id`` as running on the pod for the duration of the
        block, so untagged log lines can be attributed to it."""
        ...

    def stats(self) -> PodStats:
        """CPU and memory used so far (zeros where the backend cannot tell)."""
        ...

    async def stop(self, grace_secs: float = ...) -> PodExit:
        """Ask the pod to finish and exit; kill it after ``grace_secs``."""
        ...


@dataclass(frozen=True)
class BackendInfo:
    """What a backend can guarantee, for the status of apps and start-up logs."""

    sandboxed: bool
    #: Non-empty when something users should know is degraded (no sandbox,
    #: no memory limits).
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: Memory (MiB) all pods together may have, enforced by the backend
    #: (the local pods' parent cgroup); None where a scheduler of the
    #: backend's own decides (a cluster).
    memory_capacity_mb: int | None = None


@dataclass(frozen=True)
class ObservedDeployment:
    """What a backend sees running for an app where it sees more than the
    platform's own pods: a cluster's pods, whoever started them."""

    state: DeploymentState
    ready_replicas: int
    #: Why, when FAILED (an image that cannot be pulled, a crash loop).
    message: str = ""


class PodBackend(Protocol):
    """Starts and stops pods."""

    @property
    def info(self) -> BackendInfo:
        """Sandboxing and degradation, fixed once the backend has started."""
        ...

    async def start(self, spec: PodSpec) -> Pod:
        """Start a pod and return once it answers its health probe.

        Raises PodStartError when it cannot start or never becomes ready.
        """
        ...

    def observed(self, app_id: str, versions: frozenset[int]) -> ObservedDeployment | None:
        """The app's state as the backend sees it, for ``versions`` (all
        when empty); None when the platform's own view is the whole truth."""
        ...

    async def scaling_changed(self, spec: PodSpec) -> None:
        """The app's scaling bounds changed to ``spec.scaling`` while pods of
        ``spec`` run: a backend whose cluster scales pods applies them."""
        ...

    async def remove_app(self, app_id: str) -> None:
        """The app is deleted: remove whatever the backend keeps for it
        beyond its pods (a cluster's objects). Its pods are stopped first."""
        ...

    async def close(self) -> None:
        """Stop every pod and release what the backend holds."""
        ...
