"""Apps as MCP tools: listing them and calling them.

An app is a tool of its organization when it is ``mcp_enabled`` and
published (``active_version > 0``). Its tool has

* ``name`` — ``ignite_{org}_{app}`` (:mod:`.naming`);
* ``description`` — the app's description;
* ``inputSchema`` — the app's ``input_schema``; MCP arguments are always a
  JSON object, so a schema without ``type`` gets ``"type": "object"`` and an
  app whose schema demands anything but an object is not offered as a tool;
* ``outputSchema`` — the app's ``output_schema`` when it describes an
  object (MCP only allows object results to be structured).

Nothing is cached: ``tools/list`` reads ``ListApps`` each time and
``tools/call`` reads ``GetApp``, so a publish, an ``mcp_enabled`` change or a
delete is visible to the next request.

``tools/call`` checks the arguments against ``input_schema`` with
``jsonschema`` *before* anything runs (a bad call never wakes a pod); a
mismatch is a tool result with ``isError: true`` naming what is wrong, so a
model can correct itself (MCP 2025-11-25). Then the active version is
invoked through the ``Invoke`` RPC with the arguments as the JSON body, and
the app's answer becomes the result: its body as text content, plus
``structuredContent`` when the app has an ``outputSchema`` and answered with
a JSON object that matches it. An HTTP status of 400 or more from the
handler, or a failure to run it, is ``isError: true`` with the error text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import grpc
import jsonschema
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

from ignite_gateway.mcp.naming import app_for_tool, tool_name
from ignite_gateway.mcp.protocol import INVALID_PARAMS, ProtocolError

#: ``_meta`` key of a call result carrying the invocation's execution id,
#: for finding its logs.
EXECUTION_ID_META = "ignite.dodil.io/execution_id"

#: ListApps page size while collecting tools (the server's maximum).
_PAGE_SIZE = 500

#: Schema errors reported in one result; the first few say enough.
_MAX_REPORTED_ERRORS = 5

Metadata = Sequence[tuple[str, str]]


def tool_definition(app: Any) -> dict[str, Any] | None:
    """The MCP tool an ``AppMeta`` stands for, or None when it is no tool."""
    if not app.mcp_enabled or app.active_version <= 0:
        return None
    input_schema = object_schema(app.input_schema)
    if input_schema is None:
        return None
    tool: dict[str, Any] = {
        "name": tool_name(app.organization_name, app.name),
        "title": f"{app.organization_name}/{app.name}",
        "description": app.description,
        "inputSchema": input_schema,
    }
    output_schema = object_schema(app.output_schema)
    if output_schema is not None:
        tool["outputSchema"] = output_schema
    return tool


def object_schema(text: str) -> dict[str, Any] | None:
    """A stored JSON Schema as an MCP object schema, or None when it is
    missing or cannot describe an object."""
    if not text.strip():
        return None
    try:
        schema = json.loads(text)
    except (ValueError, RecursionError):  # too deep for the decoder: no schema either
        return None
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind is None:
        # Arguments are always an object: saying so changes nothing that
        # validates, and MCP clients require the declaration.
        return {"type": "object", **schema}
    if kind == "object":
        return schema
    return None


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    """What is wrong with ``instance`` under ``schema`` (empty when valid)."""
    validator_class = jsonschema.validators.validator_for(
        schema, default=jsonschema.Draft202012Validator
    )
    validator = validator_class(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.path))
    described = []
    for error in errors[:_MAX_REPORTED_ERRORS]:
        where = error.json_path if error.path else "arguments"
        described.append(f"{where}: {error.message}")
    return described


def tools_fingerprint(tools: list[dict[str, Any]]) -> str:
    """A digest of a tool list: equal exactly when the lists are."""
    canonical = json.dumps(tools, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def text_result(text: str, *, is_error: bool = False) -> dict[str, Any]:
    """A CallToolResult with one text block."""
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


class ToolCatalog:
    """Lists and calls the tools of an organization over the gateway's channel."""

    def __init__(
        self, channel: grpc.aio.Channel, *, rpc_timeout_s: float, invoke_timeout_s: float
    ) -> None:
        self._compute = compute_grpc.ComputeServiceStub(channel)
        self._rpc_timeout_s = rpc_timeout_s
        self._invoke_timeout_s = invoke_timeout_s

    async def list_tools(self, organization: str, metadata: Metadata) -> list[dict[str, Any]]:
        """Every tool of ``organization``, ordered by app name."""
        tools: list[dict[str, Any]] = []
        token = ""
        while True:
            reply = await self._compute.ListApps(
                compute.ListAppsRequest(
                    organization_name=organization, page_size=_PAGE_SIZE, page_token=token
                ),
                metadata=tuple(metadata),
                timeout=self._rpc_timeout_s,
            )
            for app in reply.apps:
                tool = tool_definition(app)
                if tool is not None:
                    tools.append(tool)
            token = reply.next_page_token
            if not token:
                return tools

    async def call_tool(
        self, organization: str, params: dict[str, Any], metadata: Metadata
    ) -> dict[str, Any]:
        """Run the tool ``params["name"]`` with ``params["arguments"]``.

        Raises ProtocolError for an unknown tool or malformed params (a
        JSON-RPC error, per the spec); returns a CallToolResult otherwise.
        """
        name = params.get("name")
        if not isinstance(name, str):
            raise ProtocolError(INVALID_PARAMS, "tools/call needs a tool name")
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ProtocolError(INVALID_PARAMS, "tools/call arguments must be an object")
        app = await self._find_app(organization, name, metadata)
        tool = tool_definition(app) if app is not None else None
        if app is None or tool is None:
            raise ProtocolError(INVALID_PARAMS, f"unknown tool: {name}")
        problems = schema_errors(tool["inputSchema"], arguments)
        if problems:
            return text_result(
                f"the arguments do not match the input schema of {name}: " + "; ".join(problems),
                is_error=True,
            )
        return await self._invoke(app, tool, arguments, metadata)

    async def _find_app(self, organization: str, name: str, metadata: Metadata) -> Any | None:
        app_name = app_for_tool(organization, name)
        if app_name is None:
            return None
        try:
            reply = await self._compute.GetApp(
                compute.GetAppRequest(organization_name=organization, app_name=app_name),
                metadata=tuple(metadata),
                timeout=self._rpc_timeout_s,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.app

    async def _invoke(
        self, app: Any, tool: dict[str, Any], arguments: dict[str, Any], metadata: Metadata
    ) -> dict[str, Any]:
        request = compute.InvokeRequest(
            organization_name=app.organization_name,
            app_name=app.name,
            http=common.HttpContext(
                method=common.HTTP_METHOD_POST,
                path="/",
                headers={"content-type": "application/json"},
            ),
            body=json.dumps(arguments, separators=(",", ":")).encode(),
        )
        call = self._compute.Invoke(
            request, metadata=tuple(metadata), timeout=self._invoke_timeout_s
        )
        status = 0
        execution_id = ""
        body = bytearray()
        try:
            async for frame in call:
                kind = frame.WhichOneof("frame")
                if kind == "head":
                    status = frame.head.status_code
                    execution_id = frame.head.execution_id
                elif kind == "chunk":
                    body += frame.chunk.data
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.UNAUTHENTICATED:
                raise
            # The app could not run (no capacity, a deadline, a build that
            # failed...): a tool execution error the model can read.
            return text_result(f"{error.code().name}: {error.details() or ''}", is_error=True)
        finally:
            call.cancel()
        # Handlers answer JSON or text; anything else is shown, not dropped.
        text = bytes(body).decode("utf-8", errors="replace")
        # No head at all means nothing answered: an error, not an empty result.
        result = text_result(text, is_error=status >= 400 or status == 0)
        if not result["isError"] and "outputSchema" in tool:
            result = _with_structured_content(result, tool, text)
        if execution_id:
            result["_meta"] = {EXECUTION_ID_META: execution_id}
        return result


def _with_structured_content(
    result: dict[str, Any], tool: dict[str, Any], text: str
) -> dict[str, Any]:
    # A tool that declares an outputSchema must return conforming structured
    # content: an answer that does not is reported, not passed on.
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # an app's answer nested past the decoder
        value = None
    if not isinstance(value, dict):
        return text_result(
            f"{tool['name']} declares an output schema but answered with no JSON object: {text}",
            is_error=True,
        )
    problems = schema_errors(tool["outputSchema"], value)
    if problems:
        return text_result(
            f"the result of {tool['name']} does not match its output schema: "
            + "; ".join(problems),
            is_error=True,
        )
    result["structuredContent"] = value
    return result
