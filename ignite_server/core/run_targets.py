"""What an invocation runs: the app's active version, a given published
version, or its compiled draft, with the resources and artifact its pods
start from.

Resolving costs two store reads, so resolved targets are kept for a moment
(TARGET_CACHE_SECS); a change made through this server forgets the app's
entries at once (rollout.py), and a change made through another server of
the same platform is seen within that moment.
"""

from __future__ import annotations

import time

from ignite_server.core.artifacts import Artifacts
from ignite_server.core.draft_builds import DraftBuilds
from ignite_server.core.settings import resources_of
from ignite_server.core.validation import check_app_ref, check_version
from ignite_server.domain.errors import FailedPrecondition, NotFound
from ignite_server.domain.models import App, RunTarget, VersionStatus, host_label
from ignite_server.ports.app_store import AppStore

#: How long a resolved run target is reused. Changes made through this server
#: apply at once (its cache entries are dropped); changes made through another
#: server of the same platform reach this one within this many seconds.
TARGET_CACHE_SECS = 2.0
TARGET_CACHE_SIZE = 10_000


class RunTargets:
    """Resolves (and briefly remembers) what invocations of an app run."""

    def __init__(self, store: AppStore, artifacts: Artifacts, drafts: DraftBuilds) -> None:
        self._store = store
        self._artifacts = artifacts
        self._drafts = drafts
        # (org, name, version asked for) → (expiry, target): spares every
        # invocation the store lookups of its app and version.
        self._targets: dict[tuple[str, str, int], tuple[float, RunTarget]] = {}

    def forget(self, organization: str, name: str) -> None:
        """Drop cached targets of an app this server just changed."""
        for key in [k for k in self._targets if k[:2] == (organization, name)]:
            del self._targets[key]

    def forget_host(self, label: str) -> None:
        """Drop cached targets of every app whose host label is ``label``
        (a dispute over it just ended)."""
        for key in [k for k in self._targets if host_label(k[0], k[1]) == label]:
            del self._targets[key]

    async def resolve(
        self, organization: str, name: str, version: int = 0, draft: bool = False
    ) -> RunTarget:
        """What an invocation runs: the active version, a given published
        version, or (``draft``) the compiled draft."""
        check_app_ref(organization, name)
        check_version(version)
        key = (organization, name, version)
        if not draft:
            cached = self._targets.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
        app = await self._store.get_app(organization, name)
        if draft:
            chosen = await self._drafts.current(
                await self._store.get_version(organization, name, 0)
            )
        else:
            number = version or app.active_version
            if number == 0:
                raise await self._not_published(app)
            chosen = await self._store.get_version(organization, name, number)
            self._artifacts.require_runnable(chosen)
            if chosen.status == VersionStatus.FAILED:
                raise FailedPrecondition(
                    f"version {number} failed to build",
                    reason="VERSION_FAILED",
                    metadata={"app_id": app.id},
                )
        target = RunTarget(
            app=app,
            version=chosen,
            resources=resources_of(app),
            artifact_dir=self._artifacts.artifact_path(chosen.artifact_digest),
        )
        if not draft:
            if len(self._targets) >= TARGET_CACHE_SIZE:
                self._targets.clear()
            self._targets[key] = (time.monotonic() + TARGET_CACHE_SECS, target)
        return target

    async def _not_published(self, app: App) -> FailedPrecondition:
        """Why an app with no published version cannot run, pointing at its
        draft's failed build when that is the reason."""
        try:
            draft = await self._store.get_version(app.organization, app.name, 0)
        except NotFound:
            draft = None
        cli_id = f"{app.organization}:{app.name}"
        if draft is not None and draft.status == VersionStatus.FAILED:
            return FailedPrecondition(
                f"app {app.id} has no published version: its draft failed to build"
                f" ({draft.error or 'see the build log'}); the build log is in"
                f" 'dodil ignite draft get {cli_id}' and 'dodil ignite logs {cli_id}'",
                reason="NOT_PUBLISHED",
                metadata={"app_id": app.id, "draft_status": "FAILED"},
            )
        return FailedPrecondition(
            f"app {app.id} has no published version; publish the draft first",
            reason="NOT_PUBLISHED",
            metadata={"app_id": app.id},
        )
