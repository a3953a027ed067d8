"""How the Deno pipeline reads deno.jsonc (no Deno run)."""

from __future__ import annotations

import json

from ignite_server.builds.deno_config import _strip_jsonc


def test_comments_and_trailing_commas_are_removed() -> None:
    text = """{
  // a line comment
  "imports": { "a": "npm:a@1", /* a block comment */ },
  "tasks": ["x", "y",],
}"""
    assert json.loads(_strip_jsonc(text)) == {"imports": {"a": "npm:a@1"}, "tasks": ["x", "y"]}


def test_comment_markers_and_commas_inside_strings_are_kept() -> None:
    text = '{"url": "https://example.com/a,}", "quote": "say \\"//\\" ,]", "end": "\\\\"}'
    assert json.loads(_strip_jsonc(text)) == json.loads(text)
