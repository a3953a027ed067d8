"""Reading a request's whole body under a size limit.

The limit depends on what the body is (an API call's JSON, an app's payload),
so it is checked here rather than by aiohttp's one ``client_max_size``: a
declared ``Content-Length`` over it is refused before anything is read, and
a chunked body as soon as it passes it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ignite_gateway.errors import GatewayError, bad_request

# Bodies are read in pieces of this size, so that the limit is checked as
# they arrive rather than after buffering a whole oversize body.
_CHUNK_BYTES = 1 << 16


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole request body, or a 413 once it passes ``limit`` bytes."""
    too_large = GatewayError(
        413,
        "INVALID_ARGUMENT",
        "REQUEST_TOO_LARGE",
        f"the request body exceeds {limit} bytes",
    )
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.content.iter_chunked(_CHUNK_BYTES):
            size += len(part)
            if size > limit:
                raise too_large
            parts.append(part)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        raise bad_request("INCOMPLETE_BODY", "the request body ended early") from exc
    return b"".join(parts)
