"""Fakes of the pod backend port, for core's fast tests (as
tests/gateway/fakes.py is for the gateway): pods that are ready at once, and
pods whose runtime is an aiohttp handler in this process, served on a real
unix socket, so the activator speaks real HTTP to them without a process,
a sandbox or a build.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
from aiohttp import web

from ignite_server.ports.pod_backend import (
    BackendInfo,
    ExitReason,
    ObservedDeployment,
    PodExit,
    PodSpec,
    PodStartError,
    PodStats,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Where an HttpBackend's handler finds the pod serving a request.
POD = web.RequestKey("pod", object)


class InstantPod:
    """A pod that is ready at once, serves nothing and ends when stopped."""

    def __init__(self, pod_id: str, spec: PodSpec) -> None:
        self.id = pod_id
        self.spec = spec
        self.stops = 0
        #: Execution ids marked as running on the pod, in order.
        self.executions: list[str] = []
        self._end: asyncio.Future[PodExit] = asyncio.get_running_loop().create_future()

    def connector(self) -> aiohttp.BaseConnector:
        return aiohttp.TCPConnector()

    @property
    def base_url(self) -> str:
        return "http://pod"

    @property
    def exit(self) -> PodExit | None:
        return self._end.result() if self._end.done() else None

    async def wait(self) -> PodExit:
        return await asyncio.shield(self._end)

    @contextlib.contextmanager
    def executing(self, execution_id: str) -> Iterator[None]:
        self.executions.append(execution_id)
        yield

    def stats(self) -> PodStats:
        return PodStats(0, 0, 0)

    def die(self, reason: ExitReason = ExitReason.EXITED, message: str = "exited") -> None:
        """The pod ends by itself (a crash, the OOM killer)."""
        if not self._end.done():
            self._end.set_result(PodExit(reason, 1, message))

    async def stop(self, grace_secs: float = 0) -> PodExit:
        self.stops += 1
        if not self._end.done():
            self._end.set_result(PodExit(ExitReason.STOPPED, 0, "stopped"))
        return self._end.result()


class InstantBackend:
    """Starts InstantPods; ``stuck`` ones never finish starting, and
    ``failing`` ones fail to start with that message."""

    def __init__(self, *, stuck: bool = False, failing: str = "") -> None:
        self.pods: list[InstantPod] = []
        self.stuck = stuck
        self.failing = failing
        self.closed = False

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(sandboxed=True)

    async def start(self, spec: PodSpec) -> InstantPod:
        if self.stuck:
            await asyncio.sleep(3600)
        if self.failing:
            raise PodStartError(self.failing)
        pod = InstantPod(f"pod{len(self.pods)}", spec)
        self.pods.append(pod)
        return pod

    def observed(self, app_id: str, versions: frozenset[int]) -> ObservedDeployment | None:
        return None

    async def scaling_changed(self, spec: PodSpec) -> None:
        return None

    async def remove_app(self, app_id: str) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


class HttpPod(InstantPod):
    """A pod whose runtime is ``handler``, served on a unix socket."""

    def __init__(self, pod_id: str, spec: PodSpec, socket_path: Path, runner: web.AppRunner):
        super().__init__(pod_id, spec)
        self.socket_path = socket_path
        self._runner = runner
        self._serving = True
        #: Requests whose handler is running now.
        self.running = 0
        self.cpu_used_ms = 0

    def connector(self) -> aiohttp.BaseConnector:
        return aiohttp.UnixConnector(path=str(self.socket_path))

    def stats(self) -> PodStats:
        return PodStats(self.cpu_used_ms, 64, 96)

    async def stop(self, grace_secs: float = 0) -> PodExit:
        end = await super().stop(grace_secs)
        if self._serving:
            # Stopping the server cancels the handlers still running, as a
            # killed runtime would stop them.
            self._serving = False
            await self._runner.cleanup()
        return end


class HttpBackend(InstantBackend):
    """Starts HttpPods whose runtime is ``handler`` (one handler for every
    pod; ``request[POD]`` is the pod serving a request)."""

    def __init__(self, root: Path, handler: Handler) -> None:
        super().__init__()
        self.root = root
        self.handler = handler
        self._ids = itertools.count()
        self.pods: list[HttpPod] = []  # type: ignore[assignment]

    async def start(self, spec: PodSpec) -> HttpPod:
        pod_id = f"pod{next(self._ids)}"
        application = web.Application()
        started: list[HttpPod] = []

        async def serve(request: web.Request) -> web.StreamResponse:
            pod = started[0]
            request[POD] = pod
            pod.running += 1
            try:
                return await self.handler(request)
            finally:
                pod.running -= 1

        application.router.add_route("*", "/{tail:.*}", serve)
        runner = web.AppRunner(
            application, handle_signals=False, access_log=None, shutdown_timeout=0.1
        )
        await runner.setup()
        socket_path = self.root / f"{pod_id}.sock"
        await web.UnixSite(runner, str(socket_path)).start()
        pod = HttpPod(pod_id, spec, socket_path, runner)
        started.append(pod)
        self.pods.append(pod)
        return pod

    async def close(self) -> None:
        for pod in self.pods:
            await pod.stop(0)
        self.closed = True
