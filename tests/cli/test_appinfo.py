"""info.yaml and the app settings it and the flags describe."""

from __future__ import annotations

import json

import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common

from dodil_cli.appinfo import load_app_info
from dodil_cli.appspec import AppSpec, create_request, update_for
from dodil_cli.errors import UsageError
from dodil_cli.ids import AppRef


def test_full_info_yaml(tmp_path):
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "out.json").write_text('{"type": "object"}')
    (tmp_path / "info.yaml").write_text(
        "name: greet\n"
        "description: Says hello\n"
        "runtime: python\n"
        "mcp_enabled: true\n"
        "input_schema:\n  type: object\n  properties: {name: {type: string}}\n"
        "output_schema: schema/out.json\n"
        "env: [API_KEY]\n"
    )
    info = load_app_info(tmp_path, environ={"API_KEY": "k-1"})
    assert info is not None
    assert info.name == "greet"
    spec = info.spec
    assert (spec.runtime, spec.description, spec.mcp_enabled) == ("python", "Says hello", True)
    assert json.loads(spec.input_schema or "")["properties"]["name"]["type"] == "string"
    assert spec.output_schema == '{"type": "object"}'
    assert spec.env == {"API_KEY": "k-1"}


def test_missing_info_yaml_is_fine(tmp_path):
    assert load_app_info(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runtime: cobol\n", "runtime must be one of"),
        ("env: [A=1]\n", "info.yaml line 1: env lists variable names"),
        ("description: ok\ntier: huge\n", "info.yaml line 2: tier must be one of"),
        ("input: {type: object}\ninput_schema: {type: object}\n", "input or input_schema"),
        ("mcp_enabled: maybe\n", "true or false"),
        ("input_schema: nope.json\n", "neither JSON nor a file"),
        ("- a list\n", "must be a mapping"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_info_yaml_is_one_clear_error(tmp_path, text, message):
    (tmp_path / "info.yaml").write_text(text)
    with pytest.raises(UsageError, match=message):
        load_app_info(tmp_path, environ={})


def test_unknown_keys_warn(tmp_path):
    (tmp_path / "info.yaml").write_text("runtime: go\nflavour: vanilla\n")
    warnings: list[str] = []
    load_app_info(tmp_path, environ={}, warn=warnings.append)
    assert warnings == ["info.yaml line 2: ignoring unknown key 'flavour'"]


REAL_APP_INFO = """\
name: support-desk
runtime: python
input:                 # the payload's JSON Schema, as YAML
  type: object
  properties:
    action: {type: string}
  required: [action]
output:
  type: object
env:
  - API_KEY            # from the shell
  - LOG_LEVEL          # from --env
  - UNSET_ONE          # from nowhere: not set
  - name: REGION       # a described entry
    description: where the desk is
test_input:
  action: status
"""


def test_info_yaml_as_published_apps_write_it(tmp_path):
    (tmp_path / "info.yaml").write_text(REAL_APP_INFO)
    info = load_app_info(tmp_path, environ={"API_KEY": "k", "REGION": "eu"})
    assert info is not None
    assert json.loads(info.spec.input_schema or "")["required"] == ["action"]
    assert json.loads(info.spec.output_schema or "") == {"type": "object"}
    # Listed names with a value in the shell; the others are simply not set.
    assert info.spec.env == {"API_KEY": "k", "REGION": "eu"}
    # --env values are layered over the file's and count for listed names.
    flags = AppSpec(env={"LOG_LEVEL": "debug"})
    assert flags.over(info.spec).env == {"API_KEY": "k", "REGION": "eu", "LOG_LEVEL": "debug"}
    assert json.loads(info.test_input or b"") == {"action": "status"}


def test_the_old_schema_keys_still_work(tmp_path):
    (tmp_path / "info.yaml").write_text('input_schema: \'{"type": "object"}\'\n')
    info = load_app_info(tmp_path, environ={})
    assert info is not None and info.spec.input_schema == '{"type": "object"}'


def test_info_yaml_inside_an_archive(tmp_path):
    import io
    import tarfile

    from dodil_cli.appinfo import read_app_info

    data = REAL_APP_INFO.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        entry = tarfile.TarInfo("info.yaml")
        entry.size = len(data)
        tar.addfile(entry, io.BytesIO(data))
    archive = tmp_path / "app.tar.gz"
    archive.write_bytes(buffer.getvalue())
    info = read_app_info(archive)
    assert info is not None and info.name == "support-desk"


def test_flags_override_info_and_env_maps_merge():
    from_file = AppSpec(runtime="python", description="file", env={"A": "1", "B": "2"})
    from_flags = AppSpec(description="flag", env={"B": "3"})
    merged = from_flags.over(from_file)
    assert merged.runtime == "python"
    assert merged.description == "flag"
    assert merged.env == {"A": "1", "B": "3"}


def test_create_request_carries_the_settings():
    spec = AppSpec(
        runtime="rust", target="wasm", tier="medium", env={"K": "V"}, memory_mb=300, max_replicas=2
    )
    request = create_request(AppRef("acme", "greet"), spec)
    assert request.runtime.rust.target == common.RUNTIME_TARGET_WASM
    assert request.resource_tier == common.RESOURCE_TIER_MEDIUM
    assert dict(request.env) == {"K": "V"}
    assert request.limits.memory_mb == 300
    assert not request.limits.HasField("timeout_secs")
    assert request.scaling.max_replicas == 2


def test_create_needs_a_runtime():
    with pytest.raises(UsageError, match="runtime"):
        create_request(AppRef("acme", "greet"), AppSpec())


def test_target_only_for_compiled_runtimes():
    with pytest.raises(UsageError, match="compile target"):
        create_request(AppRef("acme", "x"), AppSpec(runtime="python", target="wasm"))


def test_update_sends_only_changes():
    current = common.AppMeta(
        runtime=common.Runtime(python=common.PythonRuntime()),
        description="same",
        env={"KEEP": "1", "DROP": "2"},
        limits=common.ResourceLimits(timeout_secs=30),
    )
    spec = AppSpec(
        runtime="python", description="same", env={"NEW": "3"}, unset_env=("DROP",), memory_mb=512
    )
    update = update_for(spec, current)
    assert sorted(update.paths) == ["env", "limits"]
    assert dict(update.app.env) == {"KEEP": "1", "NEW": "3"}
    # Limits are replaced whole, so the unchanged timeout is carried along.
    assert update.app.limits.timeout_secs == 30
    assert update.app.limits.memory_mb == 512
    assert update_for(AppSpec(description="same"), current).paths == []


def test_zero_limits_go_back_to_the_tier():
    current = common.AppMeta(limits=common.ResourceLimits(memory_mb=512, cpu_millicores=300))
    update = update_for(AppSpec(memory_mb=0), current)
    assert update.paths == ["limits"]
    assert not update.app.limits.HasField("memory_mb")
    assert update.app.limits.cpu_millicores == 300
