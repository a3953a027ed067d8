"""Apps as tool definitions, and argument checks (no I/O)."""

from __future__ import annotations

import json

from dodil.ignite.v1 import ignite_common_pb2 as common

from ignite_gateway.mcp.tools import (
    object_schema,
    schema_errors,
    tool_definition,
    tools_fingerprint,
)

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def app(**fields: object) -> common.AppMeta:
    base: dict[str, object] = {
        "organization_name": "acme-corp",
        "name": "greet",
        "description": "Greets",
        "input_schema": json.dumps(SCHEMA),
        "mcp_enabled": True,
        "active_version": 1,
    }
    base.update(fields)
    return common.AppMeta(**base)  # type: ignore[arg-type]


def test_a_published_mcp_app_is_a_tool() -> None:
    assert tool_definition(app()) == {
        "name": "ignite_acme_corp_greet",
        "title": "acme-corp/greet",
        "description": "Greets",
        "inputSchema": SCHEMA,
    }
    with_output = tool_definition(app(output_schema='{"type":"object"}'))
    assert with_output is not None and with_output["outputSchema"] == {"type": "object"}


def test_unpublished_or_unexported_apps_are_no_tools() -> None:
    assert tool_definition(app(active_version=0)) is None
    assert tool_definition(app(mcp_enabled=False)) is None


def test_schemas_must_describe_objects() -> None:
    assert object_schema('{"properties": {}}') == {"type": "object", "properties": {}}
    assert object_schema('{"type": "string"}') is None
    assert object_schema("true") is None
    assert object_schema("") is None
    # A non-object output schema is left out rather than the tool dropped.
    tool = tool_definition(app(output_schema='{"type":"array"}'))
    assert tool is not None and "outputSchema" not in tool


def test_schema_errors_name_the_place() -> None:
    assert schema_errors(SCHEMA, {"name": "Ada"}) == []
    assert schema_errors(SCHEMA, {}) == ["arguments: 'name' is a required property"]
    assert schema_errors(SCHEMA, {"name": 5}) == ["$.name: 5 is not of type 'string'"]


def test_the_fingerprint_changes_with_any_tool_field() -> None:
    tool = tool_definition(app())
    assert tool is not None
    same = tools_fingerprint([dict(reversed(list(tool.items())))])
    assert tools_fingerprint([tool]) == same
    assert tools_fingerprint([tool]) != tools_fingerprint([{**tool, "description": "Waves"}])
    assert tools_fingerprint([tool]) != tools_fingerprint([])
