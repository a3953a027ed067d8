"""Resource limits through cgroup v1 (memory, cpu, cpuacct, pids).

Each owner (a pod backend, or the build pipelines) makes one directory named
``ignite-<kind>-<pid>-<random>`` under the server's own cgroup in every
controller it can write, and one child per sandbox below it. A sandbox's
first process joins its groups before it execs (see ``join_script``), so
everything it forks is limited from its first instruction. The memory
controller's OOM killer kills only inside the group and counts the kill in
``memory.oom_control``, which is how an exit is recognised as out of memory.

Limits are applied in the order the kernel accepts and every write is
checked: ``memory.memsw.limit_in_bytes`` (memory plus swap) may never be
below ``memory.limit_in_bytes``, so a raise writes memsw first and a cut
writes it last; a limit that cannot be applied raises ``LimitNotApplied``
rather than leaving the sandbox with some other limit.

An owner's memory directory can carry a limit of its own
(``CgroupRoot.limit_memory``): the pod backend's is the machine's pod
capacity, so that whatever its pods use together, the kernel reclaims and,
at worst, OOM-kills inside that directory, never the host's global OOM
killer reaching for the server or the database.

A server that dies takes its sandboxes with it: an owner's watchdog
(watchdog.py) kills what is in its groups and removes them. Should that
fail too, the next owner created under the same parent removes the groups
whose server process is gone, killing anything still inside.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
#: CFS scheduling period; quota = millicores/1000 of it. 100 ms is the
#: kernel's default and keeps throttling coarse enough to be cheap.
CFS_PERIOD_US = 100_000
#: Tasks (processes + threads) one sandbox may have: far above what a
#: runtime with a thread per in-flight request needs, or what a compiler's
#: parallel jobs need, far below what hurts the host.
PIDS_MAX = 4096
MIB = 1024 * 1024


class LimitNotApplied(RuntimeError):
    """The kernel refused a limit; the sandbox must not start with another."""


def _own_path(controller: str) -> str:
    """The server's own cgroup in ``controller`` (from /proc/self/cgroup)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return "/"


class CgroupRoot:
    """An owner's cgroup directories, one per usable controller."""

    def __init__(self, kind: str) -> None:
        self.bases: dict[str, Path] = {}
        prefix = f"ignite-{kind}-"
        name = f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for controller in CONTROLLERS:
            mount = CGROUP_ROOT / controller
            if not (mount / "cgroup.procs").exists():
                continue
            parent = mount / _own_path(controller).lstrip("/")
            remove_stale(parent, prefix)
            try:
                (parent / name).mkdir()
            except OSError:
                continue
            self.bases[controller] = parent / name

    @property
    def has_memory(self) -> bool:
        return "memory" in self.bases

    def limit_memory(self, total_mb: int) -> bool:
        """Cap what every sandbox of this owner uses together (memory plus
        swap too, where accounted); False without a writable memory group."""
        base = self.bases.get("memory")
        if base is None:
            return False
        SandboxCgroup({"memory": base}).limit_memory(total_mb)
        return True

    def group(self, name: str) -> SandboxCgroup:
        """Make the groups of one sandbox."""
        paths: dict[str, Path] = {}
        for controller, base in self.bases.items():
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue  # that controller is missing for this sandbox
            paths[controller] = path
        group = SandboxCgroup(paths)
        group.write("pids", "pids.max", str(PIDS_MAX), required=False)
        return group

    def remove(self) -> None:
        """Remove the owner's directories, killing what is left inside."""
        for base in self.bases.values():
            remove_tree(base)


def host_memory_mb() -> int:
    """The machine's memory (MemTotal) in MiB; 0 where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def remove_stale(parent: Path, prefix: str) -> None:
    """Remove the groups that owners whose server process is gone left under
    ``parent`` (a crash leaves them behind); a live server's are left alone."""
    try:
        stale = [p for p in parent.glob(f"{prefix}*") if p.is_dir()]
    except OSError:
        return
    for base in stale:
        pid = base.name[len(prefix) :].split("-")[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        remove_tree(base)


def remove_tree(base: Path) -> None:
    """Kill every process in ``base`` and its child groups, and remove them."""
    groups = [child for child in _children(base)] + [base]
    for group in groups:
        _kill_members(group)
    # Killed processes leave their groups when the kernel has reaped them,
    # a moment later; a group with members cannot be removed.
    for _ in range(100):
        for group in groups:
            with contextlib.suppress(OSError):
                group.rmdir()
        if not any(group.exists() for group in groups):
            return
        for group in groups:
            _kill_members(group)
        time.sleep(0.02)


def _children(base: Path) -> list[Path]:
    try:
        return [child for child in base.iterdir() if child.is_dir()]
    except OSError:
        return []


def _kill_members(group: Path) -> None:
    with contextlib.suppress(OSError):
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


@dataclass
class SandboxCgroup:
    """The cgroups of one sandbox (an empty mapping where none could be made)."""

    paths: dict[str, Path]
    #: Counters read on every invocation (CPU and memory use), kept open:
    #: a pread of an open cgroup file costs a third of an open/read/close.
    _counters: dict[tuple[str, str], int] = field(default_factory=dict, repr=False)
    #: Set by remove(): no counter is opened again (it would never be closed).
    _removed: bool = field(default=False, repr=False)

    def counter(self, controller: str, knob: str) -> int:
        """An integer knob (usage counters), 0 where it cannot be read."""
        key = (controller, knob)
        fd = self._counters.get(key)
        try:
            if fd is None:
                path = self.paths.get(controller)
                if path is None or self._removed:
                    return 0
                fd = self._counters[key] = os.open(path / knob, os.O_RDONLY | os.O_CLOEXEC)
            return int(os.pread(fd, 64, 0).strip() or 0)
        except (OSError, ValueError):
            return 0

    def write(self, controller: str, knob: str, value: str, *, required: bool = True) -> bool:
        """Write one knob; a refused required write raises LimitNotApplied."""
        path = self.paths.get(controller)
        if path is None:
            return False
        try:
            (path / knob).write_text(value)
        except OSError as exc:
            if required:
                raise LimitNotApplied(
                    f"the kernel refused {knob} = {value}: {exc.strerror or exc}"
                ) from exc
            return False
        return True

    def read(self, controller: str, knob: str) -> str:
        path = self.paths.get(controller)
        if path is None:
            return ""
        try:
            return (path / knob).read_text()
        except OSError:
            return ""

    def limit(self, memory_mb: int, cpu_millicores: int) -> None:
        """Apply (or change) the memory and CPU limits, in the order the
        kernel accepts for the direction of change; raises LimitNotApplied."""
        self.limit_memory(memory_mb)
        self.write("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US))
        quota = max(1000, cpu_millicores * CFS_PERIOD_US // 1000)
        self.write("cpu", "cpu.cfs_quota_us", str(quota))

    def limit_memory(self, memory_mb: int) -> None:
        if "memory" not in self.paths:
            return
        wanted = memory_mb * MIB
        current = self.read("memory", "memory.limit_in_bytes").strip()
        # Without swap accounting memsw is absent; with it, capping it too
        # stops a sandbox from escaping its limit into swap.
        has_memsw = (self.paths["memory"] / "memory.memsw.limit_in_bytes").exists()
        raising = current.isdigit() and wanted > int(current)
        knobs = ["memory.limit_in_bytes"]
        if has_memsw:
            knobs = (
                ["memory.memsw.limit_in_bytes", *knobs]
                if raising
                else [*knobs, "memory.memsw.limit_in_bytes"]
            )
        for knob in knobs:
            self.write("memory", knob, str(wanted))
        applied = self.read("memory", "memory.limit_in_bytes").strip()
        # The kernel rounds to pages; anything else is not our limit.
        if not applied.isdigit() or abs(int(applied) - wanted) >= 4096:
            raise LimitNotApplied(f"memory limit is {applied or 'unknown'}, wanted {wanted}")

    def join_script(self) -> str:
        """Shell commands that move the current shell into the groups."""
        return "".join(
            f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}; " for path in self.paths.values()
        )

    def procs_file(self) -> Path | None:
        """One ``cgroup.procs`` file to join (the memory one when present)."""
        path = self.paths.get("memory") or next(iter(self.paths.values()), None)
        return None if path is None else path / "cgroup.procs"

    def pids(self) -> list[int]:
        """Host pids of the processes in the sandbox."""
        path = self.paths.get("pids") or self.paths.get("memory")
        if path is None:
            return []
        try:
            return [int(pid) for pid in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def oom_kills(self) -> int:
        """How many times the kernel's OOM killer struck inside the group."""
        for line in self.read("memory", "memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def cpu_ms(self) -> int:
        return self.counter("cpuacct", "cpuacct.usage") // 1_000_000

    def memory_mb(self) -> tuple[int, int]:
        """(current, peak) memory use in MiB."""
        current = self.counter("memory", "memory.usage_in_bytes")
        peak = self.counter("memory", "memory.max_usage_in_bytes")
        return (current // MIB, peak // MIB)

    def kill_all(self) -> None:
        """SIGKILL every process left in the groups."""
        for path in self.paths.values():
            _kill_members(path)

    def remove(self) -> None:
        self._removed = True
        for fd in self._counters.values():
            os.close(fd)
        self._counters.clear()
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                path.rmdir()
