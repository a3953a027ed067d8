"""Output formats: proto field names, defaults included, readable tables."""

from __future__ import annotations

import json

import yaml
from dodil.ignite.v1 import ignite_common_pb2 as common

from dodil_cli.output import Column, dump, fields, message_to_dict, table
from dodil_cli.views import app_detail, app_list


def test_json_uses_proto_field_names_and_includes_defaults():
    app = common.AppMeta(
        id="acme/greet", name="greet", active_version=1, created_at_ms=1_700_000_000_000
    )
    data = message_to_dict(app)
    assert data["active_version"] == 1
    assert data["public_urls"] == []
    assert data["mcp_enabled"] is False
    assert data["deployment_state"] == "DEPLOYMENT_STATE_UNSPECIFIED"
    # int64 values that fit a JSON number are numbers, so jq can do arithmetic.
    assert data["created_at_ms"] == 1_700_000_000_000
    assert "activeVersion" not in data


def test_json_and_yaml_of_a_list_of_messages():
    apps = [common.AppMeta(name="a"), common.AppMeta(name="b")]
    assert [a["name"] for a in json.loads(dump(apps, "json"))] == ["a", "b"]
    assert [a["name"] for a in yaml.safe_load(dump(apps, "yaml"))] == ["a", "b"]


def test_bytes_are_base64_as_the_json_mapping_says():
    execution = common.Execution(id="01J", result=b'{"ok": true}')
    assert message_to_dict(execution)["result"] == "eyJvayI6IHRydWV9"


def test_table_pads_columns_and_uppercases_headers():
    text = table(
        [{"a": "x", "b": "long value"}, {"a": "yyyy", "b": "z"}],
        [Column("a", lambda r: r["a"]), Column("b", lambda r: r["b"])],
    )
    assert text.splitlines() == ["A     B", "x     long value", "yyyy  z"]


def test_fields_align_and_indent_multiline_values():
    text = fields([("App", "acme:greet"), ("Public URLs", "http://a\nhttp://b"), ("Env", "")])
    assert text.splitlines() == [
        "App:          acme:greet",
        "Public URLs:  http://a",
        "              http://b",
        "Env:          -",
    ]


def test_app_views_show_cli_ids_and_state():
    app = common.AppMeta(
        id="acme/greet",
        name="greet",
        runtime=common.Runtime(rust=common.RustRuntime(target=common.RUNTIME_TARGET_WASM)),
        deployment_state=common.DEPLOYMENT_STATE_COLD,
        active_version=3,
        resource_tier=common.RESOURCE_TIER_LARGE,
    )
    detail = app_detail(app)
    assert "acme:greet" in detail
    assert "rust (wasm)" in detail
    assert "Active version:   3" in detail
    header, row = app_list([app]).splitlines()
    assert header.split() == ["NAME", "RUNTIME", "STATE", "ACTIVE", "TIER", "UPDATED"]
    assert row.split()[:6] == ["greet", "rust", "(wasm)", "cold", "3", "large"]
