"""The Deno pipeline on an app using ``start(handle)`` with a deno.json
import map and an npm dependency: build, run as the manifest says, call over
the unix socket."""

from __future__ import annotations

import json
from pathlib import Path

from ignite_server.builds.deno import DenoPipeline
from ignite_server.domain.models import RuntimeKind
from tests.runtimes.launch import ORGANIZATION_ID, Pod, context_answer, drained_on_sigterm, launched
from tests.runtimes.pipeline_fixtures import (
    AppBuilder,
    artifact_fixture,
    builder_fixture,
    pod_fixture,
)

builder = builder_fixture(RuntimeKind.DENO, DenoPipeline)

MAIN_TS = """import { start } from "ignite";
import prettyBytes from "pretty-bytes";

start(async (payload, ctx) => {
  const text = new TextDecoder().decode(payload);
  if (text === "bytes") return new Uint8Array([1, 2, 3]);
  if (text === "text") return "plain text";
  if (text === "throw") throw new Error("deliberate failure");
  if (text === "slow") {
    await new Promise((resolve) => setTimeout(resolve, 700));
    return "finished";
  }
  const { name = "world" } = JSON.parse(text || "{}");
  return {
    greeting: `Hello, ${name}!`,
    execution_id: ctx.executionId,
    function_id: ctx.functionId,
    organization_id: ctx.organizationId,
    content_type: ctx.headers.get("content-type"),
    size: prettyBytes(1337),
  };
});
"""
#: "ignite" mapped to a path that does not exist in the archive: the
#: platform supplies the SDK whatever the map says.
DENO_JSON = json.dumps(
    {
        "imports": {
            "ignite": "./vendor/ignite/mod.ts",
            "pretty-bytes": "npm:pretty-bytes@6.1.1",
        }
    }
)


APP_FILES = {"deno.json": DENO_JSON, "main.ts": MAIN_TS}

app_artifact = artifact_fixture(APP_FILES)
app_pod = pod_fixture(APP_FILES)


async def test_object_result_is_json_with_the_context(app_pod: Pod) -> None:
    status, content_type, body = await app_pod.call({"name": "world"}, execution_id="01JDENO")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == context_answer(
        "01JDENO",
        greeting="Hello, world!",
        organization_id=ORGANIZATION_ID,
        content_type="application/json",
        size="1.34 kB",
    )


async def test_bytes_and_strings_are_encoded_like_python(app_pod: Pod) -> None:
    assert await app_pod.call(b"bytes") == (200, "application/octet-stream", b"\x01\x02\x03")
    assert await app_pod.call(b"text") == (200, "text/plain; charset=utf-8", b"plain text")


async def test_thrown_error_is_500_and_the_pod_keeps_serving(app_pod: Pod) -> None:
    status, content_type, body = await app_pod.call(b"throw")
    assert (status, content_type) == (500, "application/json")
    assert json.loads(body) == {"error": "deliberate failure"}
    status, _, _ = await app_pod.call({"name": "again"})
    assert status == 200


async def test_sigterm_lets_the_request_in_flight_finish(app_artifact: Path) -> None:
    response, exit_code = await drained_on_sigterm(app_artifact, b"slow")
    assert response == (200, "text/plain; charset=utf-8", b"finished")
    assert exit_code == 0


def test_artifact_runs_offline_from_its_own_directory(app_artifact: Path) -> None:
    manifest = json.loads((app_artifact / "ignite-launch.json").read_text())
    assert "--cached-only" in manifest["argv"]
    # Pods start through the SDK's bootstrap, and may come pre-started with
    # the configuration Deno reads at start-up.
    assert manifest["argv"][-2:] == ["{code}/.ignite/sdk/bootstrap.ts", "{code}/main.ts"]
    assert manifest["prestart"] == "deno"
    assert manifest["prestart_files"] == [
        "deno.json",
        "deno.lock",
        ".ignite/sdk/bootstrap.ts",
        ".ignite/sdk/encoding.ts",
        ".ignite/sdk/mod.ts",
    ]
    deno = Path(manifest["argv"][0])
    assert manifest["ro_paths"] == [str(deno.parent)]
    # The npm package is inside the artifact, not only in the build's cache
    # (the pod above ran with an empty DENO_DIR of its own).
    assert (app_artifact / "node_modules" / ".deno").is_dir()
    config = json.loads((app_artifact / "deno.json").read_text())
    assert config["imports"]["ignite"] == "./.ignite/sdk/mod.ts"


async def test_type_error_fails_with_denos_message(tmp_path: Path, builder: AppBuilder) -> None:
    broken = MAIN_TS.replace(
        "const text = new TextDecoder().decode(payload);",
        "const text: number = new TextDecoder().decode(payload);",
    )
    build, failed = await builder.failure(tmp_path, {"deno.json": DENO_JSON, "main.ts": broken})
    assert "TS2322" in build.log_text
    assert "main.ts" in build.log_text
    assert "deno check failed" in failed.message
    assert not (tmp_path / "out" / "ignite-launch.json").exists()


async def test_jsonc_config_and_no_import_map_entry(tmp_path: Path, builder: AppBuilder) -> None:
    jsonc = """{
  // comments and trailing commas are allowed here
  "imports": { "pretty-bytes": "npm:pretty-bytes@6.1.1", /* no "ignite" */ },
}
"""
    artifact = await builder.build(tmp_path, {"deno.jsonc": jsonc, "main.ts": MAIN_TS})
    async with launched(artifact) as pod:
        status, _, body = await pod.call({"name": "jsonc"})
    assert (status, json.loads(body)["greeting"]) == (200, "Hello, jsonc!")


async def test_a_separate_import_map_is_rewritten(tmp_path: Path, builder: AppBuilder) -> None:
    import_map = json.dumps({"imports": {"ignite": "https://example.invalid/ignite/mod.ts"}})
    main_ts = 'import { start } from "ignite";\n\nstart((payload) => payload);\n'
    files = {
        "deno.json": json.dumps({"importMap": "./maps/import_map.json"}),
        "maps/import_map.json": import_map,
        "main.ts": main_ts,
    }
    artifact = await builder.build(tmp_path, files)
    rewritten = json.loads((artifact / "maps" / "import_map.json").read_text())
    assert rewritten["imports"]["ignite"] == "../.ignite/sdk/mod.ts"
    async with launched(artifact) as pod:
        assert await pod.call(b"\x00\x01") == (200, "application/octet-stream", b"\x00\x01")
