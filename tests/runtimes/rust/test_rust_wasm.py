"""The Rust pipeline with ``--rust-target wasm``: seed 003's handler built for
wasm32-wasip2, started as its launch manifest says (the Wasmtime host) and
called over its unix socket.

CI installs the wasm32-wasip2 target when it can (.ci/run) but carries on
without it, so the build fixture asserts what this host allows: with the
target the app is built; without it the build must be refused with
FAILED_PRECONDITION, and the tests that need a running wasm pod are skipped
after that assertion.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.rust import RustPipeline
from ignite_server.domain.models import RuntimeKind, RuntimeTarget
from tests.runtimes.launch import (
    FUNCTION_ID,
    ORGANIZATION_ID,
    Pod,
    context_answer,
    drained_on_sigterm,
    launched,
)
from tests.runtimes.pipeline_fixtures import AppBuilder, artifact_fixture, pod_fixture
from tests.runtimes.rust.seed import FAILURES, SEED_FILES, STREAM, edited_seed, refused_for_wasm

#: The seed with failure paths and the Context features wasm apps keep.
#: No tokio: a wasm app has no async runtime (std::thread::sleep blocks the
#: one invocation the instance serves, which is fine there).
EDITED_FILES = edited_seed(
    FAILURES,
    """    if req.field::<bool>("pending").unwrap_or(false) {
        std::future::pending::<()>().await;
    }
    if let Ok(millis) = req.field::<u64>("sleep_ms") {
        std::thread::sleep(std::time::Duration::from_millis(millis));
    }
""",
    STREAM,
    """    if req.field::<bool>("details").unwrap_or(false) {
        ctx.temp_store().write("note.txt", "kept")?;
        let kept = String::from_utf8(ctx.temp_store().read("note.txt")?)?;
        println!("printed by the handler");
        eprintln!("logged by the handler");
        return Ok(json!({
            "kept": kept,
            "env": ctx.env().get("IGNITE_FUNCTION_ID"),
            "org": ctx.organization_id(),
            "method": req.method(),
            "path": req.path(),
            "q": req.query_param("q"),
            "header": req.header("X-Custom"),
        }));
    }
""",
)
#: A cold build compiles serde for wasm; a busy CI machine is slow.
pytestmark = pytest.mark.timeout(900)


def wasm_target_installed() -> bool:
    """Whether the toolchain has wasm32-wasip2, asked of rustup (what
    .ci/run installs with) rather than of the pipeline under test."""
    rustup = shutil.which("rustup")
    if rustup is None:
        return False
    listed = subprocess.run(
        [rustup, "target", "list", "--installed"], capture_output=True, text=True, check=False
    )
    return "wasm32-wasip2" in listed.stdout.split()


@pytest.fixture(scope="session")
async def builder(tmp_path_factory: pytest.TempPathFactory, build_space: BuildSpace) -> AppBuilder:
    """Seed 003 built for wasm with an empty cache, then the edited app."""
    made = AppBuilder.fresh(
        tmp_path_factory, build_space, RuntimeKind.RUST, RustPipeline, RuntimeTarget.WASM
    )
    if not wasm_target_installed():
        await refused_for_wasm(RustPipeline(build_space), made.workdir)
        pytest.skip("wasm32-wasip2 is not installed here; the refusal was checked instead")
    await made.artifact(SEED_FILES)
    await made.artifact(EDITED_FILES)
    return made


seed_artifact = artifact_fixture(SEED_FILES)
edited_artifact = artifact_fixture(EDITED_FILES)
edited_pod = pod_fixture(EDITED_FILES)


async def test_seed_handler_answers_from_wasm(builder: AppBuilder, seed_artifact: Path) -> None:
    manifest = json.loads((seed_artifact / "ignite-launch.json").read_text())
    assert manifest["argv"][-1] == "{code}/app.wasm"
    assert (seed_artifact / "app.cwasm").is_file(), "precompiled at build time"
    started = time.monotonic()
    async with launched(seed_artifact) as pod:
        ready_secs = time.monotonic() - started
        status, content_type, body = await pod.call(
            {"message": "hi there"}, execution_id="01JWASMSEED"
        )
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == context_answer("01JWASMSEED", message="hi there")
    print(
        f"wasm: cold build {builder.build_secs(SEED_FILES):.1f} s, rebuild "
        f"{builder.build_secs(EDITED_FILES):.1f} s, exec to healthy {ready_secs * 1000:.0f} ms"
    )


async def test_failures_are_500_and_the_pod_keeps_serving(edited_pod: Pod) -> None:
    status, content_type, body = await edited_pod.call({"fail": True})
    assert (status, content_type) == (500, "application/json")
    assert json.loads(body) == {"error": "deliberate failure"}

    # A panic aborts the wasm instance (no unwinding on wasm); the SDK's
    # panic hook has written the 500 before the trap.
    status, _, body = await edited_pod.call({"panic": True})
    assert status == 500
    assert "deliberate panic" in json.loads(body)["error"]

    # A future that waits for something only an async runtime would deliver
    # can never finish on wasm: an error, not a pod stuck forever.
    status, _, body = await edited_pod.call({"pending": True})
    assert status == 500
    assert "needs an async runtime" in json.loads(body)["error"]

    status, _, body = await edited_pod.call({"message": "still here"}, execution_id="01JNEXT")
    assert (status, json.loads(body)["message"]) == (200, "still here")
    assert json.loads(body)["execution_id"] == "01JNEXT"


async def test_request_and_context_on_wasm(edited_pod: Pod) -> None:
    async with edited_pod.session.put(
        "http://pod/some/path?q=a+b%21",
        data=b'{"details": true}',
        headers={"X-Custom": "yes", "X-Ignite-Execution-Id": "01JDETAILS"},
    ) as response:
        assert response.status == 200
        answer = await response.json()
    assert answer == {
        "kept": "kept",
        "env": FUNCTION_ID,
        "org": ORGANIZATION_ID,
        "method": "PUT",
        "path": "/some/path",
        "q": "a b!",
        "header": "yes",
    }
    # What the handler printed is logged with its execution id, and kept out
    # of the response. (Split on newlines only: str.splitlines also splits at
    # the records' 0x1E prefix.)
    output = edited_pod.stderr()
    for line in ("printed by the handler", "logged by the handler"):
        assert any(
            record.startswith("\x1e")
            and json.loads(record[1:])["message"] == line
            and json.loads(record[1:])["execution_id"] == "01JDETAILS"
            for record in output.split("\n")
        ), output


async def test_streamed_chunks_arrive_as_one_body(edited_pod: Pod) -> None:
    status, content_type, body = await edited_pod.call({"stream": True})
    assert (status, content_type) == (200, "application/x-ndjson")
    assert [json.loads(line) for line in body.decode().splitlines()] == [
        {"part": 0},
        {"part": 1},
        {"part": 2},
    ]


async def test_sigterm_drains_the_request_in_flight(edited_artifact: Path) -> None:
    (status, _, body), exit_code = await drained_on_sigterm(
        edited_artifact, {"sleep_ms": 800, "message": "drained"}
    )
    assert (status, json.loads(body)["message"], exit_code) == (200, "drained", 0)


async def test_without_the_precompiled_component_the_host_compiles(
    seed_artifact: Path, tmp_path: Path
) -> None:
    # A .cwasm from another Wasmtime version is refused by Wasmtime; garbage
    # stands in for one, and a missing file is the other fallback.
    for cwasm in (b"not a precompiled component", None):
        artifact = tmp_path / ("garbage" if cwasm else "missing")
        shutil.copytree(seed_artifact, artifact)
        if cwasm is None:
            (artifact / "app.cwasm").unlink()
        else:
            (artifact / "app.cwasm").write_bytes(cwasm)
        async with launched(artifact) as pod:
            status, _, body = await pod.call({"message": "compiled"})
        assert (status, json.loads(body)["message"]) == (200, "compiled")


async def test_missing_wasm_target_is_a_failed_precondition(
    tmp_path: Path, build_space: BuildSpace
) -> None:
    # A toolchain directory without the wasm32-wasip2 standard library, as on
    # a host where `rustup target add wasm32-wasip2` never ran.
    sysroot = tmp_path / "toolchain"
    (sysroot / "lib" / "rustlib" / "x86_64-unknown-linux-gnu").mkdir(parents=True)
    build, refused = await refused_for_wasm(RustPipeline(build_space, sysroot=sysroot), tmp_path)
    assert "rustup target add wasm32-wasip2" in refused.message
    assert not build.log, "nothing was built"
    assert not list((tmp_path / "out").iterdir())
