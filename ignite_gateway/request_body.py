"""Reading a request's whole body under a size limit, a few large ones at a time.

The limit depends on what the body is (an API call's JSON, an app's payload),
so it is checked here rather than by aiohttp's one ``client_max_size``: a
declared ``Content-Length`` over it is refused before anything is read, and
a chunked body as soon as it passes it; past the limit nothing more is read
into memory (aiohttp discards the rest while it answers).

A large body (over LARGE_BODY_BYTES, or of unknown length) is read, turned
into the gRPC message and sent only on one of ``BodyGate``'s turns: at most
``max_large`` such requests hold their bodies at once, so concurrent
uploads cost the gateway a bounded amount of memory however many arrive;
the others wait (their clients' bytes stay in the kernel's socket buffers)
and, past LARGE_BODY_WAIT_S, get 503 ``TOO_MANY_LARGE_BODIES`` with
``Retry-After``. Requests whose bodies are small or absent never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from ignite_gateway.errors import GatewayError, bad_request

#: A body larger than this takes a turn at the gate: small API calls and
#: payloads never wait behind uploads.
LARGE_BODY_BYTES = 1024 * 1024
#: Large bodies held at once by default: each can cost a few times its
#: size while it is decoded and sent (a 43.7 MiB JSON body, its 32 MiB of
#: bytes, the message), so four keep a gateway well under a gigabyte.
DEFAULT_MAX_LARGE_BODIES = 4
#: How long a large body waits for a turn before the client is told to
#: retry; an upload of 32 MiB takes well under this on a local network.
LARGE_BODY_WAIT_S = 30.0


class BodyGate:
    """Turns for large bodies (see the module docstring)."""

    def __init__(self, max_large: int = DEFAULT_MAX_LARGE_BODIES) -> None:
        self.max_large = max_large
        self._turns = asyncio.Semaphore(max_large)
        #: Requests holding a turn now (tests, metrics).
        self.holding = 0

    @contextlib.asynccontextmanager
    async def turn(self, request: web.BaseRequest) -> AsyncIterator[bool]:
        """Hold a turn for the block when ``request``'s body is large
        (yields whether it did)."""
        size = request.content_length
        if not request.body_exists or (size is not None and size <= LARGE_BODY_BYTES):
            yield False
            return
        try:
            async with asyncio.timeout(LARGE_BODY_WAIT_S):
                await self._turns.acquire()
        except TimeoutError:
            raise GatewayError(
                503,
                "UNAVAILABLE",
                "TOO_MANY_LARGE_BODIES",
                f"{self.max_large} large request bodies are being handled; retry shortly",
                headers={"Retry-After": "1"},
            ) from None
        self.holding += 1
        try:
            yield True
        finally:
            self.holding -= 1
            self._turns.release()


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


def token_required() -> GatewayError:
    """The 401 of a request that needs a token and came without one."""
    return GatewayError(
        401,
        "UNAUTHENTICATED",
        "TOKEN_REQUIRED",
        "this call needs 'Authorization: Bearer <token>'",
        headers={"WWW-Authenticate": 'Bearer realm="ignite"'},
    )
