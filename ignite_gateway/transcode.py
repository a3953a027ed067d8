"""HTTP request → protobuf request message, protobuf → JSON, both ways by the
proto3 JSON mapping (``google.protobuf.json_format``).

A request message is assembled in three steps, as ``google/api/http.proto``
prescribes:

1. the body (``body: "*"`` → the whole message, ``body: "field"`` → that
   field), read by :mod:`ignite_gateway.json_body` (UTF-8, bounded depth),
   parsed with unknown fields ignored and both the camelCase JSON names and
   the proto names accepted;
2. every path variable, which wins over the body;
3. when the rule does not map the whole body, query parameters for the
   remaining fields: ``a.b=x`` for nested fields, a repeated field as the
   parameter given several times, enums by name (or number), ``true`` /
   ``false`` for booleans, bytes as base64. Parameters naming no field are
   ignored, as unknown JSON fields are.

Bytes fields are base64 as the proto3 JSON mapping says (standard or
URL-safe alphabet, padded or not), checked strictly here: json_format's
decoder skips characters outside the alphabet, so ``"!!!notbase64x"`` would
become some bytes instead of an error.

Any input that cannot become the message is a 400 (:func:`errors.bad_request`),
never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ignite_gateway.errors import bad_request
from ignite_gateway.json_body import MalformedJson, parse_json
from ignite_gateway.routes import Route

# Well-known types whose JSON form is a string: a query parameter's text is
# handed to json_format as is.
_STRING_JSON_TYPES = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
    }
)

# The two base64 alphabets of the proto3 JSON mapping, one per string (as Go's
# protojson decides: "-" or "_" means URL-safe), "=" only as padding.
_STANDARD_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_URL_SAFE_BASE64 = re.compile(r"[A-Za-z0-9\-_]*={0,2}")

_WRAPPER_TYPES = frozenset(
    f"google.protobuf.{name}Value"
    for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes")
)


def message_class(descriptor: Descriptor) -> type[Message]:
    """The concrete Python class of a message descriptor."""
    return message_factory.GetMessageClass(descriptor)


def build_request(
    route: Route,
    path_values: Mapping[tuple[str, ...], str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    """The request message of ``route`` for one HTTP request."""
    descriptor = route.method.input_type
    request = message_class(descriptor)()
    if route.body:
        document = _parse_body(body)
        if route.body == "*":
            if not isinstance(document, dict):
                raise bad_request("INVALID_BODY", "the request body must be a JSON object")
            _parse_into(document, request)
        else:
            _parse_into({route.body: document}, request)
    params: dict[str, Any] = {}
    bound = {path[0] for path in path_values}
    if route.body:
        bound.add(route.body)
    if route.body != "*":
        for key, value in query:
            _set_query(params, descriptor, key, value, bound)
    for field_path, value in path_values.items():
        _set_path(params, descriptor, field_path, value)
    if params:
        overlay = message_class(descriptor)()
        _parse_into(params, overlay)
        # MergeFrom: scalars from the path and query replace the body's;
        # the body never maps the same fields as the query.
        request.MergeFrom(overlay)
    return request


def to_json_dict(message: Message) -> dict[str, Any]:
    """A message in the proto3 JSON mapping, with unset fields written out.

    Writing defaults out (``0``, ``""``, ``false``, the enum's zero name)
    spares clients in dynamic languages from guessing which keys exist.
    """
    return json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=False,
    )


def to_json_bytes(message: Message) -> bytes:
    """:func:`to_json_dict`, encoded compactly."""
    return json.dumps(to_json_dict(message), separators=(",", ":")).encode()


def _parse_body(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return parse_json(body)
    except MalformedJson as exc:
        raise bad_request(exc.reason, exc.message) from None


def _check_base64(field: FieldDescriptor, value: Any) -> None:
    """400 INVALID_BASE64 unless a bytes field's JSON string is base64."""
    if not isinstance(value, str):
        return  # not a string at all: json_format reports the type
    url_safe = "-" in value or "_" in value
    pattern = _URL_SAFE_BASE64 if url_safe else _STANDARD_BASE64
    padded = value + "=" * (-len(value) % 4) if "=" not in value else value
    valid = pattern.fullmatch(value) is not None and len(padded) % 4 == 0
    if valid:
        if url_safe:
            padded = padded.translate(str.maketrans("-_", "+/"))
        try:
            base64.b64decode(padded, validate=True)
        except binascii.Error:
            valid = False
    if not valid:
        raise bad_request(
            "INVALID_BASE64",
            f"{field.json_name}: bytes must be base64 (standard or URL-safe alphabet)",
        )


def _parse_into(document: Any, message: Message) -> None:
    # Unknown fields are dropped first, so the parse itself can be strict:
    # json_format's own lenient mode would also drop misspelt enum values
    # silently, where a 400 tells the caller what is wrong.
    document = _known_only(document, cast(Descriptor, message.DESCRIPTOR))
    try:
        json_format.ParseDict(document, message)
    except json_format.ParseError as exc:
        raise bad_request("INVALID_FIELD", str(exc)) from None
    except (TypeError, ValueError, AttributeError, RecursionError) as exc:
        # json_format lets a few of these through for inputs of the wrong
        # shape (a list where an object belongs); they are still bad input.
        raise bad_request(
            "INVALID_FIELD", f"the request does not fit {message.DESCRIPTOR.name}: {exc}"
        ) from None


def _known_only(document: Any, descriptor: Descriptor) -> Any:
    """``document`` without the keys that name no field (recursively)."""
    if not isinstance(document, dict) or descriptor.full_name.startswith("google.protobuf."):
        return document  # a type error json_format reports, or a well-known type
    kept: dict[str, Any] = {}
    for key, value in document.items():
        field = _field(descriptor, key) if isinstance(key, str) else None
        if field is None:
            continue
        if field.type == FieldDescriptor.TYPE_BYTES:
            for item in value if field.is_repeated and isinstance(value, list) else [value]:
                _check_base64(field, item)
        nested = field.message_type
        if nested is None or value is None:
            kept[key] = value
        elif nested.GetOptions().map_entry:
            value_field = nested.fields_by_name["value"]
            if value_field.type == FieldDescriptor.TYPE_BYTES and isinstance(value, dict):
                for item in value.values():
                    _check_base64(field, item)
            value_type = value_field.message_type
            kept[key] = (
                {k: _known_only(v, value_type) for k, v in value.items()}
                if value_type is not None and isinstance(value, dict)
                else value
            )
        elif field.is_repeated and isinstance(value, list):
            kept[key] = [_known_only(item, nested) for item in value]
        else:
            kept[key] = _known_only(value, nested)
    return kept


def _field(descriptor: Descriptor, name: str) -> FieldDescriptor | None:
    found = descriptor.fields_by_name.get(name)
    if found is not None:
        return found
    for field in descriptor.fields:
        if field.json_name == name:
            return field
    return None


def _set_path(
    params: dict[str, Any], descriptor: Descriptor, field_path: tuple[str, ...], value: str
) -> None:
    target = params
    current: Descriptor | None = descriptor
    for depth, name in enumerate(field_path):
        assert current is not None
        field = _field(current, name)
        if field is None:
            # The proto compiler accepts any path; a wrong one is a bug in
            # the proto, not in the request. Fail loudly at the first use.
            raise RuntimeError(f"{descriptor.full_name} has no field {'.'.join(field_path)}")
        if depth == len(field_path) - 1:
            target[field.name] = _scalar(field, value)
        else:
            target = target.setdefault(field.name, {})
            current = field.message_type


def _set_query(
    params: dict[str, Any],
    descriptor: Descriptor,
    key: str,
    value: str,
    bound: set[str],
) -> None:
    names = key.split(".")
    target = params
    current = descriptor
    for depth, name in enumerate(names):
        field = _field(current, name)
        if field is None or (depth == 0 and field.name in bound):
            return
        last = depth == len(names) - 1
        if field.message_type is not None and not _is_string_like(field):
            if last or field.message_type.GetOptions().map_entry or _is_repeated(field):
                # A whole message (or a map, or a list of messages) cannot be
                # written as one query parameter.
                raise bad_request(
                    "INVALID_QUERY_PARAMETER",
                    f"query parameter {key!r} names a message; set its fields as {key}.<field>",
                )
            target = target.setdefault(field.name, {})
            if not isinstance(target, dict):
                return
            current = field.message_type
            continue
        if not last:
            return
        converted = _scalar(field, value)
        if _is_repeated(field):
            target.setdefault(field.name, []).append(converted)
        else:
            target[field.name] = converted


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _is_string_like(field: FieldDescriptor) -> bool:
    message = field.message_type
    return message is not None and (
        message.full_name in _STRING_JSON_TYPES or message.full_name in _WRAPPER_TYPES
    )


def _scalar(field: FieldDescriptor, text: str) -> Any:
    """A query/path string as the JSON value json_format expects."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL or (
        field.message_type is not None
        and field.message_type.full_name == "google.protobuf.BoolValue"
    ):
        lowered = text.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise bad_request("INVALID_FIELD", f"{field.name}: expected true or false, got {text!r}")
    if kind == FieldDescriptor.TYPE_BYTES:
        _check_base64(field, text)
    # Numbers, enums (name or number), strings and base64 bytes: json_format
    # accepts the text for all of them and checks ranges itself.
    return text
