"""Reading and checking invocation payloads."""

from __future__ import annotations

import io

import pytest

from dodil_cli.errors import UsageError
from dodil_cli.payload import read_payload


def test_inline_json_is_sent_byte_for_byte():
    text = '{"name":  "Ada"}'
    assert read_payload(text, None, io.BytesIO(), True) == text.encode()


def test_invalid_json_names_the_position():
    with pytest.raises(UsageError, match=r"invalid JSON in -p payload: .* line 1 column 2"):
        read_payload("{bad", None, io.BytesIO(), True)


def test_raw_skips_the_check():
    assert read_payload("not json", None, io.BytesIO(), True, raw=True) == b"not json"


def test_file_payload(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("[1, 2]")
    assert read_payload(None, str(path), io.BytesIO(), True) == b"[1, 2]"
    with pytest.raises(UsageError, match="payload file not found"):
        read_payload(None, str(tmp_path / "missing.json"), io.BytesIO(), True)
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(UsageError, match=f"invalid JSON in {bad}"):
        read_payload(None, str(bad), io.BytesIO(), True)


def test_stdin_is_read_only_when_it_is_not_a_terminal():
    assert read_payload(None, None, io.BytesIO(b'{"a": 1}'), False) == b'{"a": 1}'
    assert read_payload(None, None, io.BytesIO(b'{"a": 1}'), True) == b""
    assert read_payload("-", None, io.BytesIO(b"{}"), True) == b"{}"


def test_payload_and_file_exclude_each_other(tmp_path):
    with pytest.raises(UsageError, match="not both"):
        read_payload("{}", str(tmp_path), io.BytesIO(), True)


def test_non_utf8_body_needs_raw():
    with pytest.raises(UsageError, match="not UTF-8"):
        read_payload(None, None, io.BytesIO(b"\xff\xfe"), False)
