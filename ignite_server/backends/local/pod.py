"""One local pod: a (sandboxed) runtime process and its end.

The process is started through ``/bin/sh`` only to join the pod's cgroups
(and set the rlimit fallback) before it execs the sandbox (see
ignite_server/containment/) or the runtime, so no Python code runs between
fork and exec. Its output goes to a PodLogDemux (pod_logs.py); its health
and specialization go over the pod protocol (pod_client.py). When the
process ends, the exit is classified (stopped by us, killed by the OOM
killer, killed by a signal, exited) from our own intent, the memory
cgroup's OOM-kill counter and the exit status, and the pod's directory and
cgroups are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import aiohttp
import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.backends.local import pod_client
from ignite_server.backends.pod_logs import MAX_LOG_LINE_BYTES, PodLogDemux
from ignite_server.containment import mounts
from ignite_server.containment.cgroups import LimitNotApplied, SandboxCgroup
from ignite_server.domain.models import LogStream
from ignite_server.ports.pod_backend import (
    ExitReason,
    LogSink,
    PodExit,
    PodSpec,
    PodStartError,
    PodStats,
)

log = structlog.get_logger(__name__)

SOCKET_NAME = "pod.sock"
#: sun_path's size, with its terminating NUL.
SOCKET_PATH_MAX = 108
#: How often a starting pod's socket is looked for: the Python runtime is
#: up in ~20 ms, so a few ms keeps the wait from adding to the cold start.
READY_POLL_SECS = 0.002
#: The first look comes sooner, doubling up to READY_POLL_SECS: a binary
#: exec'd by a pre-started pod (docs/pod-protocol.md) listens within ~2 ms.
FIRST_POLL_SECS = 0.0005
#: How long a SIGKILLed pod may take to be reaped before stop() gives up
#: waiting (it normally takes milliseconds).
KILL_WAIT_SECS = 10.0
#: Process names of the sandbox's own supervisors, never signalled but
#: with SIGKILL: bubblewrap's, and the OCI runtime's of image pods.
SUPERVISORS = frozenset({"bwrap", "crun"})


class LocalPod:
    """A pod of the local backend (see ports/pod_backend.py ``Pod``)."""

    def __init__(
        self,
        *,
        pod_id: str,
        pod_dir: Path,
        cgroup: SandboxCgroup,
        sink: LogSink,
        sandboxed: bool,
        uid: int = 0,
        on_exit: Callable[[], None] = lambda: None,
    ) -> None:
        self.id = pod_id
        #: The host uid the pod's processes run as (when the server is root).
        self.uid = uid
        self.dir = pod_dir
        self.cgroup = cgroup
        self.sandboxed = sandboxed
        self._on_exit = on_exit
        self.spec: PodSpec = None  # type: ignore[assignment]  # set before it serves
        self._logs = PodLogDemux(pod_id, sink, lambda: self.spec)
        self._proc: asyncio.subprocess.Process | None = None
        self._exit: asyncio.Future[PodExit] = asyncio.get_running_loop().create_future()
        #: The readers of the pod's output and the watch of its process.
        self._tasks = TaskSupervisor(f"pod {pod_id}")
        self._stopping = False
        self._oom_before = 0
        #: An O_PATH descriptor of run/ when its socket path is too long.
        self._run_fd: int | None = None

    # --- paths ---------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        """Host side of the pod's writable socket directory."""
        return self.dir / "run"

    @property
    def code_slot(self) -> Path:
        """Host side of the pod's code directory (pre-started pods)."""
        return self.dir / "code"

    @property
    def socket_path(self) -> Path:
        """Where the pod's runtime creates its socket, on the host."""
        return self.run_dir / SOCKET_NAME

    @property
    def socket_address(self) -> Path:
        """The path this server connects to: ``socket_path``, or, when that is
        longer than a unix socket address may be (108 bytes; a deep state
        folder), the same socket through a descriptor of its folder."""
        if len(os.fsencode(self.socket_path)) < SOCKET_PATH_MAX:
            return self.socket_path
        if self._run_fd is None:
            self._run_fd = os.open(self.run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        return Path(f"/proc/self/fd/{self._run_fd}/{SOCKET_NAME}")

    @property
    def base_url(self) -> str:
        return "http://pod"

    def connector(self) -> aiohttp.BaseConnector:
        return aiohttp.UnixConnector(path=str(self.socket_address))

    # --- life ----------------------------------------------------------------

    async def launch(
        self,
        argv: list[str],
        env: Mapping[str, str],
        rlimit_data_mb: int,
        pass_fds: Sequence[int] = (),
    ) -> None:
        """Start the process; returns at once (see ``wait_ready``).
        ``pass_fds`` are inherited by the process (the sandbox's filter)."""
        script = self.cgroup.join_script()
        if rlimit_data_mb:
            script += f"ulimit -d {rlimit_data_mb * 1024}; "
        script += 'exec "$@"'
        self._oom_before = self.cgroup.oom_kills()
        spawn = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                script,
                "pod",
                *argv,
                env=dict(env),
                cwd=str(self.run_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                limit=MAX_LOG_LINE_BYTES,
                pass_fds=tuple(pass_fds),
            )
        )
        try:
            self._proc = await asyncio.shield(spawn)
        except asyncio.CancelledError:
            # Cancelling asyncio's process creation half-way can leave it
            # waiting forever for pipes that never connected (CPython 3.11),
            # so creation always completes; the pod is then watched like any
            # other and stopped by whoever cancelled its start.
            self._proc = await spawn
            self._watch_process()
            raise
        self._watch_process()

    def _watch_process(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None and self._proc.stderr is not None
        readers = [
            self._tasks.spawn(self._logs.read(self._proc.stdout, LogStream.STDOUT), name="stdout"),
            self._tasks.spawn(self._logs.read(self._proc.stderr, LogStream.STDERR), name="stderr"),
        ]
        self._tasks.spawn(self._watch(readers), name="watch")

    async def wait_ready(self, wait_secs: float) -> None:
        """Return once the runtime's health probe answers 200."""
        await self._wait_health(wait_secs, accept_unloaded=False)

    async def wait_listening(self, wait_secs: float) -> None:
        """Return once the runtime answers its health probe at all (a
        pre-started pod answers 503 until it is specialized)."""
        await self._wait_health(wait_secs, accept_unloaded=True)

    async def _wait_health(self, wait_secs: float, *, accept_unloaded: bool) -> None:
        async def answers() -> bool:
            if not self.socket_path.exists():
                return False
            status = await pod_client.health_status(self.socket_address)
            return status == 200 or (accept_unloaded and status == 503)

        await self.poll_until_ready(
            wait_secs, answers, lambda: f"the pod did not become ready within {wait_secs:g}s"
        )

    async def poll_until_ready(
        self,
        wait_secs: float,
        answers: Callable[[], Awaitable[bool]],
        too_late: Callable[[], str],
    ) -> None:
        """Poll ``answers`` (a few ms apart, sooner at first) until it says
        yes; PodStartError with the pod's exit and last output if it ends
        first, or with ``too_late()`` (the pod then stopped) past
        ``wait_secs``."""
        deadline = time.monotonic() + wait_secs
        pause = FIRST_POLL_SECS
        while True:
            if self._exit.done():
                raise PodStartError(self._start_failure(self._exit.result()))
            if await answers():
                return
            if time.monotonic() > deadline:
                message = too_late()
                await self.stop(0)
                raise PodStartError(message)
            await asyncio.sleep(pause)
            pause = min(pause * 2, READY_POLL_SECS)

    async def load(self, spec: PodSpec, code_dir: str, wait_secs: float) -> None:
        """Specialize a pre-started pod for ``spec`` (POST /_ignite/load) and
        return once it serves; a pod that took its code but starts serving
        later (the exec launcher, replaced by the app) is waited for."""
        self.spec = spec
        try:
            self.cgroup.limit(spec.resources.memory_mb, spec.resources.cpu_millicores)
        except LimitNotApplied as exc:
            await self.stop(0)
            raise PodStartError(f"the pod's limits could not be applied: {exc}") from exc
        try:
            if await pod_client.load(self.socket_address, spec, code_dir, wait_secs):
                await self.wait_ready(wait_secs)
        except PodStartError:
            await self.stop(0)
            raise

    def _start_failure(self, end: PodExit) -> str:
        tail = "\n".join(self._logs.tail)
        return f"the pod exited before it was ready ({end.message})" + (
            f":\n{tail}" if tail else ""
        )

    @property
    def exit(self) -> PodExit | None:
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> PodExit:
        return await asyncio.shield(self._exit)

    def executing(self, execution_id: str) -> AbstractContextManager[None]:
        """Count ``execution_id`` as in flight (it gets the untagged output)."""
        return self._logs.executing(execution_id)

    def stats(self) -> PodStats:
        current, peak = self.cgroup.memory_mb()
        return PodStats(
            cpu_used_ms=self.cgroup.cpu_ms(), memory_used_mb=current, memory_peak_mb=peak
        )

    async def stop(self, grace_secs: float = 10.0) -> PodExit:
        """SIGTERM the runtime, SIGKILL everything after ``grace_secs``."""
        self._stopping = True
        if self._proc is None:
            # Never launched (its start was cancelled): nothing to wait for.
            if not self._exit.done():
                await self._release()
                self._exit.set_result(PodExit(ExitReason.STOPPED, None, "never started"))
            return self._exit.result()
        if not self._exit.done():
            self._signal_runtime(signal.SIGTERM if grace_secs > 0 else signal.SIGKILL)
            try:
                async with asyncio.timeout(grace_secs or 1.0):
                    return await asyncio.shield(self._exit)
            except TimeoutError:
                self._signal_runtime(signal.SIGKILL)
        try:
            async with asyncio.timeout(KILL_WAIT_SECS):
                return await asyncio.shield(self._exit)
        except TimeoutError:
            # Never hang a shutdown on a process the kernel will not reap.
            log.error("pod survived SIGKILL", pod=self.id)
            return PodExit(ExitReason.KILLED, None, "did not exit after SIGKILL")

    async def close(self) -> None:
        """Stop at once and wait for the helper tasks (backend shutdown)."""
        await self.stop(0)
        await self._tasks.close()

    def _signal_runtime(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        if sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self.cgroup.kill_all()
            return
        if not self.sandboxed:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)
            return
        # Sandboxed, the runtime is a grandchild in its own session and pid
        # namespace; bubblewrap (or crun) itself would die of SIGTERM and
        # take the runtime with it ungracefully, so signal the runtime's
        # host pids.
        pids = _sandboxed_pids(self.cgroup)
        if not pids:
            self._signal_runtime(signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    async def _watch(self, readers: list[asyncio.Task[None]]) -> None:
        assert self._proc is not None
        code = await self._proc.wait()
        # The readers end at EOF, which comes when the last process holding
        # the pipes is gone; a bounded wait guards against a leaked child.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await asyncio.gather(*readers, return_exceptions=True)
        for task in readers:
            task.cancel()
        end = self._classify(code)
        await self._release()
        if not self._stopping:
            log.warning("pod exited", pod=self.id, reason=end.reason.value, detail=end.message)
        self._exit.set_result(end)

    async def _release(self) -> None:
        """Give back everything the pod had on the host: its processes,
        cgroups, socket tmpfs, folder and uid."""
        self.cgroup.kill_all()
        self.cgroup.remove()
        if self._run_fd is not None:
            os.close(self._run_fd)
            self._run_fd = None
        await asyncio.to_thread(_remove_dir, self.dir)
        self._on_exit()

    def _classify(self, code: int) -> PodExit:
        if self.cgroup.oom_kills() > self._oom_before:
            limit = self.spec.resources.memory_mb if self.spec is not None else 0
            return PodExit(
                ExitReason.OUT_OF_MEMORY,
                code,
                f"killed for exceeding its memory limit ({limit} MB)",
            )
        if self._stopping:
            return PodExit(ExitReason.STOPPED, code, "stopped by the platform")
        # bubblewrap reports a signal death of its child as 128 + signal.
        if code < 0 or code > 128:
            sig = -code if code < 0 else code - 128
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            return PodExit(ExitReason.KILLED, code, f"killed by {name}")
        return PodExit(ExitReason.EXITED, code, f"exited with status {code}")


def _remove_dir(pod_dir: Path) -> None:
    mounts.unmount_under(pod_dir)
    shutil.rmtree(pod_dir, ignore_errors=True)


def _sandboxed_pids(cgroup: SandboxCgroup) -> list[int]:
    """Host pids of the pod's processes other than the sandbox's own."""
    pids = []
    for pid in cgroup.pids():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm not in SUPERVISORS:
            pids.append(pid)
    return pids
