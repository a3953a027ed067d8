"""An OpenAPI 3.0 document generated from the same route table the gateway
serves, so the document and the behaviour cannot drift apart.

Schemas follow the proto3 JSON mapping the gateway speaks: camelCase
property names, 64-bit integers as decimal strings, enums as their names,
bytes as base64 strings, maps as objects, well-known types in their JSON
forms. Each message becomes one component named by its full proto name.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from ignite_gateway.oauth import CLIENT_CREDENTIALS, is_jwks_endpoint, is_token_endpoint
from ignite_gateway.routes import Route, RouteTable
from ignite_gateway.streaming import (
    EXECUTION_ID_HEADER,
    JSON_LINES_TYPE,
    VERSION_HEADER,
    is_http_frames,
)

#: How deep nested message fields are offered as ``a.b.c`` query parameters.
_QUERY_DEPTH = 3

_ERROR_REF = {"$ref": "#/components/schemas/Error"}

_INT32 = {"type": "integer", "format": "int32"}
_UINT32 = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295}
_INT64 = {"type": "string", "format": "int64", "pattern": "^-?[0-9]{1,18}$"}
_UINT64 = {"type": "string", "format": "uint64", "pattern": "^[0-9]{1,19}$"}

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}

# JSON forms of the well-known types (google/protobuf/*.proto docs).
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    "google.protobuf.DoubleValue": {"type": "number"},
    "google.protobuf.FloatValue": {"type": "number"},
    "google.protobuf.Int32Value": _INT32,
    "google.protobuf.UInt32Value": _UINT32,
    "google.protobuf.Int64Value": _INT64,
    "google.protobuf.UInt64Value": _UINT64,
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "status"],
            "properties": {
                "code": {"type": "integer", "description": "HTTP status"},
                "message": {"type": "string"},
                "status": {"type": "string", "description": "gRPC status code name"},
                "details": {
                    "type": "array",
                    "description": "google.rpc details, e.g. google.rpc.ErrorInfo",
                    "items": {"type": "object", "additionalProperties": True},
                },
            },
        }
    },
}


_OAUTH_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}


def build_openapi(routes: RouteTable, title: str = "Ignite API") -> dict[str, Any]:
    """The OpenAPI 3.0 document of ``routes``."""
    builder = _Builder()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operations = paths.setdefault(route.template.openapi_path, {})
        operations[route.http_method.lower()] = builder.operation(route)
    builder.schemas["Error"] = _ERROR_SCHEMA
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "v1",
            "description": "HTTP/JSON edge of the Ignite gRPC API (proto3 JSON mapping). "
            "Every error has the shape of the Error schema.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(builder.schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}

    def operation(self, route: Route) -> dict[str, Any]:
        if is_token_endpoint(route.method):
            return self._token_operation(route)
        method = route.method
        request_type = method.input_type
        path_fields = {variable.field_path for variable in route.template.variables}
        parameters = [self._path_parameter(request_type, path) for path in sorted(path_fields)]
        top_bound = {path[0] for path in path_fields}
        if route.body != "*":
            excluded = top_bound | ({route.body} if route.body else set())
            parameters.extend(self._query_parameters(request_type, excluded))
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": f"{method.containing_service.name}.{method.name}",
            "tags": [method.containing_service.name],
            "parameters": parameters,
            "responses": self._responses(route),
        }
        if route.body == "*":
            operation["requestBody"] = self._body(self._message_inline(request_type, top_bound))
        elif route.body:
            field = request_type.fields_by_name[route.body]
            operation["requestBody"] = self._body(self.field_schema(field))
        return operation

    def _token_operation(self, route: Route) -> dict[str, Any]:
        # RFC 6749 names and types, not the proto3 JSON mapping (see oauth.py).
        method = route.method
        names = [field.name for field in method.input_type.fields]
        form = {
            "type": "object",
            "required": ["grant_type"],
            "properties": {
                "grant_type": {"type": "string", "enum": [CLIENT_CREDENTIALS]},
                **{name: {"type": "string"} for name in names},
            },
        }
        reply = {
            "type": "object",
            "properties": {
                field.name: (
                    {"type": "integer"}
                    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_INT32)
                    else self._single_schema(field)
                )
                for field in method.output_type.fields
            },
        }
        return {
            "operationId": route.operation_id,
            "summary": f"{method.containing_service.name}.{method.name} "
            "(OAuth 2.0 token endpoint, client credentials)",
            "tags": [method.containing_service.name],
            "parameters": [],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {"schema": form},
                    "application/json": {"schema": self._message_inline(method.input_type, set())},
                },
            },
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": reply}}},
                "default": {
                    "description": "An OAuth error (RFC 6749 5.2), or an Error.",
                    "content": {
                        "application/json": {"schema": {"anyOf": [_OAUTH_ERROR, _ERROR_REF]}}
                    },
                },
            },
        }

    def _body(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def _responses(self, route: Route) -> dict[str, Any]:
        method = route.method
        error = {
            "description": "An error (see the Error schema).",
            "content": {"application/json": {"schema": _ERROR_REF}},
        }
        if is_http_frames(method):
            # The app's own response, whatever its status, headers and body.
            return {
                "default": {
                    "description": "The app's HTTP response, streamed; with `TE: trailers`, "
                    "X-Ignite-Total-Body-Bytes and X-Ignite-Duration-Ms come as trailers. "
                    "Errors before the app answered have the Error schema.",
                    "headers": {
                        EXECUTION_ID_HEADER: {"schema": {"type": "string"}},
                        VERSION_HEADER: {"schema": {"type": "string"}},
                    },
                    "content": {
                        # Any JSON (the app's or an Error), or any other bytes.
                        "application/json": {"schema": {}},
                        "*/*": {"schema": {"type": "string", "format": "binary"}},
                    },
                }
            }
        output = self.message_ref(method.output_type)
        if is_jwks_endpoint(method):
            output = {
                "type": "object",
                "required": ["keys"],
                "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
            }
        if method.server_streaming:
            line = {
                "type": "object",
                "properties": {"result": output, "error": _ERROR_SCHEMA["properties"]["error"]},
            }
            ok = {
                "description": "Newline-delimited JSON, one object per message.",
                "content": {JSON_LINES_TYPE: {"schema": line}},
            }
        else:
            if route.response_body:
                output = self.field_schema(method.output_type.fields_by_name[route.response_body])
            ok = {"description": "OK", "content": {"application/json": {"schema": output}}}
        return {"200": ok, "default": error}

    def _path_parameter(self, message: Descriptor, path: tuple[str, ...]) -> dict[str, Any]:
        field = _resolve(message, path)
        schema: dict[str, Any] = (
            dict(self.field_schema(field)) if field is not None else {"type": "string"}
        )
        if schema.get("type") == "string":
            schema.setdefault("minLength", 1)
        return {"name": ".".join(path), "in": "path", "required": True, "schema": schema}

    def _query_parameters(
        self, message: Descriptor, excluded: set[str], prefix: str = "", depth: int = 0
    ) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = []
        for field in message.fields:
            if not prefix and field.name in excluded:
                continue
            name = prefix + field.json_name
            repeated = field.is_repeated
            if field.message_type is not None and field.message_type.full_name not in _WELL_KNOWN:
                if repeated or depth + 1 >= _QUERY_DEPTH:
                    continue  # lists of messages and maps have no query form
                parameters.extend(
                    self._query_parameters(field.message_type, excluded, name + ".", depth + 1)
                )
                continue
            schema = self._single_schema(field)
            if repeated:
                schema = {"type": "array", "items": schema}
            parameters.append(
                {"name": name, "in": "query", "required": False, "schema": schema, "explode": True}
            )
        return parameters

    def _message_inline(self, message: Descriptor, excluded: set[str]) -> dict[str, Any]:
        properties = {
            field.json_name: self.field_schema(field)
            for field in message.fields
            if field.name not in excluded
        }
        return {"type": "object", "properties": properties}

    def message_ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        name = message.full_name
        if name not in self.schemas:
            self.schemas[name] = {}  # placeholder: recursion stops here
            self.schemas[name] = {
                **self._message_inline(message, set()),
                "additionalProperties": True,
            }
        return {"$ref": f"#/components/schemas/{name}"}

    def field_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single_schema(value)}
        schema = self._single_schema(field)
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def _single_schema(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.message_type is not None:
            return self.message_ref(field.message_type)
        if field.enum_type is not None:
            return {"type": "string", "enum": [value.name for value in field.enum_type.values]}
        return dict(_SCALARS[field.type])


def _resolve(message: Descriptor, path: tuple[str, ...]) -> FieldDescriptor | None:
    field = None
    current: Descriptor | None = message
    for name in path:
        if current is None:
            return None
        field = current.fields_by_name.get(name)
        if field is None:
            return None
        current = field.message_type
    return field
