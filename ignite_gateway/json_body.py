"""Reading a JSON request body, strictly and within bounds.

Every JSON body the gateway accepts (API calls, the token endpoint, MCP)
goes through :func:`parse_json`, which refuses, each with its own reason:

- bytes that are not UTF-8 (``INVALID_UTF8``): RFC 8259 §8.1 requires UTF-8
  between systems, and guessing UTF-16/32 as ``json.loads(bytes)`` does would
  accept bodies no other edge accepts. A UTF-8 byte order mark is ignored,
  as §8.1 allows;
- text that is not JSON (``MALFORMED_JSON``), with the line and column;
- nesting deeper than MAX_DEPTH (``JSON_TOO_DEEP``). Python's decoder
  recurses once per level and gives up near the interpreter's recursion
  limit with a RecursionError (which used to become a 500); the documented,
  smaller limit is checked on the decoded document without recursion.
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting of arrays and objects in a body: protobuf's own JSON
#: parser stops at this depth too, and no API request comes near it.
MAX_DEPTH = 100


class MalformedJson(ValueError):
    """A body :func:`parse_json` refuses; ``reason`` is the ErrorInfo reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def parse_json(body: bytes) -> Any:
    """The document in ``body``, or :class:`MalformedJson`."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MalformedJson(
            "INVALID_UTF8", f"the request body is not valid UTF-8 (at byte {exc.start})"
        ) from None
    too_deep = MalformedJson(
        "JSON_TOO_DEEP", f"the request body nests arrays and objects deeper than {MAX_DEPTH}"
    )
    try:
        document = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except json.JSONDecodeError as exc:
        raise MalformedJson(
            "MALFORMED_JSON",
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}",
        ) from None
    # Fewer brackets than the limit cannot nest past it: skip the walk.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth_exceeds(document, MAX_DEPTH):
        raise too_deep
    return document


def _depth_exceeds(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (iteratively:
    the point is not to recurse)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
