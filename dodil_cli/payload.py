"""The request body of an invocation: ``-p JSON``, ``-f FILE`` or stdin.

Payloads are JSON unless ``--raw`` is given: the text is parsed before
anything is sent, so a typo is reported here in one line (with the line and
column) instead of as a confusing error from inside the handler. The bytes
sent are the user's own, unchanged, not a re-serialisation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

from dodil_cli.errors import UsageError


def read_payload(
    payload: str | None,
    file: str | None,
    stdin: BinaryIO,
    stdin_is_tty: bool,
    raw: bool = False,
) -> bytes:
    """The body to send.

    ``-p`` and ``-f`` exclude each other; ``-p -`` and ``-f -`` read stdin.
    Without either, stdin is read when it is not a terminal (a pipe or a
    file), else the body is empty.
    """
    if payload is not None and file is not None:
        raise UsageError("give the payload with -p/--payload or -f/--file, not both")
    if payload is not None and payload != "-":
        body, source = payload.encode("utf-8"), "-p payload"
    elif file is not None and file != "-":
        path = Path(file)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise UsageError(f"payload file not found: {file}") from None
        except IsADirectoryError:
            raise UsageError(f"payload file is a directory: {file}") from None
        except OSError as exc:
            raise UsageError(f"cannot read payload file {file}: {exc.strerror}") from None
        source = file
    elif payload == "-" or file == "-" or not stdin_is_tty:
        body, source = stdin.read(), "stdin"
    else:
        return b""
    if not raw:
        check_json(body, source)
    return body


def check_json(body: bytes, source: str) -> None:
    """Raise UsageError unless ``body`` is empty or one JSON document."""
    if not body.strip():
        return
    try:
        # Decoded first: json.loads on bytes would guess UTF-16/32 as well.
        json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(
            f"invalid JSON in {source}: not UTF-8 text (use --raw to send bytes)"
        ) from None
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"invalid JSON in {source}: {exc.msg} at line {exc.lineno} column {exc.colno}"
            " (use --raw to send it as is)"
        ) from None
