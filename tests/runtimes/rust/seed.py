"""Seed 003's app as shipped in runtimes/rust/examples/hello, shared by the
native and the wasm tests, and the branches both add to it for their edited
app (a rebuild with unchanged dependencies)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ignite_server.domain.errors import FailedPrecondition
from ignite_server.domain.models import RuntimeKind, RuntimeTarget
from ignite_server.ports.build_pipeline import BuildPipeline
from tests.runtimes.pipeline_fixtures import Build, build_request, write_tree

EXAMPLE = Path(__file__).resolve().parents[3] / "runtimes" / "rust" / "examples" / "hello"
SEED_LIB_RS = (EXAMPLE / "src" / "lib.rs").read_text()
CARGO_TOML = (EXAMPLE / "Cargo.toml").read_text()
SEED_FILES = {"Cargo.toml": CARGO_TOML, "src/lib.rs": SEED_LIB_RS}

#: A panic and an Err, on request.
FAILURES = """    if req.field::<bool>("panic").unwrap_or(false) {
        panic!("deliberate panic");
    }
    if req.field::<bool>("fail").unwrap_or(false) {
        return Err(Error::msg("deliberate failure"));
    }
"""
#: Three JSON lines, streamed, on request.
STREAM = """    if req.field::<bool>("stream").unwrap_or(false) {
        ctx.stream().set_content_type("application/x-ndjson");
        for part in 0..3 {
            ctx.stream().send_json(&json!({ "part": part })).await?;
        }
        return Ok(json!(null));
    }
"""
#: The seed handler's line the branches go before.
_READS_MESSAGE = "    let message: String = req\n"


def edited_seed(*branches: str) -> dict[str, str]:
    """Seed 003's files with ``branches`` (Rust statements) run before its
    handler reads the message."""
    lib_rs = SEED_LIB_RS.replace(_READS_MESSAGE, "".join(branches) + _READS_MESSAGE)
    return {"Cargo.toml": CARGO_TOML, "src/lib.rs": lib_rs}


async def refused_for_wasm(pipeline: BuildPipeline, root: Path) -> tuple[Build, FailedPrecondition]:
    """Seed 003 built for wasm32-wasip2 under ``root`` by ``pipeline``,
    which must refuse it as WASM_TARGET_UNAVAILABLE: the build (its log)
    and the refusal."""
    source = write_tree(root / "src", SEED_FILES)
    build = build_request(
        RuntimeKind.RUST, source, root / "out", "wasm-refused", target=RuntimeTarget.WASM
    )
    with pytest.raises(FailedPrecondition) as refused:
        await pipeline.build(build.request)
    assert refused.value.reason == "WASM_TARGET_UNAVAILABLE"
    return build, refused.value
