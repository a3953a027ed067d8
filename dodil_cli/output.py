"""Printing results: readable tables by default, JSON or YAML on request.

``-o json`` and ``-o yaml`` print protobuf messages through the proto3 JSON
mapping with the proto field names (snake_case), so scripts read the same
names as the ``.proto`` files and the quickstart's
``jq '{active_version, public_urls}'`` works. Fields left at their default
value are included (``0``, ``""``, ``[]``, ``false``): a script sees every
field of the message every time instead of having to tell "absent" from "zero".
int64 values that fit a JSON number exactly are printed as numbers; enums are
their names; bytes are base64, as the mapping says.

Data goes to stdout; progress, warnings and errors go to stderr. Colour is
used only on a terminal and never when ``NO_COLOR`` is set.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import click
import yaml
from google.protobuf import json_format
from google.protobuf.message import Message


def message_to_dict(message: Message) -> dict[str, Any]:
    """A message as plain data, with proto field names and defaults included."""
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )


def to_data(value: Any) -> Any:
    """Turn messages (also inside lists and dicts) into plain data."""
    if isinstance(value, Message):
        return message_to_dict(value)
    if isinstance(value, Mapping):
        return {k: to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    return value


def dump(value: Any, fmt: str) -> str:
    """Serialise data (or messages) as ``json`` or ``yaml`` text, newline-terminated."""
    data = to_data(value)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def color_enabled(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR set (no-color.org)."""
    if os.environ.get("NO_COLOR", "") != "":
        return False
    return stream.isatty()


def style(text: str, stream: IO[str], **styles: Any) -> str:
    """``click.style`` when colour is enabled on ``stream``, else ``text``."""
    return click.style(text, **styles) if color_enabled(stream) else text


def out(text: str = "") -> None:
    """Write a line of data to stdout."""
    click.echo(text, color=False)


def info(text: str) -> None:
    """Write a line of progress or information to stderr."""
    click.echo(text, err=True, color=False)


def warn(text: str) -> None:
    """Write a warning to stderr."""
    click.echo(style("warning: ", sys.stderr, fg="yellow") + text, err=True)


@dataclass(frozen=True)
class Column:
    """One column of a table: its header and how to read a cell from a row."""

    header: str
    cell: Callable[[Any], str]


def table(rows: Iterable[Any], columns: Sequence[Column]) -> str:
    """Rows under upper-case headers, columns padded to their widest cell."""
    grid = [[c.header.upper() for c in columns]]
    grid += [[_one_line(c.cell(row)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in grid
    ]
    return "\n".join(lines)


def fields(pairs: Sequence[tuple[str, str]]) -> str:
    """``Label:  value`` lines, values aligned; multi-line values indented."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    lines = []
    for label, value in pairs:
        first, *rest = (value or "-").splitlines() or ["-"]
        lines.append(f"{label + ':':<{width}}  {first}")
        lines += [" " * (width + 2) + line for line in rest]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


class Printer:
    """Prints one command's result in the chosen format; ``redact``, when
    given, rewrites every structured result first (what must not be shown
    without being asked for, such as env values)."""

    def __init__(self, fmt: str, redact: Callable[[Any], Any] | None = None) -> None:
        self.fmt = fmt
        self._redact = redact

    @property
    def structured(self) -> bool:
        """True for ``json`` and ``yaml``."""
        return self.fmt in ("json", "yaml")

    def emit(self, value: Any, readable: Callable[[], str] | str) -> None:
        """Print ``value`` as JSON/YAML, or the readable text for tables."""
        if self.structured:
            shown = self._redact(value) if self._redact is not None else value
            click.echo(dump(shown, self.fmt), nl=False)
            return
        text = readable() if callable(readable) else readable
        if text:
            out(text)
