"""An app's versions (seed 001): the draft compiled and published into
version N (1, 2, …, immutable code plus settings), listed, read, and rolled
back to.

Builds run outside transactions (they can take minutes) and are recorded
afterwards only if the draft still holds the code that was built; publish
then re-checks the draft's code hash inside its transaction, so a SaveDraft
racing a PublishDraft can never publish code nobody built.

Publishing (docs/rollouts.md): the draft's code and the app's settings are
snapshotted into version N, STARTING; unless forced, a snapshot equal to the
active version makes nothing and answers with the active version. Version N
is then made ready (readiness.py): ready, it becomes ACTIVE with all of the
traffic (or, with a rollout policy, READY with the first step's share);
not ready, it is recorded FAILED with the reason and nothing else changes.
A settings change of a published app (apps.py) makes a version the same way
from the active version's code. Rolling back makes the chosen version ready
again first (its pods may be gone) and restores its settings as the app's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog

from ignite_server.core.app_locks import AppLocks
from ignite_server.core.app_views import AppViews
from ignite_server.core.capacity import PodCapacity, check_app_fits
from ignite_server.core.draft_builds import DraftBuilds
from ignite_server.core.gradual_rollouts import GradualRollouts, check_policy
from ignite_server.core.paging import decode_token, encode_token
from ignite_server.core.readiness import ReadinessGate
from ignite_server.core.rollout import Rollout
from ignite_server.core.run_targets import RunTargets, check_servable
from ignite_server.core.settings import app_wide, changed_settings, check_mask
from ignite_server.core.validation import check_app_ref, check_page_size, check_version
from ignite_server.domain.errors import FailedPrecondition, IgniteError, InvalidArgument, NotFound
from ignite_server.domain.models import (
    App,
    AppView,
    Page,
    RolloutPolicy,
    Version,
    VersionSettings,
    VersionStatus,
)
from ignite_server.ports.app_store import AppStore, NewVersion

log = structlog.get_logger(__name__)

#: Longest publish message kept with a version.
MAX_MESSAGE_CHARS = 1000
#: Beyond the readiness bound, how old a STARTING version must be before the
#: next publish of its app marks it FAILED (its server stopped mid-gate).
ABANDONED_SLACK_SECS = 10


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Published:
    """What a publish did."""

    version: Version
    view: AppView
    #: Nothing changed: ``version`` is the active one, no version was made.
    unchanged: bool = False


class Versions:
    """Compiles, publishes, lists and rolls back an app's versions."""

    def __init__(
        self,
        store: AppStore,
        drafts: DraftBuilds,
        mover: Rollout,
        views: AppViews,
        targets: RunTargets,
        gate: ReadinessGate,
        rollouts: GradualRollouts,
        locks: AppLocks,
        capacity: PodCapacity | None = None,
    ) -> None:
        self._store = store
        self._capacity = capacity
        self._drafts = drafts
        self._mover = mover
        self._views = views
        self._targets = targets
        self._gate = gate
        self._rollouts = rollouts
        self._locks = locks

    async def compile_draft(self, organization: str, name: str) -> Version:
        check_app_ref(organization, name)
        draft = await self._store.get_version(organization, name, 0)
        return await self._drafts.build(draft)

    async def publish_draft(
        self,
        organization: str,
        name: str,
        *,
        published_by: str = "",
        message: str = "",
        force: bool = False,
        rollout: RolloutPolicy | None = None,
        changes: Mapping[str, Any] | None = None,
        mask: Iterable[str] = (),
    ) -> Published:
        """Publish the draft (see the module docstring); ``changes`` for the
        fields in ``mask`` (UpdateApp's) go with it: the version snapshots
        them, and the app keeps them once the version is ready."""
        check_app_ref(organization, name)
        _check_message(message)
        policy = check_policy(rollout) if rollout is not None else None
        paths = check_mask(mask) if list(mask) else []
        try:
            draft = await self._store.get_version(organization, name, 0)
        except NotFound as err:
            if err.reason != "DRAFT_NOT_FOUND":
                raise
            raise FailedPrecondition(
                f"app {organization}/{name} has no draft to publish; save one first",
                reason="NO_DRAFT",
                metadata={"app_id": f"{organization}/{name}"},
            ) from None
        draft = await self._drafts.current(draft, publishing=True)
        async with self._locks.hold(organization, name):
            app = await self._store.get_app(organization, name)
            update = changed_settings(app, changes or {}, paths) if paths else {}
            # A version whose pods (or reserved pods) cannot run is refused
            # before it is made.
            await check_app_fits(self._capacity, self._store, replace(app, **update))
            new = NewVersion(
                source=0,
                code_hash=draft.code_hash,
                artifact_digest=draft.artifact_digest,
                settings=replace(app, **update).version_settings,
                published_by=published_by,
                message=message,
                force=force,
                abandoned_before_ms=self._abandoned_before_ms(),
            )
            version, unchanged = await self._store.create_version(
                organization, name, new, _now_ms()
            )
            if unchanged:
                log.info("draft.unchanged", app=app.id, version=version.version)
                if app_wide(update):
                    app = await self._store.update_app(
                        organization, name, {**app_wide(update), "updated_at_ms": _now_ms()}
                    )
                view = await self._rollouts.shown(self._views.view(app))
                return Published(version, view, unchanged=True)
            await self._make_ready(app, version)
            if app_wide(update):
                app = await self._store.update_app(
                    organization, name, {**app_wide(update), "updated_at_ms": _now_ms()}
                )
            if policy is not None and app.active_version:
                app = await self._rollouts.begin(app, version.version, policy)
            else:
                await self._rollouts.cancel(app, f"version {version.version} was published")
                app = await self._store.activate(
                    organization, name, version.version, _now_ms(), only_if_newer=True
                )
            await self._mover.moved(app)
        version = await self._store.get_version(organization, name, version.version)
        log.info("draft.published", app=app.id, version=version.version, rollout=policy is not None)
        return Published(version, await self._rollouts.shown(self._views.view(app)))

    async def publish_settings(
        self, app: App, settings: VersionSettings, published_by: str
    ) -> Version | None:
        """A version of the active version's code with new ``settings``,
        made ready (the caller holds the app's lock and activates it); None
        when the settings are the active version's already, but for scaling
        (which changes in place)."""
        active = await self._store.get_version(app.organization, app.name, app.active_version)
        if active.settings is not None and (
            replace(settings, scaling=active.settings.scaling) == active.settings
        ):
            return None  # scaling alone applies in place to the active version
        new = NewVersion(
            source=active.version,
            code_hash=active.code_hash,
            artifact_digest=active.artifact_digest,
            settings=settings,
            published_by=published_by,
            message=f"settings changed (from version {active.version})",
            abandoned_before_ms=self._abandoned_before_ms(),
        )
        version, unchanged = await self._store.create_version(
            app.organization, app.name, new, _now_ms()
        )
        if unchanged:
            return None
        await self._make_ready(app, version)
        return version

    def _abandoned_before_ms(self) -> int:
        """Publishes of an app take turns (its lock), so a STARTING version
        older than the readiness bound (and some slack) has no
        publish waiting for it any more."""
        return _now_ms() - int((self._gate.timeout_secs + ABANDONED_SLACK_SECS) * 1000)

    async def _make_ready(self, app: App, version: Version) -> None:
        """Pass ``version`` (STARTING) through the readiness gate: READY, or
        FAILED with the reason (and the error raised)."""
        try:
            await self._gate.ready(self._targets.target_of(app, version), app.active_version)
        except IgniteError as err:
            await self._store.finish_start(
                app.organization, app.name, version.version, VersionStatus.FAILED, err.message
            )
            # The failed version's pods (if any started) go; what served stays.
            await self._mover.moved(app)
            raise
        await self._store.finish_start(
            app.organization, app.name, version.version, VersionStatus.READY
        )

    async def list_versions(
        self, organization: str, name: str, page_size: int, page_token: str
    ) -> tuple[Page[Version], App]:
        """One page of versions, with the app (whose split and tags say
        each version's share and tags)."""
        check_app_ref(organization, name)
        limit = check_page_size(page_size)
        token = decode_token(page_token)
        before = int(token) if token.isdigit() else 0
        versions = await self._store.list_versions(organization, name, before, limit + 1)
        app = await self._store.get_app(organization, name)
        next_token = encode_token(str(versions[limit - 1].version)) if len(versions) > limit else ""
        return Page(versions[:limit], next_token), app

    async def get_version(self, organization: str, name: str, version: int) -> tuple[Version, App]:
        check_app_ref(organization, name)
        check_version(version)
        found = await self._store.get_version(organization, name, version)
        return found, await self._store.get_app(organization, name)

    async def rollback(self, organization: str, name: str, version: int) -> AppView:
        check_app_ref(organization, name)
        check_version(version)
        if version <= 0:
            raise InvalidArgument(
                "version must be a published version (1 or more)",
                reason="INVALID_VERSION",
                metadata={"field": "version"},
            )
        async with self._locks.hold(organization, name):
            app = await self._store.get_app(organization, name)
            target = await self._store.get_version(organization, name, version)
            check_servable(target)
            await self._gate.ready(self._targets.target_of(app, target), app.active_version)
            await self._rollouts.cancel(app, f"the app was rolled back to version {version}")
            app = await self._store.activate(organization, name, version, _now_ms())
            await self._mover.moved(app)
        log.info("app.rolled_back", app=app.id, version=version)
        return await self._rollouts.shown(self._views.view(app))


def _check_message(message: str) -> None:
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidArgument(
            f"message is longer than {MAX_MESSAGE_CHARS} characters",
            reason="MESSAGE_TOO_LONG",
            metadata={"field": "message"},
        )
