"""Cgroup limits: applied in the order the kernel accepts, checked, and
removed with what is left inside."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ignite_server.containment.cgroups import MIB, CgroupRoot, LimitNotApplied
from tests.support import require_memory_cgroup


@pytest.fixture(autouse=True)
def _memory_cgroup() -> None:
    require_memory_cgroup()


def test_limits_go_up_and_down_in_the_order_the_kernel_accepts() -> None:
    root = CgroupRoot("test")
    try:
        group = root.group("g")
        memsw = group.paths["memory"] / "memory.memsw.limit_in_bytes"
        for mb in (256, 2048, 512, 4096, 64):
            group.limit(mb, 500)
            assert group.read("memory", "memory.limit_in_bytes").strip() == str(mb * MIB)
            if memsw.exists():
                assert memsw.read_text().strip() == str(mb * MIB)
        assert group.read("cpu", "cpu.cfs_quota_us").strip() == "50000"
    finally:
        root.remove()


def test_a_limit_the_kernel_refuses_is_an_error() -> None:
    root = CgroupRoot("test")
    try:
        group = root.group("g")
        # A process using 40 MiB: a 4 MiB limit cannot be applied to it.
        hog = subprocess.Popen(
            [
                "/bin/sh", "-c",
                f"echo $$ > {group.procs_file()}; exec python3 -c "
                "'import time; x = bytearray(40 << 20); x[::4096] = b\"x\" * len(x[::4096]); "
                "time.sleep(30)'",
            ]
        )  # fmt: skip
        try:
            deadline = 50
            while int(group.read("memory", "memory.usage_in_bytes") or 0) < 30 * MIB:
                deadline -= 1
                assert deadline, "the process never filled its memory"
                subprocess.run(["sleep", "0.1"], check=True)
            with pytest.raises(LimitNotApplied):
                group.limit_memory(4)
        finally:
            hog.kill()
            hog.wait()
    finally:
        root.remove()


def test_groups_of_a_dead_server_are_removed_with_their_processes(tmp_path: Path) -> None:
    parent_of = CgroupRoot("test").bases
    stale_names = []
    sleepers = []
    for controller, base in parent_of.items():
        # A group named as a server with a pid that no longer runs made it.
        stale = base.parent / "ignite-test-999999999-dead"
        (stale / "pod").mkdir(parents=True)
        stale_names.append(stale)
        if controller == "pids":
            sleeper = subprocess.Popen(
                ["/bin/sh", "-c", f"echo $$ > {stale / 'pod' / 'cgroup.procs'}; exec sleep 60"]
            )
            sleepers.append(sleeper)
        base.rmdir()
    subprocess.run(["sleep", "0.2"], check=True)
    fresh = CgroupRoot("test")
    try:
        for stale in stale_names:
            assert not stale.exists()
        for sleeper in sleepers:
            assert sleeper.wait(timeout=5) == -9
    finally:
        fresh.remove()
