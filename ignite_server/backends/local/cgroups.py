"""Per-pod resource limits through cgroup v1 (memory, cpu, cpuacct, pids).

Each backend makes one directory named ``ignite-<id>`` under the server's
own cgroup in every controller it can write, and one child per pod below it.
A pod's process joins its cgroups before it execs (see ``join_script``), so
everything it forks is limited from its first instruction. The memory
controller's OOM killer kills only inside the pod's group and counts the kill
in ``memory.oom_control``, which is how an exit is recognised as
out-of-memory. Where the memory controller is not writable the backend falls
back to ``RLIMIT_DATA`` (not ``RLIMIT_AS``, which counts reserved address
space and breaks the Go and Deno runtimes).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
#: CFS scheduling period; quota = millicores/1000 of it. 100 ms is the
#: kernel's default and keeps throttling coarse enough to be cheap.
CFS_PERIOD_US = 100_000
#: Tasks (processes + threads) one pod may have: far above what a runtime
#: with a thread per in-flight request needs, far below what hurts the host.
PIDS_MAX = 1024


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
    """The backend's cgroup directories, one per usable controller."""

    def __init__(self) -> None:
        self.bases: dict[str, Path] = {}
        name = f"ignite-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for controller in CONTROLLERS:
            mount = CGROUP_ROOT / controller
            if not (mount / "cgroup.procs").exists():
                continue
            parent = mount / _own_path(controller).lstrip("/")
            _remove_stale(parent)
            try:
                (parent / name).mkdir()
            except OSError:
                continue
            self.bases[controller] = parent / name

    @property
    def has_memory(self) -> bool:
        return "memory" in self.bases

    @property
    def has_cpu(self) -> bool:
        return "cpu" in self.bases

    def pod(self, pod_id: str) -> PodCgroup:
        """Make the cgroups of one pod."""
        paths: dict[str, Path] = {}
        for controller, base in self.bases.items():
            path = base / pod_id
            try:
                path.mkdir()
            except OSError:
                continue  # that limit is missing for this pod; the rest hold
            paths[controller] = path
        group = PodCgroup(paths)
        group.write("pids", "pids.max", str(PIDS_MAX))
        return group

    def remove(self) -> None:
        """Remove the backend's directories (their pods must be gone)."""
        for base in self.bases.values():
            for child in base.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                base.rmdir()


def _remove_stale(parent: Path) -> None:
    """Remove the empty groups of backends whose server process is gone
    (a crash leaves them behind); a live server's groups are left alone."""
    try:
        stale = [p for p in parent.glob("ignite-*-*") if p.is_dir()]
    except OSError:
        return
    for base in stale:
        pid = base.name.split("-")[1]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for child in base.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()


@dataclass
class PodCgroup:
    """The cgroups of one pod (an empty mapping where none could be made)."""

    paths: dict[str, Path]

    def write(self, controller: str, knob: str, value: str) -> bool:
        path = self.paths.get(controller)
        if path is None:
            return False
        try:
            (path / knob).write_text(value)
        except OSError:
            return False
        return True

    def _read(self, controller: str, knob: str) -> str:
        path = self.paths.get(controller)
        if path is None:
            return ""
        try:
            return (path / knob).read_text()
        except OSError:
            return ""

    def limit(self, memory_mb: int, cpu_millicores: int) -> None:
        """Apply (or change) the pod's memory and CPU limits."""
        limit = str(memory_mb * 1024 * 1024)
        self.write("memory", "memory.limit_in_bytes", limit)
        # Without swap accounting memsw may be absent; with it, capping it
        # too stops a pod from escaping its limit into swap.
        self.write("memory", "memory.memsw.limit_in_bytes", limit)
        self.write("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US))
        quota = max(1000, cpu_millicores * CFS_PERIOD_US // 1000)
        self.write("cpu", "cpu.cfs_quota_us", str(quota))

    def join_script(self) -> str:
        """Shell commands that move the current shell into the pod's groups."""
        return "".join(
            f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))}; " for path in self.paths.values()
        )

    def oom_kills(self) -> int:
        """How many times the kernel's OOM killer struck inside the pod."""
        for line in self._read("memory", "memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def cpu_ms(self) -> int:
        value = self._read("cpuacct", "cpuacct.usage").strip()
        return int(value) // 1_000_000 if value else 0

    def memory_mb(self) -> tuple[int, int]:
        """(current, peak) memory use in MiB."""
        current = self._read("memory", "memory.usage_in_bytes").strip()
        peak = self._read("memory", "memory.max_usage_in_bytes").strip()
        mib = 1024 * 1024
        return (int(current or 0) // mib, int(peak or 0) // mib)

    def kill_all(self) -> None:
        """SIGKILL every process left in the pod's groups."""
        for controller in self.paths:
            for pid in self._read(controller, "cgroup.procs").split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        for path in self.paths.values():
            with contextlib.suppress(OSError):
                path.rmdir()
