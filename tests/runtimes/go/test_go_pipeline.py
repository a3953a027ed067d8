"""The Go pipeline on seed 002's handler: build, run as the manifest says,
call over the unix socket."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ignite_server.builds.go import GoPipeline
from ignite_server.domain.models import RuntimeKind
from tests.runtimes.launch import (
    Pod,
    context_answer,
    drained_on_sigterm,
    error_and_recovery,
    launched,
)
from tests.runtimes.pipeline_fixtures import (
    AppBuilder,
    artifact_fixture,
    builder_fixture,
    pod_fixture,
)

#: Seed 002's main.go and a go.mod, as shipped in the runtime's examples.
EXAMPLE = Path(__file__).resolve().parents[3] / "runtimes" / "go" / "examples" / "hello"
SEED_MAIN_GO = (EXAMPLE / "main.go").read_text()
GO_MOD = (EXAMPLE / "go.mod").read_text()
SEED_FILES = {"main.go": SEED_MAIN_GO, "go.mod": GO_MOD}

builder = builder_fixture(RuntimeKind.GO, GoPipeline)
#: Seed 002's main.go + a go.mod, built once per test session.
seed_artifact = artifact_fixture(SEED_FILES)
seed_pod = pod_fixture(SEED_FILES)


async def test_seed_handler_greets(seed_pod: Pod) -> None:
    status, content_type, body = await seed_pod.call({"name": "world"}, execution_id="01JGOSEED")
    assert (status, content_type) == (200, "application/octet-stream")
    assert json.loads(body) == context_answer("01JGOSEED", greeting="Hello, world!")


async def test_handler_error_is_500_and_pod_keeps_serving(seed_pod: Pod) -> None:
    error, answer = await error_and_recovery(seed_pod, b"this is not json", {"name": "Ada"})
    assert "invalid character" in error
    assert answer["greeting"] == "Hello, Ada!"


def test_artifact_is_a_static_binary_started_by_the_manifest(seed_artifact: Path) -> None:
    manifest = json.loads((seed_artifact / "ignite-launch.json").read_text())
    assert manifest == {"argv": ["{code}/app"], "ro_paths": [], "env": {}, "prestart": "exec"}
    assert sorted(p.name for p in seed_artifact.iterdir()) == ["app", "ignite-launch.json"]
    assert not _has_interpreter(seed_artifact / "app"), "the binary must be statically linked"


async def test_compile_error_fails_with_the_compilers_message(
    tmp_path: Path, builder: AppBuilder
) -> None:
    broken = SEED_MAIN_GO.replace('req.Name = "world"', "req.Name = undefinedName")
    build, failed = await builder.failure(tmp_path, {"main.go": broken, "go.mod": GO_MOD})
    assert "undefined: undefinedName" in build.log_text
    assert "go build failed" in failed.message
    assert not (tmp_path / "out" / "ignite-launch.json").exists()


async def test_missing_go_mod_is_initialized(tmp_path: Path, builder: AppBuilder) -> None:
    artifact = await builder.build(tmp_path, {"main.go": SEED_MAIN_GO})
    async with launched(artifact) as pod:
        status, _, body = await pod.call({"name": "Go"})
    assert (status, json.loads(body)["greeting"]) == (200, "Hello, Go!")


#: A second app: a handler that panics or takes its time on request.
VARIANT_MAIN_GO = """package main

import (
	"log"
	"time"

	"ignite"
)

func handler(payload []byte, ctx *ignite.Context) ([]byte, error) {
	switch string(payload) {
	case "panic":
		panic("deliberate panic")
	case "slow":
		time.Sleep(700 * time.Millisecond)
		return []byte("finished"), nil
	}
	log.Printf("serving %s", ctx.ExecutionID)
	return payload, nil
}

func main() {
	ignite.Start(handler)
}
"""


variant_artifact = artifact_fixture({"main.go": VARIANT_MAIN_GO, "go.mod": GO_MOD})


async def test_panic_is_500_and_logs_go_to_stderr(variant_artifact: Path) -> None:
    async with launched(variant_artifact) as pod:
        status, _, body = await pod.call(b"panic")
        assert status == 500
        assert "deliberate panic" in json.loads(body)["error"]
        assert await pod.call(b"echo", execution_id="01JECHO") == (
            200,
            "application/octet-stream",
            b"echo",
        )
        assert "serving 01JECHO" in pod.stderr()


async def test_sigterm_lets_the_request_in_flight_finish(variant_artifact: Path) -> None:
    response, exit_code = await drained_on_sigterm(variant_artifact, b"slow")
    assert response == (200, "application/octet-stream", b"finished")
    assert exit_code == 0


def _has_interpreter(binary: Path) -> bool:
    """True when the ELF file asks for a dynamic loader (a PT_INTERP header)."""
    data = binary.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "expected a 64-bit ELF file"
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    pt_interp = 3
    return any(
        struct.unpack_from("<I", data, phoff + i * phentsize)[0] == pt_interp for i in range(phnum)
    )
