"""Moving an app's traffic: after a publish, a rollback, a change of the
settings pods start with, or a delete, new requests go to what the app now
is at once, the old pods drain in the background, and the new version's
reserved capacity starts."""

from __future__ import annotations

from ignite_server.core.run_targets import RunTargets
from ignite_server.domain.models import App
from ignite_server.ports.app_runner import AppRunner


class Rollout:
    """Moves traffic between an app's versions (and pod settings)."""

    def __init__(self, runner: AppRunner | None, targets: RunTargets) -> None:
        self._runner = runner
        self._targets = targets

    async def moved(self, app: App, version: int | None) -> None:
        """``app`` is now served by ``version`` (None: by pods started anew):
        drain the rest, start the new version's reserved capacity."""
        self._targets.forget(app.organization, app.name)
        if self._runner is None:
            return
        await self._runner.retire(app.id, keep_version=version)
        if version and app.scaling.reserved_capacity:
            await self._runner.warm(await self._targets.resolve(app.organization, app.name))

    async def removed(self, organization: str, name: str) -> None:
        """The app is gone: nothing of it serves any more."""
        self._targets.forget(organization, name)
        if self._runner is not None:
            await self._runner.retire(f"{organization}/{name}", keep_version=None)
