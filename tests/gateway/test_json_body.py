"""parse_json: UTF-8 only, at most MAX_DEPTH levels, never a RecursionError."""

from __future__ import annotations

import pytest

from ignite_gateway.json_body import MAX_DEPTH, MalformedJson, parse_json


def _reason(body: bytes) -> str:
    with pytest.raises(MalformedJson) as caught:
        parse_json(body)
    return caught.value.reason


def test_depth_limit_is_exact():
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    assert _reason(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)) == "JSON_TOO_DEEP"
    # Objects and arrays count alike: 51 x {"a": [ ... ]} is 102 levels.
    mixed = b'{"a": [' * 51 + b"1" + b"]}" * 51
    assert _reason(mixed) == "JSON_TOO_DEEP"


def test_ten_thousand_levels_are_refused_not_a_crash():
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        assert _reason(opener * 10_000 + b"1" + closer * 10_000) == "JSON_TOO_DEEP"
    # Many brackets side by side are not depth.
    wide = b"[" + b",".join([b"[[1]]"] * 10_000) + b"]"
    assert len(parse_json(wide)) == 10_000


def test_brackets_inside_strings_are_not_depth():
    text = b'{"s": "' + b"[" * 500 + b'"}'
    assert parse_json(text) == {"s": "[" * 500}


def test_only_utf8():
    assert parse_json('{"name": "café"}'.encode()) == {"name": "café"}
    assert parse_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}  # a UTF-8 BOM is ignored
    assert _reason(b'{"name": "caf\xe9"}') == "INVALID_UTF8"
    assert _reason('{"a": 1}'.encode("utf-16")) == "INVALID_UTF8"
    assert _reason(b"{not json") == "MALFORMED_JSON"
