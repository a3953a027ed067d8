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
        ("env: [MISSING_VAR]\n", "not set in this shell"),
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
    assert warnings == ["info.yaml: ignoring unknown key 'flavour'"]


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
