"""Running one step of a build: limited, contained and logged.

Every pipeline builds by running a toolchain on the user's code (pip,
``go``, ``cargo``, ``deno``, buildah), and that runs code of the user's
choosing too (a requirement's build backend, Cargo build scripts and
proc-macros, Go's module tooling, npm install scripts, Dockerfile ``RUN``
steps). Each step:

- runs in the sandbox of ignite_server/containment/ under the policy its
  build's jail gives it (jail.py: the build's own uid, never root, its own
  network namespace, only its own folders writable), with the default-deny
  system-call filter and its own pid, ipc, uts and mount namespaces;
- runs in cgroups of its own (memory, CPU accounting, tasks) joined before it
  executes, so the memory limit covers every process it forks (rustc, the
  linker);
- streams its merged stdout/stderr to the build log line by line (or, for a
  step whose output is data, hands stdout to a sink and logs stderr);
- is killed, with everything it started, when the build's deadline passes.

A step with no policy runs as a plain process: only the platform's own
commands that run no user code (and the tests of this module) do that.
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

from ignite_server.containment import sandbox, seccomp
from ignite_server.containment.cgroups import CgroupRoot, LimitNotApplied, SandboxCgroup
from ignite_server.ports.build_pipeline import BuildFailed

#: Default memory limit of a build step: rustc on a large crate needs a
#: couple of GB; more than that is a runaway build.
DEFAULT_MEMORY_MB = 4096
#: Lines of output kept to explain a failure in one line.
TAIL_LINES = 40
#: Bytes read at once from a step's data output.
CHUNK = 256 * 1024
#: Size of a step's private /tmp: linkers and ``go build`` keep their work
#: files there; it counts against the step's memory limit.
TMP_MB = 1024
#: Server environment variables a build step inherits: the extra CA
#: certificates this host trusts (a registry mirror's, a TLS-inspecting
#: proxy's). Nothing else of the server's environment reaches a build.
TRUST_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")


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


def trust_env() -> dict[str, str]:
    """The TRUST_ENV variables the server has."""
    return {name: os.environ[name] for name in TRUST_ENV if name in os.environ}


async def run_step(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Callable[[str], None],
    deadline: Deadline,
    memory_mb: int = DEFAULT_MEMORY_MB,
    policy: sandbox.Policy | None = None,
    on_line: Callable[[str], bool] | None = None,
    stdout: Callable[[bytes], None] | None = None,
) -> StepResult:
    """Runs ``argv`` with exactly ``env`` and returns how it ended: in the
    sandbox ``policy`` describes (whose ``cwd`` it starts in), else as a
    plain process in ``cwd``.

    Every output line goes to ``log`` unless ``on_line`` returns True for it
    (the caller consumed it, e.g. Cargo's JSON messages); with ``stdout``,
    standard output is data handed to it block by block and only standard
    error is logged. Raises BuildFailed when the deadline passes.
    """
    command = list(argv)
    pass_fds: tuple[int, ...] = ()
    if policy is not None:
        try:
            bwrap = sandbox.bubblewrap()
        except sandbox.SandboxUnavailable as exc:
            raise BuildFailed(
                f"builds run only in a sandbox, and none is usable here: {exc}"
            ) from exc
        filter_fd = seccomp.program_fd()
        pass_fds = (filter_fd,)
        command = [*sandbox.command(bwrap, policy, filter_fd), *command]
    try:
        async with _step_cgroup(memory_mb, log) as cgroup:
            return await _run(
                command, cwd, env, log, deadline, memory_mb, on_line, stdout, cgroup, pass_fds
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
    stdout: Callable[[bytes], None] | None,
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
        stderr=asyncio.subprocess.STDOUT if stdout is None else asyncio.subprocess.PIPE,
        # Its own process group, so a timeout kills the whole tree.
        start_new_session=True,
        pass_fds=pass_fds,
    )
    tail: list[str] = []
    try:
        assert process.stdout is not None
        if stdout is None:
            pumping = _pump(process.stdout, log, on_line, tail)
        else:
            assert process.stderr is not None
            pumping = _pump_data(process.stdout, stdout, process.stderr, log, tail)
        await asyncio.wait_for(pumping, deadline.remaining())
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


async def _pump_data(
    data: asyncio.StreamReader,
    sink: Callable[[bytes], None],
    errors: asyncio.StreamReader,
    log: Callable[[str], None],
    tail: list[str],
) -> None:
    async def copy() -> None:
        while block := await data.read(CHUNK):
            sink(block)

    await asyncio.gather(copy(), _pump(errors, log, None, tail))


async def _pump(
    stream: asyncio.StreamReader,
    log: Callable[[str], None],
    on_line: Callable[[str], bool] | None,
    tail: list[str],
) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            return
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if on_line is not None and on_line(line):
            continue
        log(line)
        tail.append(line)
        if len(tail) > TAIL_LINES:
            del tail[0]


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
