"""The Rust pipeline on seed 003's handler: a cold build, a rebuild with the
same dependencies, and the built pods called over their unix sockets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.rust import RustPipeline
from ignite_server.domain.models import RuntimeKind
from tests.runtimes.launch import (
    FUNCTION_ID,
    Pod,
    context_answer,
    drained_on_sigterm,
    error_and_recovery,
    launched,
)
from tests.runtimes.pipeline_fixtures import AppBuilder, builder_fixture, pod_fixture
from tests.runtimes.rust.seed import (
    CARGO_TOML,
    FAILURES,
    SEED_FILES,
    SEED_LIB_RS,
    STREAM,
    edited_seed,
    refused_for_wasm,
)

#: The same app after an edit that adds failure paths: the "rebuild with
#: unchanged dependencies".
EDITED_FILES = edited_seed(
    FAILURES,
    """    if let Ok(millis) = req.field::<u64>("sleep_ms") {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
""",
    STREAM,
    """    if req.field::<bool>("scratch").unwrap_or(false) {
        ctx.temp_store().write("note.txt", "kept")?;
        let kept = String::from_utf8(ctx.temp_store().read("note.txt")?)?;
        return Ok(json!({ "kept": kept, "function": ctx.env().get("IGNITE_FUNCTION_ID") }));
    }
""",
)
#: A cold build compiles tokio, hyper and serde; on a small, busy CI machine
#: that alone can take minutes.
pytestmark = pytest.mark.timeout(900)

#: The issue's bar for a rebuild with unchanged dependencies.
REBUILD_SPEEDUP = 5

#: Seed 003 built with an empty cache, then the edited app rebuilt; both
#: timed. Once per test session (per xdist worker).
builder = builder_fixture(RuntimeKind.RUST, RustPipeline, first=(SEED_FILES, EDITED_FILES))
seed_pod = pod_fixture(SEED_FILES)
edited_pod = pod_fixture(EDITED_FILES)


async def test_seed_handler_answers_with_the_message(seed_pod: Pod) -> None:
    status, content_type, body = await seed_pod.call(
        {"message": "hi there"}, execution_id="01JRUSTSEED"
    )
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == context_answer("01JRUSTSEED", message="hi there")


async def test_seed_handler_default_message(seed_pod: Pod) -> None:
    status, _, body = await seed_pod.call(b"")
    assert status == 200
    assert json.loads(body)["message"] == "Hello from Rust!"


async def test_panic_is_500_and_the_next_request_succeeds(edited_pod: Pod) -> None:
    error, answer = await error_and_recovery(edited_pod, {"panic": True}, {"message": "still here"})
    assert "deliberate panic" in error
    assert answer["message"] == "still here"
    assert "deliberate panic" in edited_pod.stderr()


async def test_err_is_500_with_its_message(edited_pod: Pod) -> None:
    status, _, body = await edited_pod.call({"fail": True})
    assert status == 500
    assert json.loads(body) == {"error": "deliberate failure"}


async def test_streamed_response_arrives_in_order(edited_pod: Pod) -> None:
    status, content_type, body = await edited_pod.call({"stream": True})
    assert (status, content_type) == (200, "application/x-ndjson")
    assert [json.loads(line) for line in body.splitlines()] == [{"part": i} for i in range(3)]


async def test_temp_store_and_env(edited_pod: Pod) -> None:
    status, _, body = await edited_pod.call({"scratch": True})
    assert status == 200
    assert json.loads(body) == {"kept": "kept", "function": FUNCTION_ID}


async def test_sigterm_lets_the_request_in_flight_finish(builder: AppBuilder) -> None:
    (status, _, body), exit_code = await drained_on_sigterm(
        await builder.artifact(EDITED_FILES), {"sleep_ms": 700, "message": "done"}
    )
    assert (status, json.loads(body)["message"], exit_code) == (200, "done", 0)


async def test_rebuild_with_unchanged_dependencies_is_5x_faster(
    builder: AppBuilder, record_property: Callable[[str, object], None]
) -> None:
    cold_secs, rebuild_secs = builder.build_secs(SEED_FILES), builder.build_secs(EDITED_FILES)
    record_property("rust_cold_build_secs", round(cold_secs, 2))
    record_property("rust_rebuild_secs", round(rebuild_secs, 2))
    speedup = cold_secs / rebuild_secs
    assert speedup >= REBUILD_SPEEDUP, f"cold build {cold_secs:.1f} s, rebuild {rebuild_secs:.1f} s"


async def test_compile_error_fails_with_the_compilers_message(
    builder: AppBuilder, tmp_path: Path
) -> None:
    broken = SEED_LIB_RS.replace(
        "let message: String = req",
        'let count: u32 = "not a number";\n    let message: String = req',
    )
    build, failed = await builder.failure(
        tmp_path, {"Cargo.toml": CARGO_TOML, "src/lib.rs": broken}
    )
    assert "error[E0308]: mismatched types" in build.log_text
    assert "src/lib.rs" in build.log_text
    assert "E0308" in failed.message
    assert not (tmp_path / "out" / "ignite-launch.json").exists()


async def test_sync_handler_in_main_rs_with_workspace_dependency(
    builder: AppBuilder, tmp_path: Path
) -> None:
    main_rs = """use ignite::prelude::*;

#[ignite::main]
fn handler(req: Request, ctx: Context) -> Result<impl IntoResponse> {
    if req.query_param("panic").is_some() {
        panic!("sync panic");
    }
    Ok(json!({ "method": req.method(), "path": req.path(), "org": ctx.organization_id() }))
}
"""
    cargo_toml = CARGO_TOML.replace('ignite = "*"', "ignite = { workspace = true }")
    artifact = await builder.build(tmp_path, {"Cargo.toml": cargo_toml, "src/main.rs": main_rs})
    async with launched(artifact) as pod:
        status, _, body = await pod.call(b"{}")
        assert (status, json.loads(body)) == (
            200,
            {"method": "POST", "path": "/", "org": "acme-corp"},
        )
        async with pod.session.get("http://pod/x?panic=1") as response:
            assert response.status == 500
            assert "sync panic" in (await response.json())["error"]
        status, _, _ = await pod.call(b"{}")
        assert status == 200


async def test_wasm_target_without_wasmtime_is_a_failed_precondition(
    tmp_path: Path, build_space: BuildSpace
) -> None:
    pipeline = RustPipeline(build_space, wasmtime="wasmtime-not-installed")
    _, refused = await refused_for_wasm(pipeline, tmp_path)
    assert "wasm32-wasip2" in refused.message


async def test_a_lone_lib_rs_gets_a_package_around_it(builder: AppBuilder, tmp_path: Path) -> None:
    artifact = await builder.build(tmp_path, {"src/lib.rs": SEED_LIB_RS})
    async with launched(artifact) as pod:
        status, _, body = await pod.call({"message": "alone"})
    assert (status, json.loads(body)["message"]) == (200, "alone")
