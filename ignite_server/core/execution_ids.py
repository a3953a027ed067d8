"""Execution ids: ULIDs, minted for synchronous and asynchronous invocations
alike, so that ids sort by creation time."""

from __future__ import annotations

from ulid import ULID


def new_execution_id() -> str:
    """A fresh execution id."""
    return str(ULID())
