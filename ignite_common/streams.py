"""Relaying bytes between two asyncio streams: what a proxy (the builds'
egress proxy, the pods' edge forward) does once it has connected both
ends."""

from __future__ import annotations

import asyncio
import contextlib

#: Bytes read from one side at a time.
CHUNK = 64 * 1024


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side (so a
    request/response protocol sees its peer's end); a broken connection
    just ends the copy."""
    with contextlib.suppress(OSError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``, whatever state its connection is in."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
