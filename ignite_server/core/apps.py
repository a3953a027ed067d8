"""Apps (seed 001): created with their settings, read as views of what
runs, changed through an update mask, deleted; and their draft (version 0),
which SaveDraft fills with checked, content-addressed code. Each step is one
store transaction. Versions (compile, publish, rollback) are versions.py.

A published app's env, tier, limits and concurrency are its active
version's: changing one makes a new version of the active version's code
with the new settings, through the readiness gate (versions.py), as Cloud
Run makes a revision; if it does not become ready, nothing changes. Scaling
applies in place to the version serving now. The other settings are the
app's alone (docs/rollouts.md has the table).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import fields, replace
from typing import Any

import structlog

from ignite_server.core import defaults, image_sources
from ignite_server.core.app_locks import AppLocks
from ignite_server.core.app_views import AppViews
from ignite_server.core.capacity import PodCapacity, check_app_fits
from ignite_server.core.gradual_rollouts import GradualRollouts
from ignite_server.core.paging import decode_token, encode_token
from ignite_server.core.rollout import Rollout
from ignite_server.core.run_targets import RunTargets
from ignite_server.core.settings import (
    POD_FIELDS,
    VERSION_FIELDS,
    app_wide,
    changed_settings,
    check_mask,
    settings_of,
)
from ignite_server.core.validation import (
    check_app_ref,
    check_name,
    check_new_app_name,
    check_page_size,
    normalize_settings,
)
from ignite_server.core.versions import Versions
from ignite_server.domain import archives, requirements
from ignite_server.domain.errors import AlreadyExists, InvalidArgument, NotFound
from ignite_server.domain.models import (
    App,
    AppSettings,
    AppView,
    CodeKind,
    CodeUpload,
    DeploymentMode,
    Page,
    RuntimeKind,
    UploadKind,
    Version,
    VersionStatus,
)
from ignite_server.domain.principal import Principal
from ignite_server.domain.quotas import Quotas
from ignite_server.observability import metrics
from ignite_server.ports.app_store import AppStore, DraftRecord, HostConflict, HostTaken
from ignite_server.ports.blob_store import BlobStore

log = structlog.get_logger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _check_requirements(code: CodeUpload) -> None:
    """A Python archive's requirements file holds what a server-side
    install should (domain/requirements.py), or the upload is refused."""
    if code.kind != UploadKind.ARCHIVE:
        return
    content = archives.read_file(code.data, requirements.FILE_NAME, requirements.MAX_FILE_BYTES)
    if content is not None:
        requirements.check(content.decode("utf-8", "replace"))


async def stored_app(store: AppStore, organization: str, name: str) -> App | None:
    """The stored app, or None if it is gone (no view, no validation)."""
    try:
        return await store.get_app(organization, name)
    except NotFound:
        return None


class Apps:
    """Creates, reads, changes and deletes apps, and saves their drafts."""

    def __init__(
        self,
        store: AppStore,
        blobs: BlobStore,
        views: AppViews,
        targets: RunTargets,
        rollout: Rollout,
        versions: Versions,
        rollouts: GradualRollouts,
        locks: AppLocks,
        quotas: Quotas | None = None,
        capacity: PodCapacity | None = None,
    ) -> None:
        self._store = store
        self._quotas = quotas or Quotas()
        self._capacity = capacity
        self._blobs = blobs
        self._views = views
        self._targets = targets
        self._rollout = rollout
        self._versions = versions
        self._rollouts = rollouts
        self._locks = locks

    async def create_app(
        self,
        organization: str,
        name: str,
        settings: AppSettings,
        code: CodeUpload | None,
        caller: Principal | None = None,
    ) -> AppView:
        """A new app. ALREADY_EXISTS (URL_TAKEN) when its host label is
        another app's; the other app is named only to a ``caller`` who may
        see its organization."""
        check_new_app_name(organization, name)
        settings = normalize_settings(settings)
        draft = self._prepare_draft(code, settings) if code is not None else None
        now = _now_ms()
        app = App(
            organization=organization,
            name=name,
            active_version=0,
            code_kind=CodeKind.UNSPECIFIED,
            deployment_mode=DeploymentMode.UNSPECIFIED,
            image_ref="",
            created_at_ms=now,
            updated_at_ms=now,
            **{f.name: getattr(settings, f.name) for f in fields(AppSettings)},
        )
        try:
            stored = await self._store.create_app(app, draft, self._quotas.max_apps)
        except HostTaken as taken:
            raise self._url_taken(app, taken, caller) from None
        log.info("app.created", app=stored.id)
        return self._views.view(stored)

    def _url_taken(self, app: App, taken: HostTaken, caller: Principal | None) -> AlreadyExists:
        """The refusal of an app whose host label is taken, naming the app
        that has it only to a caller who may see that app's organization."""
        url = self._views.url_of(app.organization, app.name)
        holder = f"{taken.holder_organization}/{taken.holder_app}"
        if not taken.holder_app:
            whose = "disputed between apps created before host names were unique"
        elif caller is not None and caller.sees(taken.holder_organization):
            whose = f"app {holder}'s"
        else:
            whose = "another organization's app's"
        metadata = {"host": taken.label, "url": url}
        if taken.holder_app and caller is not None and caller.sees(taken.holder_organization):
            metadata["holder_app_id"] = holder
        return AlreadyExists(
            f"{url} (host label {taken.label!r}, '<app>-<org>') is already {whose} URL;"
            " choose another app name",
            reason="URL_TAKEN",
            metadata=metadata,
        )

    async def host_conflicts(self) -> list[HostConflict]:
        """The apps of host labels more than one app held when labels became
        unique (their URLs serve none of them)."""
        return await self._store.host_conflicts()

    async def report_host_conflicts(self) -> None:
        """Log every disputed host label (at start, for the operator)."""
        for conflict in await self._store.host_conflicts():
            log.warning(
                "app.host_disputed",
                host=conflict.label,
                app=f"{conflict.organization}/{conflict.app}",
                detail="its URL serves no app until all but one of the apps with this host"
                " name are deleted (dodil ignite app host-conflicts)",
            )

    async def get_app(self, organization: str, name: str) -> AppView:
        check_app_ref(organization, name)
        return await self._rollouts.shown(
            self._views.view(await self._store.get_app(organization, name))
        )

    async def list_apps(self, organization: str, page_size: int, page_token: str) -> Page[AppView]:
        check_name(organization, "organization_name")
        limit = check_page_size(page_size)
        apps = await self._store.list_apps(organization, decode_token(page_token), limit + 1)
        token = encode_token(apps[limit - 1].name) if len(apps) > limit else ""
        return Page([self._views.view(a) for a in apps[:limit]], token)

    async def update_app(
        self,
        organization: str,
        name: str,
        changes: dict[str, Any],
        mask: Iterable[str],
        *,
        changed_by: str = "",
    ) -> AppView:
        """Apply ``changes`` (AppMeta field name → new value) for the fields
        in ``mask`` (a version's settings through a new version)."""
        check_app_ref(organization, name)
        mask = check_mask(mask)
        async with self._locks.hold(organization, name):
            current = await self._store.get_app(organization, name)
            update = changed_settings(current, changes, mask)
            if current.active_version and {"scaling", "limits", "resource_tier"} & set(mask):
                # The serving version's pods must still fit with the new sizes.
                await check_app_fits(self._capacity, self._store, replace(current, **update))
            update["updated_at_ms"] = _now_ms()
            version = None
            if current.active_version and VERSION_FIELDS & set(mask):
                # Made ready before anything is stored: if it never serves,
                # the app keeps its settings and its version.
                wanted = replace(current, **update)
                version = await self._versions.publish_settings(
                    current, wanted.version_settings, changed_by
                )
            if version is not None:
                # Activating the new version sets these from its snapshot.
                update = app_wide(update)
            stored = await self._store.update_app(organization, name, update)
            self._targets.forget(organization, name)
            if version is not None:
                await self._rollouts.cancel(
                    stored, f"version {version.version} (new settings) was made active"
                )
                stored = await self._store.activate(organization, name, version.version, _now_ms())
            if stored.active_version and (POD_FIELDS | {"scaling"}) & set(mask):
                # Pods of versions no longer serving drain; a new scaling
                # reaches the serving version's pods with the next request.
                await self._rollout.moved(stored)
        log.info(
            "app.updated",
            app=stored.id,
            fields=",".join(sorted(mask)),
            version=version.version if version else stored.active_version,
        )
        return await self._rollouts.shown(self._views.view(stored))

    async def delete_app(self, organization: str, name: str) -> None:
        check_app_ref(organization, name)
        current = await self._store.get_app(organization, name)
        await self._store.delete_app(organization, name)
        await self._rollout.removed(organization, name)
        metrics.forget_app(f"{organization}/{name}")
        if current.host_disputed:
            # The store settled the dispute: the app left holds the label.
            self._targets.forget_host(current.host_label)
        log.info("app.deleted", app=f"{organization}/{name}")

    def _prepare_draft(self, code: CodeUpload, settings: AppSettings) -> DraftRecord:
        """Check an upload and store its bytes; return the draft to record."""
        runtime = code.runtime or settings.runtime
        if code.kind in (UploadKind.SOURCE_FILE, UploadKind.ARCHIVE):
            if runtime is None:
                raise InvalidArgument(
                    "compile.runtime is required (python, go, rust or deno)",
                    reason="RUNTIME_REQUIRED",
                    metadata={"field": "code.compile.runtime"},
                )
            if not code.data:
                raise InvalidArgument(
                    "the code is empty", reason="CODE_EMPTY", metadata={"field": "code"}
                )
        if len(code.data) > defaults.MAX_CODE_BYTES:
            raise InvalidArgument(
                f"code is {len(code.data)} bytes; the limit is {defaults.MAX_CODE_BYTES}",
                reason="CODE_TOO_LARGE",
                metadata={"field": "code"},
            )
        image = None
        if code.image is not None:
            image = image_sources.check_image(code.kind, code.image, code.data)
        if code.kind in (UploadKind.ARCHIVE, UploadKind.IMAGE_FROM_CODE):
            archives.check(code.data)
        if runtime is not None and runtime.kind == RuntimeKind.PYTHON:
            _check_requirements(code)
        # An image source without uploaded bytes is known by its spec (the
        # same reference at another ref or health path is other code).
        stored = code.data or json.dumps(image.to_json() if image else {}, sort_keys=True).encode()
        code_hash = self._blobs.put_code(stored)
        return DraftRecord(
            code_hash=code_hash,
            code_size_bytes=len(code.data),
            upload_kind=code.kind,
            runtime=runtime if code.kind in (UploadKind.SOURCE_FILE, UploadKind.ARCHIVE) else None,
            build_args=dict(code.build_args),
            image=image,
            status=VersionStatus.DRAFT,
        )

    async def save_draft(self, organization: str, name: str, code: CodeUpload) -> Version:
        check_app_ref(organization, name)
        app = await self._store.get_app(organization, name)
        draft = self._prepare_draft(code, settings_of(app))
        version = await self._store.save_draft(organization, name, draft, _now_ms())
        log.info("draft.saved", app=app.id, code_hash=version.code_hash)
        return version

    async def get_draft(self, organization: str, name: str) -> Version:
        check_app_ref(organization, name)
        return await self._store.get_version(organization, name, 0)
