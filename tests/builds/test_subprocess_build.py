"""Build steps: streamed output, the deadline, the memory cgroup, the sandbox."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ignite_server.builds.subprocess_build import Deadline, failure_reason, run_step
from ignite_server.containment.sandbox import Policy
from ignite_server.ports.build_pipeline import BuildFailed
from tests.support import require_memory_cgroup, require_tool

ENV = {"PATH": "/usr/bin:/bin"}
#: An unprivileged uid for the sandboxed step (below any block's range).
STEP_UID = 60_123
#: A host file no sandboxed step was given.
THIS_FILE = Path(__file__).resolve()


async def test_output_is_streamed_and_consumed_lines_are_not_logged(tmp_path: Path) -> None:
    logged: list[str] = []
    consumed: list[str] = []

    def take_json(line: str) -> bool:
        if line.startswith("{"):
            consumed.append(line)
            return True
        return False

    result = await run_step(
        ["/bin/sh", "-c", 'echo one; echo \'{"k": 1}\'; echo "error: two" >&2; exit 3'],
        cwd=tmp_path,
        env=ENV,
        log=logged.append,
        deadline=Deadline(30),
        on_line=take_json,
    )
    assert result.returncode == 3
    assert logged == ["one", "error: two"]
    assert consumed == ['{"k": 1}']
    assert failure_reason("compile", result) == "compile failed: error: two"


async def test_a_step_past_the_deadline_is_killed(tmp_path: Path) -> None:
    logged: list[str] = []
    started = time.monotonic()
    with pytest.raises(BuildFailed, match="did not finish within 1 s"):
        await run_step(
            ["/bin/sh", "-c", "sleep 30 & sleep 30"],
            cwd=tmp_path,
            env=ENV,
            log=logged.append,
            deadline=Deadline(1),
        )
    assert time.monotonic() - started < 10


async def test_a_step_over_its_memory_limit_is_reported(tmp_path: Path) -> None:
    require_memory_cgroup()
    logged: list[str] = []
    hog = "x = bytearray(400 * 1024 * 1024); print(len(x))"
    result = await run_step(
        ["python3", "-c", hog],
        cwd=tmp_path,
        env=ENV,
        log=logged.append,
        deadline=Deadline(60),
        memory_mb=100,
    )
    assert result.returncode != 0
    assert result.out_of_memory
    assert failure_reason("build", result, 100) == "build ran out of memory (limit 100 MB)"


async def test_a_sandboxed_step_sees_only_what_it_is_given(tmp_path: Path) -> None:
    require_tool("bwrap", "tools/sandbox.sh")
    visible = tmp_path / "visible"
    visible.mkdir()
    if os.geteuid() == 0:
        os.chown(visible, STEP_UID, STEP_UID)
    logged: list[str] = []
    result = await run_step(
        [
            "/bin/sh",
            "-c",
            f"touch written; id -u; test -e {THIS_FILE} && echo leaked || echo hidden",
        ],
        cwd=Path("/"),
        env=ENV,
        log=logged.append,
        deadline=Deadline(30),
        policy=Policy(uid=STEP_UID, tmp_mb=8, rw_binds=[(visible, "/visible")], cwd="/visible"),
    )
    assert result.returncode == 0
    uid, seen = logged
    assert seen == "hidden"
    assert (visible / "written").exists()
    if os.geteuid() == 0:
        # A root server's build steps run as the uid they are given, never root.
        assert int(uid) == STEP_UID
        assert (visible / "written").stat().st_uid == STEP_UID


async def test_a_data_step_hands_stdout_over_and_logs_only_stderr(tmp_path: Path) -> None:
    logged: list[str] = []
    data = bytearray()
    result = await run_step(
        ["/bin/sh", "-c", "head -c 300000 /dev/zero; echo note >&2"],
        cwd=tmp_path,
        env=ENV,
        log=logged.append,
        deadline=Deadline(30),
        stdout=data.extend,
    )
    assert result.returncode == 0
    assert bytes(data) == bytes(300_000)
    assert logged == ["note"]
