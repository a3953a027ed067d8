"""The Kubernetes test bed (tools/testbed) from Python: bring it up, read
what it exported, tear it down. For the smoke test here and for the suites
that will run against a real cluster; the bed is one per machine (fixed
bridge and ports), so use one per test session, never one per worker."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "testbed"


@dataclass
class RunningBed:
    """A running bed: the values of its env file ($TESTBED_DIR/testbed.env)
    and how long bring-up took."""

    env: dict[str, str]
    up_secs: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> str:
        return self.env["KUBECONFIG"]

    @property
    def node(self) -> str:
        return self.env["TESTBED_NODE"]

    @property
    def busybox_image(self) -> str:
        return self.env["TESTBED_BUSYBOX_IMAGE"]

    @property
    def pod_cidr(self) -> str:
        return self.env["TESTBED_POD_CIDR"]


async def run_script(name: str, env: dict[str, str], limit: float, check: bool = True) -> str:
    """Run a tools/testbed script; fail with its output if it fails."""
    proc = await asyncio.create_subprocess_exec(
        str(TOOLS / name),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    assert proc.returncode == 0 or not check, f"{name} exited {proc.returncode}:\n{text[-4000:]}"
    return text


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            values[key] = value
    return values


def script_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TESTBED_DIR", "/tmp/ignite-testbed")
    return env


@asynccontextmanager
async def bring_up_testbed(build_limit: float = 2400) -> AsyncIterator[RunningBed]:
    """Packages and builds (seconds when cached, ~15+ minutes on a new
    machine), bring-up, and tear-down on the way out whatever happened."""
    env = script_env()
    await run_script("packages.sh", env, 600)
    await run_script("build.sh", env, build_limit)
    started = time.monotonic()
    await run_script("up.sh", env, 300)
    try:
        bed = RunningBed(
            read_env_file(Path(env["TESTBED_DIR"]) / "testbed.env"), time.monotonic() - started
        )
        yield bed
    finally:
        started = time.monotonic()
        await run_script("down.sh", env, 120)
        down_secs = time.monotonic() - started
    bed.timings["down"] = down_secs


async def leftovers() -> str:
    """What a torn-down bed left on the machine; empty when nothing."""
    return (await run_script("leftovers.sh", script_env(), 30, check=False)).strip()
