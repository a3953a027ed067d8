"""The Rust pipeline on seed 003's handler: a cold build, a rebuild with the
same dependencies, and the built pods called over their unix sockets."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from ignite_server.builds.rust import RustPipeline
from ignite_server.domain.errors import FailedPrecondition
from ignite_server.domain.models import RuntimeKind, RuntimeTarget
from ignite_server.ports.build_pipeline import BuildFailed
from tests.runtimes.launch import (
    FUNCTION_ID,
    Pod,
    build_request,
    drained_on_sigterm,
    launched,
    write_tree,
)
from tests.runtimes.rust.seed import CARGO_TOML, SEED_LIB_RS

#: The same app after an edit that adds failure paths: the "rebuild with
#: unchanged dependencies".
EDITED_LIB_RS = SEED_LIB_RS.replace(
    "    let message: String = req\n",
    """    if req.field::<bool>("panic").unwrap_or(false) {
        panic!("deliberate panic");
    }
    if req.field::<bool>("fail").unwrap_or(false) {
        return Err(Error::msg("deliberate failure"));
    }
    if let Ok(millis) = req.field::<u64>("sleep_ms") {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
    }
    if req.field::<bool>("stream").unwrap_or(false) {
        ctx.stream().set_content_type("application/x-ndjson");
        for part in 0..3 {
            ctx.stream().send_json(&json!({ "part": part })).await?;
        }
        return Ok(json!(null));
    }
    if req.field::<bool>("scratch").unwrap_or(false) {
        ctx.temp_store().write("note.txt", "kept")?;
        let kept = String::from_utf8(ctx.temp_store().read("note.txt")?)?;
        return Ok(json!({ "kept": kept, "function": ctx.env().get("IGNITE_FUNCTION_ID") }));
    }
    let message: String = req
""",
)
#: A cold build compiles tokio, hyper and serde; on a small, busy CI machine
#: that alone can take minutes.
pytestmark = pytest.mark.timeout(900)

#: The issue's bar for a rebuild with unchanged dependencies.
REBUILD_SPEEDUP = 5


@dataclass
class RustBuilds:
    seed: Path
    edited: Path
    cold_secs: float
    rebuild_secs: float
    cache: Path


@pytest.fixture(scope="session")
async def rust_builds(tmp_path_factory: pytest.TempPathFactory) -> RustBuilds:
    """Seed 003 built with an empty cache, then the edited app rebuilt; both
    timed. One per test session (per xdist worker)."""
    root = tmp_path_factory.mktemp("rust")
    cache = root / "cache"
    source = write_tree(root / "src", {"Cargo.toml": CARGO_TOML, "src/lib.rs": SEED_LIB_RS})
    pipeline = RustPipeline()

    cold = build_request(RuntimeKind.RUST, source, root / "seed", cache)
    started = time.monotonic()
    await pipeline.build(cold.request)
    cold_secs = time.monotonic() - started

    (source / "src" / "lib.rs").write_text(EDITED_LIB_RS)
    rebuild = build_request(RuntimeKind.RUST, source, root / "edited", cache)
    started = time.monotonic()
    await pipeline.build(rebuild.request)
    rebuild_secs = time.monotonic() - started
    return RustBuilds(root / "seed", root / "edited", cold_secs, rebuild_secs, cache)


@pytest.fixture(scope="session")
async def seed_pod(rust_builds: RustBuilds) -> AsyncIterator[Pod]:
    async with launched(rust_builds.seed) as pod:
        yield pod


@pytest.fixture(scope="session")
async def edited_pod(rust_builds: RustBuilds) -> AsyncIterator[Pod]:
    async with launched(rust_builds.edited) as pod:
        yield pod


async def test_seed_handler_answers_with_the_message(seed_pod: Pod) -> None:
    status, content_type, body = await seed_pod.call(
        {"message": "hi there"}, execution_id="01JRUSTSEED"
    )
    assert status == 200
    assert content_type == "application/json"
    assert json.loads(body) == {
        "message": "hi there",
        "execution_id": "01JRUSTSEED",
        "function_id": FUNCTION_ID,
    }


async def test_seed_handler_default_message(seed_pod: Pod) -> None:
    status, _, body = await seed_pod.call(b"")
    assert status == 200
    assert json.loads(body)["message"] == "Hello from Rust!"


async def test_panic_is_500_and_the_next_request_succeeds(edited_pod: Pod) -> None:
    status, content_type, body = await edited_pod.call({"panic": True})
    assert status == 500
    assert content_type == "application/json"
    assert "deliberate panic" in json.loads(body)["error"]

    status, _, body = await edited_pod.call({"message": "still here"})
    assert status == 200
    assert json.loads(body)["message"] == "still here"
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


async def test_sigterm_lets_the_request_in_flight_finish(rust_builds: RustBuilds) -> None:
    async with launched(rust_builds.edited) as pod:
        (status, _, body), exit_code = await drained_on_sigterm(
            pod, {"sleep_ms": 700, "message": "done"}
        )
    assert (status, json.loads(body)["message"], exit_code) == (200, "done", 0)


async def test_rebuild_with_unchanged_dependencies_is_5x_faster(
    rust_builds: RustBuilds, record_property: Callable[[str, object], None]
) -> None:
    record_property("rust_cold_build_secs", round(rust_builds.cold_secs, 2))
    record_property("rust_rebuild_secs", round(rust_builds.rebuild_secs, 2))
    speedup = rust_builds.cold_secs / rust_builds.rebuild_secs
    assert speedup >= REBUILD_SPEEDUP, (
        f"cold build {rust_builds.cold_secs:.1f} s, rebuild {rust_builds.rebuild_secs:.1f} s"
    )


async def test_compile_error_fails_with_the_compilers_message(
    rust_builds: RustBuilds, tmp_path: Path
) -> None:
    broken = SEED_LIB_RS.replace(
        "let message: String = req",
        'let count: u32 = "not a number";\n    let message: String = req',
    )
    source = write_tree(tmp_path / "src", {"Cargo.toml": CARGO_TOML, "src/lib.rs": broken})
    build = build_request(RuntimeKind.RUST, source, tmp_path / "out", rust_builds.cache)
    with pytest.raises(BuildFailed) as failed:
        await RustPipeline().build(build.request)
    assert "error[E0308]: mismatched types" in build.log_text
    assert "src/lib.rs" in build.log_text
    assert "E0308" in failed.value.message
    assert not (tmp_path / "out" / "ignite-launch.json").exists()


async def test_sync_handler_in_main_rs_with_workspace_dependency(
    rust_builds: RustBuilds, tmp_path: Path
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
    source = write_tree(tmp_path / "src", {"Cargo.toml": cargo_toml, "src/main.rs": main_rs})
    build = build_request(RuntimeKind.RUST, source, tmp_path / "out", rust_builds.cache)
    await RustPipeline().build(build.request)
    async with launched(tmp_path / "out") as pod:
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


async def test_wasm_target_without_wasmtime_is_a_failed_precondition(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"Cargo.toml": CARGO_TOML, "src/lib.rs": SEED_LIB_RS})
    build = build_request(
        RuntimeKind.RUST, source, tmp_path / "out", tmp_path / "cache", target=RuntimeTarget.WASM
    )
    with pytest.raises(FailedPrecondition) as refused:
        await RustPipeline(wasmtime="wasmtime-not-installed").build(build.request)
    assert refused.value.reason == "WASM_TARGET_UNAVAILABLE"
    assert "wasm32-wasip2" in refused.value.message


async def test_a_lone_lib_rs_gets_a_package_around_it(
    rust_builds: RustBuilds, tmp_path: Path
) -> None:
    source = write_tree(tmp_path / "src", {"src/lib.rs": SEED_LIB_RS})
    build = build_request(RuntimeKind.RUST, source, tmp_path / "out", rust_builds.cache)
    await RustPipeline().build(build.request)
    async with launched(tmp_path / "out") as pod:
        status, _, body = await pod.call({"message": "alone"})
    assert (status, json.loads(body)["message"]) == (200, "alone")
