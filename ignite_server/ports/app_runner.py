"""The running side of apps, as the lifecycle and the API see it.

``AppRunner`` is implemented by ``core/activator.py`` on top of a pod backend;
the lifecycle has it make a version ready before it takes traffic (the
readiness gate), tells it when traffic must move (publish, rollback, a
traffic split, delete), and
the API asks it to invoke and to report what really runs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Collection
from dataclasses import dataclass
from typing import Protocol

from ignite_server.domain.models import (
    DeploymentState,
    InvocationRequest,
    ResponseFrame,
    RunTarget,
)


@dataclass(frozen=True)
class DeploymentStatus:
    """What runs for an app right now."""

    #: None when nothing was ever started (the lifecycle then reports CREATED
    #: or COLD from the stored state).
    state: DeploymentState | None
    ready_replicas: int = 0
    message: str = ""


class AppRunner(Protocol):
    def invoke(
        self, target: RunTarget, request: InvocationRequest, execution_id: str
    ) -> AsyncGenerator[ResponseFrame, None]:
        """Run one invocation: yields one ResponseHead, then ResponseChunks,
        then one ResponseTrailer. Holds the request while a pod starts.

        A consumer that stops reading before the trailer closes the
        generator (``contextlib.aclosing``): the invocation is then cut off
        like a timed-out one, since its handler may still be running.

        Raises core.errors: ResourceExhausted (queue full), Unavailable
        (activation failed or past its deadline), DeadlineExceeded (the
        handler ran past timeout_secs).
        """
        ...

    def status(self, app_id: str) -> DeploymentStatus:
        """What runs for ``app_id`` ("org/name")."""
        ...

    async def retire(self, app_id: str, keep_version: int | Collection[int] | None) -> None:
        """Drain and stop the app's pods of every version but ``keep_version``
        (or the versions given; None: all of them, as on delete). Requests
        in flight finish first."""
        ...

    async def prepare(self, target: RunTarget, timeout_secs: float) -> None:
        """Return once a pod of ``target`` answers its health check (starting
        one if none runs). Raises Unavailable with the pod's reason when it
        cannot start or is not ready within ``timeout_secs``."""
        ...

    async def warm(self, target: RunTarget) -> None:
        """Start ``target``'s ``reserved_capacity`` pods ahead of traffic."""
        ...

    async def close(self) -> None:
        """Stop every pod."""
        ...
