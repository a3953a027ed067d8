"""Pre-started pools of the compiled runtimes, in real sandboxed pods: a Go
or Rust pod is the exec launcher started before the request, which becomes
the app's binary in the same process; a Deno pod is a Deno started before the
request, which imports the app; either kind serves one app only, and an app
that cannot start fails the start with its own error."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ignite_server.backends.local import LocalBackend
from ignite_server.backends.local.pod import LocalPod
from ignite_server.backends.local.pod_client import http_once
from ignite_server.backends.local.pool import PoolStats
from ignite_server.builds.deno import DenoPipeline
from ignite_server.builds.go import GoPipeline
from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.rust import RustPipeline
from ignite_server.domain.models import Resources, RuntimeKind
from ignite_server.ports.pod_backend import ExitReason, PodSpec, PodStartError
from ignite_server.ports.pod_protocol import LOAD_PATH, load_request
from tests.runtimes.pipeline_fixtures import AppBuilder

ROOT = Path(__file__).resolve().parents[3]
GO_HELLO = ROOT / "runtimes" / "go" / "examples" / "hello"
RUST_HELLO = ROOT / "runtimes" / "rust" / "examples" / "hello"
DENO_HELLO = ROOT / "runtimes" / "deno" / "examples" / "hello"
#: A Go app that cannot start: it says why on stderr and exits.
GO_FAILING_MAIN = """package main

import (
	"fmt"
	"os"

	"ignite"
)

func main() {
	fmt.Fprintln(os.Stderr, "config error: GREETING_TEMPLATE is not set")
	os.Exit(3)
	ignite.Start(func(payload []byte, ctx *ignite.Context) ([]byte, error) { return payload, nil })
}
"""
#: How long the pools may take to pre-start a pod after a start.
REFILL_SECS = 30.0


def _files(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): p.read_text()
        for p in directory.rglob("*")
        if p.is_file()
    }


def _spec(artifact: Path, app: str) -> PodSpec:
    return PodSpec(
        app_id=f"acme-corp/{app}",
        version=1,
        artifact_dir=artifact,
        env={"GREETING": app},
        resources=Resources(memory_mb=256, cpu_millicores=1000, timeout_secs=10),
        max_concurrency=2,
    )


async def _greet(pod: LocalPod) -> dict[str, str]:
    async with (
        aiohttp.ClientSession(connector=pod.connector()) as session,
        session.post(pod.base_url + "/", data=b'{"name": "Ada"}') as response,
    ):
        assert response.status == 200
        answer: dict[str, str] = json.loads(await response.read())
        return answer


def _processes(pod_id: str) -> dict[int, tuple[str, int]]:
    """Host pid → (name, uid) of the pod's own processes (not bubblewrap's)."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if f"/{pod_id}\n" not in (proc / "cgroup").read_text():
                continue
            name = (proc / "comm").read_text().strip()
            uid = int((proc / "status").read_text().split("\nUid:")[1].split()[0])
        except (OSError, IndexError):
            continue
        if name != "bwrap":
            found[int(proc.name)] = (name, uid)
    return found


async def _idle(backend: LocalBackend, pool: str) -> str:
    """The id of a pre-started pod waiting in ``pool`` (waits for the refill)."""
    async with asyncio.timeout(REFILL_SECS):
        while True:
            stats = _stats(backend, pool)
            if stats is not None and stats.idle:
                return stats.idle[0]
            await asyncio.sleep(0.05)


def _stats(backend: LocalBackend, pool: str) -> PoolStats | None:
    return next((s for s in backend.pool_stats() if s.name.startswith(f"{pool}/")), None)


@pytest.fixture(scope="module")
def exec_launcher() -> Path:
    """The launcher, built as `make run` and `make test` build it."""
    subprocess.run(["make", "-s", "exec-launcher"], cwd=ROOT, check=True)
    return ROOT / "build" / "runtimes" / "exec" / "ignite-exec"


@pytest.fixture(scope="module")
async def backend(
    tmp_path_factory: pytest.TempPathFactory, exec_launcher: Path
) -> AsyncIterator[LocalBackend]:
    local = LocalBackend(
        tmp_path_factory.mktemp("pool-state"),
        sandbox="required",
        pool_size=1,
        exec_launcher_path=exec_launcher,
    )
    yield local
    await local.close()


@pytest.fixture(scope="module")
async def go_builder(
    tmp_path_factory: pytest.TempPathFactory, build_space: BuildSpace
) -> AppBuilder:
    return AppBuilder.fresh(tmp_path_factory, build_space, RuntimeKind.GO, GoPipeline)


@pytest.fixture(scope="module")
async def go_hello(go_builder: AppBuilder) -> Path:
    return await go_builder.artifact(_files(GO_HELLO))


@pytest.fixture(scope="module")
async def deno_builder(
    tmp_path_factory: pytest.TempPathFactory, build_space: BuildSpace
) -> AppBuilder:
    return AppBuilder.fresh(tmp_path_factory, build_space, RuntimeKind.DENO, DenoPipeline)


@pytest.fixture(scope="module")
async def deno_hello(deno_builder: AppBuilder) -> Path:
    return await deno_builder.artifact(_files(DENO_HELLO))


@pytest.fixture(scope="module")
async def rust_hello(tmp_path_factory: pytest.TempPathFactory, build_space: BuildSpace) -> Path:
    builder = AppBuilder.fresh(tmp_path_factory, build_space, RuntimeKind.RUST, RustPipeline)
    return await builder.artifact(_files(RUST_HELLO))


@pytest.fixture(scope="module")
async def hello(go_hello: Path, deno_hello: Path) -> dict[str, Path]:
    """The greeting examples by their pool."""
    return {"exec": go_hello, "deno": deno_hello}


@pytest.mark.parametrize(
    ("example", "pool", "runtime_name"),
    [("go", "exec", "ignite-exec"), ("rust", "exec", "ignite-exec"), ("deno", "deno", "deno")],
)
async def test_a_pod_is_the_process_prestarted_before_the_request(
    backend: LocalBackend,
    hello: dict[str, Path],
    rust_hello: Path,
    example: str,
    pool: str,
    runtime_name: str,
) -> None:
    built = rust_hello if example == "rust" else hello[pool]
    # The first start makes the pool; its refill pre-starts the next pod.
    first = await backend.start(_spec(built, f"{example}-first"))
    await first.stop(1)
    waiting = await _idle(backend, pool)
    before = _processes(waiting)
    assert [name for name, _ in before.values()] == [runtime_name]
    hits = _stats(backend, pool).warm_hits  # type: ignore[union-attr]

    pod = await backend.start(_spec(built, f"{example}-second"))
    try:
        assert pod.id == waiting
        assert _stats(backend, pool).warm_hits == hits + 1  # type: ignore[union-attr]
        answer = await _greet(pod)
        assert answer["function_id"] == f"acme-corp/{example}-second"
        # The same process, as the same unprivileged uid: a Go pod's launcher
        # has become the app's binary.
        after = _processes(pod.id)
        assert after.keys() == before.keys()
        assert [uid for _, uid in after.values()] == [uid for _, uid in before.values()]
        assert all(uid != 0 for _, uid in after.values())
        if pool == "exec":
            assert [name for name, _ in after.values()] == ["app"]
    finally:
        await pod.stop(1)
    assert pod.exit is not None and pod.exit.reason == ExitReason.STOPPED


@pytest.mark.parametrize("pool", ["exec", "deno"])
async def test_a_pooled_pod_serves_one_app_only(
    backend: LocalBackend, hello: dict[str, Path], pool: str
) -> None:
    built = hello[pool]
    one = await backend.start(_spec(built, "one"))
    two = await backend.start(_spec(built, "two"))
    try:
        assert one.id != two.id
        assert (await _greet(one))["function_id"] == "acme-corp/one"
        assert (await _greet(two))["function_id"] == "acme-corp/two"
        # A specialized pod refuses to be given another app.
        status, _ = await http_once(
            one.socket_path, "POST", LOAD_PATH, load_request(_spec(built, "two"), "/code")
        )
        assert status == 409
        assert (await _greet(one))["function_id"] == "acme-corp/one"
    finally:
        await one.stop(1)
        await two.stop(1)
    # Pods that served an app never go back to a pool.
    idle = {pod for stats in backend.pool_stats() for pod in stats.idle}
    assert not {one.id, two.id} & idle


async def test_a_go_binary_that_fails_at_start_fails_the_start_with_its_error(
    backend: LocalBackend, go_builder: AppBuilder, go_hello: Path, tmp_path: Path
) -> None:
    failing = await go_builder.build(
        tmp_path / "failing", {**_files(GO_HELLO), "main.go": GO_FAILING_MAIN}
    )
    with pytest.raises(PodStartError) as failed:
        await backend.start(_spec(failing, "failing"))
    assert "exited with status 3" in failed.value.message
    assert "config error: GREETING_TEMPLATE is not set" in failed.value.message

    # A file that is no program at all.
    garbage = tmp_path / "garbage"
    shutil.copytree(go_hello, garbage)
    (garbage / "app").write_text("this is not an executable\n")
    with pytest.raises(PodStartError, match="exec format error"):
        await backend.start(_spec(garbage, "garbage"))


async def test_a_deno_module_that_fails_to_load_fails_the_start_with_its_error(
    backend: LocalBackend, deno_builder: AppBuilder, tmp_path: Path
) -> None:
    throwing = await deno_builder.build(
        tmp_path / "throwing",
        {**_files(DENO_HELLO), "main.ts": 'throw new Error("DATABASE_URL is not set");\n'},
    )
    with pytest.raises(PodStartError, match="DATABASE_URL is not set"):
        await backend.start(_spec(throwing, "throwing"))

    silent = await deno_builder.build(
        tmp_path / "silent", {**_files(DENO_HELLO), "main.ts": "export const x = 1;\n"}
    )
    with pytest.raises(PodStartError, match=r"did not call start\(handle\)"):
        await backend.start(_spec(silent, "silent"))


async def test_without_the_launcher_go_pods_start_directly(tmp_path: Path, go_hello: Path) -> None:
    local = LocalBackend(tmp_path / "state", sandbox="required", exec_launcher_path=None)
    try:
        pod = await local.start(_spec(go_hello, "direct"))
        assert (await _greet(pod))["function_id"] == "acme-corp/direct"
        assert local.pool_stats() == []
    finally:
        await local.close()


async def test_pods_start_under_a_state_folder_deeper_than_a_socket_address(
    tmp_path: Path, go_hello: Path
) -> None:
    # A pod's socket path past 108 bytes cannot be connected to by name; the
    # backend reaches it through a descriptor of its folder.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    local = LocalBackend(deep, sandbox="required")
    try:
        pod = await local.start(_spec(go_hello, "deep"))
        assert len(str(pod.socket_path)) > 108
        assert (await _greet(pod))["function_id"] == "acme-corp/deep"
    finally:
        await local.close()
