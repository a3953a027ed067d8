"""What a request without a token may do, known before its body is read.

A request with no ``Authorization`` header is refused by the server unless
the server runs without authentication or the request invokes an app that
allows unauthenticated calls. The gateway asks the server which
(``ComputeService/GetAnonymousAccess``) before it reads such a request's
body, and answers 401 ``TOKEN_REQUIRED`` at once when the answer is no: an
unauthenticated client cannot make the gateway read, hold or parse a body
(up to 43.7 MiB each) that would be refused anyway.

Answers are cached per (organization, app) for CACHE_SECS, and concurrent
questions about the same app share one call, so a flood of tokenless
requests costs one small RPC per app every few seconds. A server that cannot
be asked is not guessed about: the request proceeds as before (its body is
read under the gateway's body limits) and the server decides.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute

#: How long an answer is trusted: an app made public (or private) is seen
#: as such by tokenless requests within this time.
CACHE_SECS = 2.0
#: Deadline of one question; it is one indexed row read on the server.
ASK_TIMEOUT_S = 5.0
#: Answers kept at most (a flood of made-up app names cannot grow it).
MAX_CACHED = 10_000
_METHOD = "/dodil.ignite.v1.ComputeService/GetAnonymousAccess"


class AnonymousAccess:
    """The server's answers about tokenless requests, cached briefly."""

    def __init__(self, channel: grpc.aio.Channel | None = None) -> None:
        self._channel = channel
        self._ask: grpc.aio.UnaryUnaryMultiCallable | None = None
        self._answers: dict[tuple[str, str], tuple[float, compute.GetAnonymousAccessResponse]] = {}
        self._asking: dict[tuple[str, str], asyncio.Future[compute.GetAnonymousAccessResponse]] = {}

    def bind(self, channel: grpc.aio.Channel) -> None:
        """Ask over ``channel`` (the gateway's upstream, once it is open)."""
        self._channel = channel
        self._ask = channel.unary_unary(
            _METHOD,
            request_serializer=compute.GetAnonymousAccessRequest.SerializeToString,
            response_deserializer=compute.GetAnonymousAccessResponse.FromString,
        )

    async def may_invoke(self, organization: str, app: str) -> bool | None:
        """Whether a tokenless Invoke of the app's active version is
        admitted; None when the server could not be asked."""
        answer = await self._answer(organization, app)
        return None if answer is None else answer.invoke

    async def may_call(self) -> bool | None:
        """Whether tokenless calls of any kind are admitted (a server run
        without authentication); None when the server could not be asked."""
        answer = await self._answer("", "")
        return None if answer is None else answer.all_calls

    async def _answer(
        self, organization: str, app: str
    ) -> compute.GetAnonymousAccessResponse | None:
        key = (organization, app)
        now = time.monotonic()
        cached = self._answers.get(key)
        if cached is not None and now - cached[0] < CACHE_SECS:
            return cached[1]
        pending = self._asking.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(organization, app))
            self._asking[key] = pending
            pending.add_done_callback(lambda _: self._asking.pop(key, None))
        try:
            answer = await asyncio.shield(pending)
        except (TimeoutError, grpc.aio.AioRpcError):
            return None
        if len(self._answers) >= MAX_CACHED:
            self._answers.clear()
        self._answers[key] = (time.monotonic(), answer)
        return answer

    async def _fetch(self, organization: str, app: str) -> compute.GetAnonymousAccessResponse:
        if self._ask is None:
            raise TimeoutError("the gateway's channel is not open")
        request = compute.GetAnonymousAccessRequest(organization_name=organization, app_name=app)
        answer: compute.GetAnonymousAccessResponse = await self._ask(request, timeout=ASK_TIMEOUT_S)
        return answer
