"""One local pod: a (sandboxed) runtime process, its logs, its end.

The process is started through ``/bin/sh`` only to join the pod's cgroups
(and set the rlimit fallback) before it execs the sandbox (see
ignite_server/containment/) or the runtime, so no Python code runs between
fork and exec. Its stdout and stderr are read
line by line: tagged records (0x1E + JSON) name their execution; other lines
are attributed to the pod's only in-flight execution when there is exactly
one. When the process ends, the exit is classified (stopped by us, killed by
the OOM killer, killed by a signal, exited) from our own intent, the memory
cgroup's OOM-kill counter and the exit status, and the pod's directory and
cgroups are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import aiohttp
import structlog

from ignite_server.containment import mounts
from ignite_server.containment.cgroups import LimitNotApplied, SandboxCgroup
from ignite_server.domain.models import LogStream
from ignite_server.ports.pod_backend import (
    ExitReason,
    LogSink,
    PodExit,
    PodLogRecord,
    PodSpec,
    PodStartError,
    PodStats,
)

log = structlog.get_logger(__name__)

SOCKET_NAME = "pod.sock"
#: Pipe reader limit: longer lines are split rather than failing the reader.
MAX_LOG_LINE_BYTES = 256 * 1024
#: How many untagged output lines are kept to explain a failed start.
START_LOG_TAIL = 20
#: How often a starting pod's socket is looked for: the Python runtime is
#: up in ~20 ms, so a few ms keeps the wait from adding to the cold start.
READY_POLL_SECS = 0.002
RECORD_SEPARATOR = 0x1E
#: How long a SIGKILLed pod may take to be reaped before stop() gives up
#: waiting (it normally takes milliseconds).
KILL_WAIT_SECS = 10.0


async def http_once(
    socket_path: Path, method: str, path: str, body: bytes = b"", wait_secs: float = 10.0
) -> tuple[int, bytes]:
    """One HTTP/1.1 exchange on a fresh unix-socket connection.

    Used for the pod protocol's own endpoints (health, load), where a
    connection pool would cost more than it saves."""
    async with asyncio.timeout(wait_secs):
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        try:
            writer.write(
                f"{method} {path} HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    head, _, payload = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        raise ConnectionError("malformed answer from the pod") from None
    return status, payload


class LocalPod:
    """A pod of the local backend (see backends/protocol.py ``Pod``)."""

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
        self._sink = sink
        self._proc: asyncio.subprocess.Process | None = None
        self._exit: asyncio.Future[PodExit] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []
        self._executions: list[str] = []
        self._tail: deque[str] = deque(maxlen=START_LOG_TAIL)
        self._stopping = False
        self._oom_before = 0

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
        return self.run_dir / SOCKET_NAME

    @property
    def base_url(self) -> str:
        return "http://pod"

    def connector(self) -> aiohttp.BaseConnector:
        return aiohttp.UnixConnector(path=str(self.socket_path))

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
            asyncio.create_task(self._read(self._proc.stdout, LogStream.STDOUT)),
            asyncio.create_task(self._read(self._proc.stderr, LogStream.STDERR)),
        ]
        self._tasks = [*readers, asyncio.create_task(self._watch(readers))]

    async def wait_ready(self, wait_secs: float) -> None:
        """Return once the runtime's health probe answers 200."""
        await self._wait_health(wait_secs, accept_unloaded=False)

    async def wait_listening(self, wait_secs: float) -> None:
        """Return once the runtime answers its health probe at all (a
        pre-started pod answers 503 until it is specialized)."""
        await self._wait_health(wait_secs, accept_unloaded=True)

    async def _wait_health(self, wait_secs: float, *, accept_unloaded: bool) -> None:
        deadline = time.monotonic() + wait_secs
        while True:
            if self._exit.done():
                raise PodStartError(self._start_failure(self._exit.result()))
            if self.socket_path.exists():
                try:
                    status, _ = await http_once(self.socket_path, "GET", "/_ignite/health")
                except (OSError, ConnectionError, TimeoutError):
                    status = 0
                if status == 200 or (accept_unloaded and status == 503):
                    return
            if time.monotonic() > deadline:
                await self.stop(0)
                raise PodStartError(f"the pod did not become ready within {wait_secs:g}s")
            await asyncio.sleep(READY_POLL_SECS)

    async def load(self, spec: PodSpec, code_dir: str, wait_secs: float) -> None:
        """Specialize a pre-started pod for ``spec`` (POST /_ignite/load)."""
        self.spec = spec
        try:
            self.cgroup.limit(spec.resources.memory_mb, spec.resources.cpu_millicores)
        except LimitNotApplied as exc:
            await self.stop(0)
            raise PodStartError(f"the pod's limits could not be applied: {exc}") from exc
        body = json.dumps(
            {
                "code_dir": code_dir,
                "function_id": spec.app_id,
                "organization_id": spec.app_id.split("/", 1)[0],
                "version": spec.version,
                "max_concurrency": spec.max_concurrency,
                "env": dict(spec.env),
            }
        ).encode()
        try:
            status, answer = await http_once(
                self.socket_path, "POST", "/_ignite/load", body, wait_secs
            )
        except (OSError, ConnectionError, TimeoutError) as exc:
            await self.stop(0)
            raise PodStartError(f"the pod did not take its code: {exc}") from exc
        if status != 200:
            await self.stop(0)
            try:
                message = str(json.loads(answer)["error"])
            except (ValueError, KeyError, TypeError):
                message = f"the pod refused its code (HTTP {status})"
            raise PodStartError(message)

    def _start_failure(self, end: PodExit) -> str:
        tail = "\n".join(self._tail)
        return f"the pod exited before it was ready ({end.message})" + (
            f":\n{tail}" if tail else ""
        )

    @property
    def exit(self) -> PodExit | None:
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> PodExit:
        return await asyncio.shield(self._exit)

    @contextlib.contextmanager
    def executing(self, execution_id: str) -> Iterator[None]:
        self._executions.append(execution_id)
        try:
            yield
        finally:
            self._executions.remove(execution_id)

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
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

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
        # namespace; bubblewrap itself would die of SIGTERM and take the
        # runtime with it ungracefully, so signal the runtime's host pids.
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

    async def _read(self, stream: asyncio.StreamReader, kind: LogStream) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the limit: take what is there
                raw = await stream.read(MAX_LOG_LINE_BYTES)
            if not raw:
                return
            self._emit(raw.rstrip(b"\n"), kind)

    def _emit(self, raw: bytes, kind: LogStream) -> None:
        execution_id = ""
        text = raw.decode("utf-8", "replace")
        if raw[:1] == bytes([RECORD_SEPARATOR]):
            try:
                record = json.loads(raw[1:])
                execution_id = str(record.get("execution_id") or "")
                text = str(record.get("message", ""))
                if record.get("stream") == "stderr":
                    kind = LogStream.STDERR
                elif record.get("stream") == "stdout":
                    kind = LogStream.STDOUT
            except (ValueError, AttributeError):
                pass
        else:
            self._tail.append(text)
            if len(self._executions) == 1:
                execution_id = self._executions[0]
        spec = self.spec
        self._sink(
            PodLogRecord(
                app_id=spec.app_id if spec is not None else "",
                version=spec.version if spec is not None else 0,
                pod_id=self.id,
                stream=kind,
                message=text,
                timestamp_ms=int(time.time() * 1000),
                execution_id=execution_id,
            )
        )


def _remove_dir(pod_dir: Path) -> None:
    mounts.unmount_under(pod_dir)
    shutil.rmtree(pod_dir, ignore_errors=True)


def _sandboxed_pids(cgroup: SandboxCgroup) -> list[int]:
    """Host pids of the pod's processes other than bubblewrap's own."""
    pids = []
    for pid in cgroup.pids():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm != "bwrap":
            pids.append(pid)
    return pids
