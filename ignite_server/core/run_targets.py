"""What an invocation runs: the version the app's traffic split picks (the
active one when there is no split), a version named by number or tag, or
the compiled draft, with the settings, resources and artifact its pods
start from. A published version runs with its own settings (snapshotted at
publish); the draft runs with the app's.

Resolving costs store reads, so the app (with its split and tags) and
resolved versions are kept for a moment (TARGET_CACHE_SECS); a change made
through this server forgets the app's entries at once (rollout.py), and a
change made through another server of the same platform is seen within that
moment.
"""

from __future__ import annotations

import dataclasses
import time

from ignite_server.core.artifacts import Artifacts
from ignite_server.core.draft_builds import DraftBuilds
from ignite_server.core.routing import pick_version
from ignite_server.core.settings import resources_of
from ignite_server.core.validation import check_app_ref, check_version
from ignite_server.domain.errors import FailedPrecondition, NotFound
from ignite_server.domain.models import (
    SERVABLE_STATUSES,
    App,
    RunTarget,
    Version,
    VersionStatus,
    host_label,
)
from ignite_server.ports.app_store import AppStore

#: How long a resolved run target is reused. Changes made through this server
#: apply at once (its cache entries are dropped); changes made through another
#: server of the same platform reach this one within this many seconds.
TARGET_CACHE_SECS = 2.0
TARGET_CACHE_SIZE = 10_000


def check_servable(version: Version) -> None:
    """FAILED_PRECONDITION unless ``version`` may take traffic."""
    if version.status in SERVABLE_STATUSES:
        return
    app_id = f"{version.organization}/{version.app}"
    meta = {"app_id": app_id, "version": str(version.version)}
    if version.status == VersionStatus.FAILED:
        raise FailedPrecondition(
            f"version {version.version} failed and cannot serve: {version.error or 'see its log'}",
            reason="VERSION_FAILED",
            metadata=meta,
        )
    raise FailedPrecondition(
        f"version {version.version} is not ready to serve yet",
        reason="VERSION_NOT_READY",
        metadata=meta,
    )


class RunTargets:
    """Resolves (and briefly remembers) what invocations of an app run."""

    def __init__(self, store: AppStore, artifacts: Artifacts, drafts: DraftBuilds) -> None:
        self._store = store
        self._artifacts = artifacts
        self._drafts = drafts
        # (org, name) → (expiry, app): the split and tags every request reads.
        self._apps: dict[tuple[str, str], tuple[float, App]] = {}
        # (org, name, version) → (expiry, target): spares every invocation
        # the store lookups of its version.
        self._targets: dict[tuple[str, str, int], tuple[float, RunTarget]] = {}

    def forget(self, organization: str, name: str) -> None:
        """Drop cached targets of an app this server just changed."""
        self._apps.pop((organization, name), None)
        for key in [k for k in self._targets if k[:2] == (organization, name)]:
            del self._targets[key]

    def forget_host(self, label: str) -> None:
        """Drop cached targets of every app whose host label is ``label``
        (a dispute over it just ended)."""
        for app in [k for k in self._apps if host_label(*k) == label]:
            del self._apps[app]
        for key in [k for k in self._targets if host_label(k[0], k[1]) == label]:
            del self._targets[key]

    async def resolve(
        self,
        organization: str,
        name: str,
        version: int = 0,
        draft: bool = False,
        *,
        tag: str = "",
        sticky_key: str = "",
    ) -> RunTarget:
        """What an invocation runs: a given published version, the version
        ``tag`` names, the compiled draft (``draft``), or the version the
        app's traffic split picks (``sticky_key`` keeps one caller on one)."""
        check_app_ref(organization, name)
        check_version(version)
        if draft:
            app = await self._store.get_app(organization, name)
            chosen = await self._drafts.current(
                await self._store.get_version(organization, name, 0)
            )
            return RunTarget(
                app=app,
                version=chosen,
                resources=resources_of(app),
                artifact_dir=self._artifacts.artifact_path(chosen.artifact_digest),
            )
        app = await self._app(organization, name)
        if tag:
            number = app.tags.get(tag, 0)
            if not number:
                raise NotFound(
                    f"app {app.id} has no tag {tag}",
                    reason="TAG_NOT_FOUND",
                    metadata={"app_id": app.id, "tag": tag[:64]},
                )
        else:
            number = version or pick_version(app, sticky_key)
        if number == 0:
            raise await self._not_published(app)
        key = (organization, name, number)
        cached = self._targets.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        chosen = await self._store.get_version(organization, name, number)
        self._artifacts.require_runnable(chosen)
        if chosen.status == VersionStatus.FAILED:
            check_servable(chosen)
        target = self.target_of(app, chosen)
        if len(self._targets) >= TARGET_CACHE_SIZE:
            self._targets.clear()
        self._targets[key] = (time.monotonic() + TARGET_CACHE_SECS, target)
        return target

    def target_of(self, app: App, version: Version) -> RunTarget:
        """``version`` of ``app`` as its pods run it: with its own settings."""
        settings = version.settings
        if settings is not None:
            app = dataclasses.replace(
                app,
                tier=settings.tier,
                limits=settings.limits,
                scaling=settings.scaling,
                env=settings.env,
                max_concurrency=settings.max_concurrency,
            )
        return RunTarget(
            app=app,
            version=version,
            resources=resources_of(app),
            artifact_dir=self._artifacts.artifact_path(version.artifact_digest),
        )

    async def _app(self, organization: str, name: str) -> App:
        key = (organization, name)
        cached = self._apps.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        app = await self._store.get_app(organization, name)
        if len(self._apps) >= TARGET_CACHE_SIZE:
            self._apps.clear()
        self._apps[key] = (time.monotonic() + TARGET_CACHE_SECS, app)
        return app

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
