"""An app's versions (seed 001): the draft compiled and published into
version N (1, 2, …, immutable), listed, read, and rolled back to.

Builds run outside transactions (they can take minutes) and are recorded
afterwards only if the draft still holds the code that was built; publish
then re-checks the draft's code hash inside its transaction, so a SaveDraft
racing a PublishDraft can never publish code nobody built.
"""

from __future__ import annotations

import time

import structlog

from ignite_server.core.app_views import AppViews
from ignite_server.core.capacity import PodCapacity, check_app_fits
from ignite_server.core.draft_builds import DraftBuilds
from ignite_server.core.paging import decode_token, encode_token
from ignite_server.core.rollout import Rollout
from ignite_server.core.validation import check_app_ref, check_page_size, check_version
from ignite_server.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from ignite_server.domain.models import AppView, Page, Version
from ignite_server.ports.app_store import AppStore

log = structlog.get_logger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Versions:
    """Compiles, publishes, lists and rolls back an app's versions."""

    def __init__(
        self,
        store: AppStore,
        drafts: DraftBuilds,
        rollout: Rollout,
        views: AppViews,
        capacity: PodCapacity | None = None,
    ) -> None:
        self._store = store
        self._capacity = capacity
        self._drafts = drafts
        self._rollout = rollout
        self._views = views

    async def compile_draft(self, organization: str, name: str) -> Version:
        check_app_ref(organization, name)
        draft = await self._store.get_version(organization, name, 0)
        return await self._drafts.build(draft)

    async def publish_draft(self, organization: str, name: str) -> tuple[Version, AppView]:
        check_app_ref(organization, name)
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
        # A version whose pods (or reserved pods) cannot run is refused
        # before it takes traffic.
        await check_app_fits(
            self._capacity, self._store, await self._store.get_app(organization, name)
        )
        version, app = await self._store.publish(
            organization, name, draft.code_hash, draft.artifact_digest, _now_ms()
        )
        log.info("draft.published", app=app.id, version=version.version)
        await self._rollout.moved(app, version.version)
        return version, self._views.view(app)

    async def list_versions(
        self, organization: str, name: str, page_size: int, page_token: str
    ) -> Page[Version]:
        check_app_ref(organization, name)
        limit = check_page_size(page_size)
        token = decode_token(page_token)
        before = int(token) if token.isdigit() else 0
        versions = await self._store.list_versions(organization, name, before, limit + 1)
        next_token = encode_token(str(versions[limit - 1].version)) if len(versions) > limit else ""
        return Page(versions[:limit], next_token)

    async def get_version(self, organization: str, name: str, version: int) -> Version:
        check_app_ref(organization, name)
        check_version(version)
        return await self._store.get_version(organization, name, version)

    async def rollback(self, organization: str, name: str, version: int) -> AppView:
        check_app_ref(organization, name)
        check_version(version)
        if version <= 0:
            raise InvalidArgument(
                "version must be a published version (1 or more)",
                reason="INVALID_VERSION",
                metadata={"field": "version"},
            )
        app = await self._store.rollback(organization, name, version, _now_ms())
        log.info("app.rolled_back", app=app.id, version=version)
        await self._rollout.moved(app, version)
        return self._views.view(app)
