"""Running one compiler step of a build: limited, contained and logged.

The compiled runtimes (Go, Rust, Deno) build by running a toolchain command
on the user's code, which runs code of the user's choosing too (Go generate
aside, Cargo build scripts and proc-macros, npm install scripts). Each step:

- runs inside bubblewrap when it is installed: its own pid/ipc/uts
  namespaces, a private ``/tmp``, the base system and the toolchain mounted
  read-only, and only the build's own directories writable, so a build cannot
  read the server's state or another app's sources; the network stays
  (dependencies are downloaded at build time);
- is placed in its own cgroup v1 memory cgroup before it executes, so the
  limit covers every process it forks (rustc, the linker); where the memory
  controller is not writable the step runs without a memory limit and says so
  in the build log (``RLIMIT_AS`` is no substitute: Go and V8 reserve far more
  address space than they use);
- streams its merged stdout/stderr to the build log line by line;
- is killed, with everything it started, when the build's deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ignite_server.builds.protocol import BuildFailed

#: Where build cgroups are created (cgroup v1 memory controller).
MEMORY_CGROUP_ROOT = Path("/sys/fs/cgroup/memory")
#: Parent cgroup grouping every build step, so they are easy to find.
CGROUP_PARENT = "ignite-builds"
#: Default memory limit of a build step: rustc on a large crate needs a
#: couple of GB; more than that is a runaway build.
DEFAULT_MEMORY_MB = 4096
#: Lines of output kept to explain a failure in one line.
TAIL_LINES = 40
#: Host paths a sandboxed step sees read-only besides its toolchain: the base
#: system, CA certificates and name resolution for dependency downloads.
BASE_RO_PATHS = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/alternatives",
)
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
#: ``sh -c`` script: write our pid into the cgroup file ($0), become "$@".
_JOIN_CGROUP = 'echo $$ > "$0" && exec "$@"'


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
    writable, each at its own path; everything else of the host is absent."""

    ro_paths: Sequence[Path | str] = ()
    rw_paths: Sequence[Path | str] = ()


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


def bubblewrap() -> str | None:
    """The bubblewrap binary, when installed."""
    return shutil.which("bwrap")


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
    if sandbox is not None and (bwrap := bubblewrap()) is not None:
        command = [bwrap, *_bubblewrap_args(sandbox, cwd), "--", *command]
    async with _memory_cgroup(memory_mb, log) as cgroup:
        if cgroup is not None:
            # The shell joins the cgroup, then becomes the command: nothing
            # of the build ever runs outside the limit.
            command = [
                "/bin/sh",
                "-c",
                'echo $$ > "$0" && exec "$@"',
                str(cgroup / "cgroup.procs"),
                *command,
            ]
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=cwd,
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own process group, so a timeout kills the whole tree.
            start_new_session=True,
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
                _kill_cgroup(cgroup)
        oom = cgroup is not None and _oom_killed(cgroup)
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


def _bubblewrap_args(sandbox: Sandbox, cwd: Path) -> list[str]:
    args = [
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
    ]
    for path in (*BASE_RO_PATHS, *map(str, sandbox.ro_paths)):
        args += ["--ro-bind-try", path, path]
    for path in map(str, sandbox.rw_paths):
        args += ["--bind", path, path]
    return [*args, "--chdir", str(cwd)]


@contextlib.asynccontextmanager
async def _memory_cgroup(memory_mb: int, log: Callable[[str], None]) -> AsyncIterator[Path | None]:
    """A fresh memory cgroup limited to ``memory_mb``, removed afterwards;
    None when the memory controller cannot be used here."""
    cgroup = MEMORY_CGROUP_ROOT / CGROUP_PARENT / f"build-{uuid.uuid4().hex}"
    try:
        cgroup.mkdir(parents=True)
        (cgroup / "memory.limit_in_bytes").write_text(str(memory_mb * 1024 * 1024))
    except OSError as error:
        with contextlib.suppress(OSError):
            cgroup.rmdir()
        log(f"note: build memory limit not enforced ({error.strerror or error})")
        yield None
        return
    try:
        yield cgroup
    finally:
        await _remove_cgroup(cgroup)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _kill_cgroup(cgroup: Path) -> None:
    """Kills whatever the step left running in its cgroup (a daemonized
    child escapes the process group, never the cgroup)."""
    with contextlib.suppress(OSError):
        for pid in (cgroup / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


def _oom_killed(cgroup: Path) -> bool:
    with contextlib.suppress(OSError, ValueError):
        for line in (cgroup / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
    return False


async def _remove_cgroup(cgroup: Path) -> None:
    # A killed process leaves its cgroup a moment after it is reaped.
    for _ in range(50):
        try:
            # cgroupfs directory removal does not touch a disk.
            os.rmdir(cgroup)
            return
        except FileNotFoundError:
            return
        except OSError:
            _kill_cgroup(cgroup)
            await asyncio.sleep(0.01)
