"""Running one compiler step of a build: limited, contained and logged.

Every pipeline builds by running a toolchain on the user's code (pip,
``go``, ``cargo``, ``deno``), and that runs code of the user's choosing too
(a requirement's build backend, Cargo build scripts and proc-macros, Go's
module tooling, npm install scripts). Each step:

- runs in the sandbox of ignite_server/containment/ under the build uid
  (never root), with the default-deny system-call filter, its own pid, ipc,
  uts and mount namespaces, a size-capped private ``/tmp``, the base system
  and the toolchain read-only, and only the build's own folders writable
  (handed over to the build uid first), so a build cannot read the server's
  state, its credentials or another app's sources; the network stays unless
  the step says otherwise (dependencies are downloaded at build time);
- runs in cgroups of its own (memory, CPU accounting, tasks) joined before it
  executes, so the memory limit covers every process it forks (rustc, the
  linker);
- streams its merged stdout/stderr to the build log line by line;
- is killed, with everything it started, when the build's deadline passes.

A step that asks for the sandbox fails when none can be made here (see
``containment.sandbox.bubblewrap``); only a pipeline constructed without a
sandbox (development tools, some tests) runs steps as plain processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ignite_server.containment import identities, seccomp
from ignite_server.containment import sandbox as containment
from ignite_server.containment.cgroups import CgroupRoot, LimitNotApplied, SandboxCgroup
from ignite_server.ports.build_pipeline import BuildFailed

#: Default memory limit of a build step: rustc on a large crate needs a
#: couple of GB; more than that is a runaway build.
DEFAULT_MEMORY_MB = 4096
#: Lines of output kept to explain a failure in one line.
TAIL_LINES = 40
#: Size of a step's private /tmp: linkers and ``go build`` keep their work
#: files there; it counts against the step's memory limit.
TMP_MB = 1024
#: Server environment variables a build step inherits: how this host reaches
#: package registries (proxies, extra CA certificates). Nothing else of the
#: server's environment reaches a build.
NETWORK_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


class Deadline:
    """The wall-clock limit shared by all steps of one build."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends_at = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left; raises BuildFailed when none are."""
        left = self._ends_at - time.monotonic()
        if left <= 0:
            raise self.exceeded()
        return left

    def exceeded(self) -> BuildFailed:
        """The error a build that ran out of time ends with."""
        return BuildFailed(f"the build did not finish within {self.seconds:g} s")


@dataclass(frozen=True)
class Sandbox:
    """What a sandboxed step may see: ``ro_paths`` read-only, ``rw_paths``
    writable (handed over to the build uid), each at its own path, and the
    network when ``network``; everything else of the host is absent."""

    ro_paths: Sequence[Path | str] = ()
    rw_paths: Sequence[Path | str] = ()
    network: bool = True

    def policy(self, cwd: Path) -> containment.Policy:
        return containment.Policy(
            uid=identities.BUILD_UID,
            tmp_mb=TMP_MB,
            network=self.network,
            ro_paths=[str(path) for path in self.ro_paths],
            rw_binds=[(str(path), str(path)) for path in self.rw_paths],
            cwd=str(cwd),
            hostname="build",
        )


@dataclass(frozen=True)
class StepResult:
    """How a step ended."""

    returncode: int
    #: The last lines of its output, for a one-line failure reason.
    tail: list[str] = field(default_factory=list)
    out_of_memory: bool = False


def installed_tool(path: Path, name: str) -> Path:
    """``path`` if it exists. A pipeline whose compiler is missing is not
    offered at all (the registry skips it on FileNotFoundError)."""
    if not path.exists():
        raise FileNotFoundError(f"{name} is not installed: no {path}")
    return path


def require_tool(path: Path, name: str) -> None:
    """At build time: the compiler may have been removed since start-up."""
    if not path.exists():
        raise BuildFailed(f"{name} is not installed on this host ({path})")


def network_env() -> dict[str, str]:
    """The NETWORK_ENV variables the server has."""
    return {name: os.environ[name] for name in NETWORK_ENV if name in os.environ}


async def run_step(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
    deadline: Deadline,
    memory_mb: int = DEFAULT_MEMORY_MB,
    sandbox: Sandbox | None = None,
    on_line: Callable[[str], bool] | None = None,
) -> StepResult:
    """Runs ``argv`` in ``cwd`` with exactly ``env`` and returns how it ended.

    Every output line goes to ``log`` unless ``on_line`` returns True for it
    (the caller consumed it, e.g. Cargo's JSON messages). Raises BuildFailed
    when the deadline passes.
    """
    command = list(argv)
    pass_fds: tuple[int, ...] = ()
    if sandbox is not None:
        try:
            bwrap = containment.bubblewrap()
        except containment.SandboxUnavailable as exc:
            raise BuildFailed(
                f"builds run only in a sandbox, and none is usable here: {exc}"
            ) from exc
        await asyncio.to_thread(_hand_over, sandbox.rw_paths)
        filter_fd = seccomp.program_fd()
        pass_fds = (filter_fd,)
        command = [*containment.command(bwrap, sandbox.policy(cwd), filter_fd), *command]
    try:
        async with _step_cgroup(memory_mb, log) as cgroup:
            return await _run(
                command, cwd, env, log, deadline, memory_mb, on_line, cgroup, pass_fds
            )
    finally:
        for fd in pass_fds:
            os.close(fd)


async def _run(
    command: list[str],
    cwd: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
    deadline: Deadline,
    memory_mb: int,
    on_line: Callable[[str], bool] | None,
    cgroup: SandboxCgroup | None,
    pass_fds: tuple[int, ...],
) -> StepResult:
    procs = cgroup.procs_file() if cgroup is not None else None
    if procs is not None:
        # The shell joins the cgroup, then becomes the command: nothing of
        # the build ever runs outside the limit.
        command = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs), *command]
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # Its own process group, so a timeout kills the whole tree.
        start_new_session=True,
        pass_fds=pass_fds,
    )
    tail: list[str] = []
    try:
        await asyncio.wait_for(_pump(process, log, on_line, tail), deadline.remaining())
        returncode = await process.wait()
    except (TimeoutError, BuildFailed):
        _kill_group(process)
        await process.wait()
        log(f"build step killed: {deadline.exceeded().message}")
        raise deadline.exceeded() from None
    except BaseException:
        _kill_group(process)
        await process.wait()
        raise
    finally:
        if cgroup is not None:
            # A daemonized child escapes the process group, never the cgroup.
            cgroup.kill_all()
    oom = cgroup is not None and cgroup.oom_kills() > 0
    if oom:
        log(f"build step ran out of memory (limit {memory_mb} MB)")
    return StepResult(returncode=returncode, tail=tail, out_of_memory=oom)


def failure_reason(step: str, result: StepResult, memory_mb: int = DEFAULT_MEMORY_MB) -> str:
    """A one-line reason for a failed step: the first compiler error line
    when there is one, else the last line of output."""
    if result.out_of_memory:
        return f"{step} ran out of memory (limit {memory_mb} MB)"
    for line in result.tail:
        if line.lstrip().lower().startswith("error"):
            return f"{step} failed: {line.strip()}"
    last = next((line.strip() for line in reversed(result.tail) if line.strip()), "")
    return f"{step} failed (exit status {result.returncode})" + (f": {last}" if last else "")


async def _pump(
    process: asyncio.subprocess.Process,
    log: Callable[[str], None],
    on_line: Callable[[str], bool] | None,
    tail: list[str],
) -> None:
    assert process.stdout is not None
    while True:
        raw = await process.stdout.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if on_line is not None and on_line(line):
            continue
        log(line)
        tail.append(line)
        if len(tail) > TAIL_LINES:
            del tail[0]


def _hand_over(paths: Sequence[Path | str]) -> None:
    for path in paths:
        identities.hand_over(Path(path), identities.BUILD_UID)


@functools.cache
def _cgroups() -> CgroupRoot:
    """The build steps' cgroup folders (one set per server process)."""
    return CgroupRoot("builds")


@contextlib.asynccontextmanager
async def _step_cgroup(
    memory_mb: int, log: Callable[[str], None]
) -> AsyncIterator[SandboxCgroup | None]:
    """Fresh cgroups limited to ``memory_mb``, removed afterwards; None when
    the memory controller cannot be used here."""
    root = _cgroups()
    if not root.has_memory:
        log("note: build memory limit not enforced (no writable memory cgroup)")
        yield None
        return
    group = root.group(f"step-{uuid.uuid4().hex}")
    try:
        group.limit_memory(memory_mb)
    except LimitNotApplied as exc:
        group.remove()
        raise BuildFailed(f"the build's memory limit could not be applied: {exc}") from exc
    try:
        yield group
    finally:
        # A killed process leaves its cgroup a moment after it is reaped.
        for _ in range(50):
            group.kill_all()
            group.remove()
            if not any(path.exists() for path in group.paths.values()):
                break
            await asyncio.sleep(0.01)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
