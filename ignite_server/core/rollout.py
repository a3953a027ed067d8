"""Moving an app's pods after what serves it changed (a publish, a
rollback, a traffic split, a rollout's step, a settings change) or after a
delete: new requests go to what the app now is at once, the pods of versions
that no longer serve drain in the background, and the serving versions'
reserved capacity starts."""

from __future__ import annotations

from ignite_server.core.run_targets import RunTargets
from ignite_server.domain.models import App
from ignite_server.ports.app_runner import AppRunner


class Rollout:
    """Moves an app's pods to the versions that serve it."""

    def __init__(self, runner: AppRunner | None, targets: RunTargets) -> None:
        self._runner = runner
        self._targets = targets

    async def moved(self, app: App) -> None:
        """``app`` is now served by its active version or its split: drain
        every other version's pods (a tagged version's stay, since its URL
        keeps reaching it; they scale to zero when idle), and start the
        serving versions' reserved capacity."""
        self._targets.forget(app.organization, app.name)
        if self._runner is None:
            return
        keep = app.serving_versions | frozenset(app.tags.values())
        await self._runner.retire(app.id, keep_version=keep)
        for version in sorted(app.serving_versions):
            target = await self._targets.resolve(app.organization, app.name, version)
            if target.app.scaling.reserved_capacity:
                await self._runner.warm(target)

    async def removed(self, organization: str, name: str) -> None:
        """The app is gone: nothing of it serves any more."""
        self._targets.forget(organization, name)
        if self._runner is not None:
            await self._runner.retire(f"{organization}/{name}", keep_version=None)
