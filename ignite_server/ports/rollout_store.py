"""The port for gradual rollouts: one per app, the running one or the last.

A running rollout is driven by one server at a time under a lease
(``claim``); every change is conditional on the rollout still running (and
for a step, on the step it was decided from), so a publish, rollback or
traffic change that ends it meanwhile always wins.
"""

from __future__ import annotations

from typing import Protocol

from ignite_server.domain.models import RolloutState, RolloutStatus


class RolloutStore(Protocol):
    async def put(self, status: RolloutStatus) -> None:
        """Store ``status`` as the app's rollout, replacing the last one."""
        ...

    async def get(self, organization: str, name: str) -> RolloutStatus | None: ...

    async def claim(self, owner: str, now_ms: int, lease_ms: int) -> list[RolloutStatus]:
        """Running rollouts no other live server holds, now leased to ``owner``."""
        ...

    async def advance(
        self,
        organization: str,
        name: str,
        *,
        from_step: int,
        step: int,
        decision: str,
        step_started_at_ms: int,
        now_ms: int,
    ) -> bool:
        """Move a running rollout from step ``from_step`` to ``step``; False
        when it is no longer there."""
        ...

    async def finish(
        self, organization: str, name: str, state: RolloutState, decision: str, now_ms: int
    ) -> RolloutStatus | None:
        """End the app's running rollout in ``state``; None when none runs."""
        ...

    async def release(self, owner: str) -> None:
        """Give up ``owner``'s leases (a server stopping)."""
        ...
