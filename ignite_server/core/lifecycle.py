"""The app lifecycle of seed 001: create → save draft → [compile] → publish
→ rollback, and delete.

Each step is one store transaction. Builds run outside transactions (they
can take minutes) and are recorded afterwards only if the draft still holds
the code that was built; publish then re-checks the draft's code hash inside
its transaction, so a SaveDraft racing a PublishDraft can never publish code
nobody built.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, fields, replace
from typing import Any

import structlog

from ignite_server.core import archives, defaults, requirements
from ignite_server.core.builder import Builder
from ignite_server.core.logs import LogService
from ignite_server.core.paging import decode_token, encode_token
from ignite_server.core.validation import (
    check_app_ref,
    check_name,
    check_new_app_name,
    check_page_size,
    check_version,
    normalize_settings,
)
from ignite_server.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from ignite_server.domain.models import (
    App,
    AppSettings,
    AppView,
    CodeKind,
    CodeUpload,
    DeploymentMode,
    DeploymentState,
    LogEntry,
    LogStream,
    Page,
    Resources,
    RunTarget,
    RuntimeKind,
    UploadKind,
    Version,
    VersionStatus,
)
from ignite_server.ports.app_runner import AppRunner
from ignite_server.ports.app_store import AppStore, BuildOutcome, DraftRecord
from ignite_server.ports.blob_store import BlobStore

log = structlog.get_logger(__name__)

#: AppMeta fields UpdateApp may change (the update_mask vocabulary).
UPDATABLE_FIELDS = frozenset(
    {
        "description", "env", "resource_tier", "limits", "scaling", "storage_mode",
        "ttl_seconds", "input_schema", "output_schema", "mcp_enabled", "max_concurrency",
        "allow_unauthenticated", "runtime",
    }
)  # fmt: skip
#: How long a resolved run target is reused. Changes made through this server
#: apply at once (its cache entries are dropped); changes made through another
#: server of the same platform reach this one within this many seconds.
TARGET_CACHE_SECS = 2.0
TARGET_CACHE_SIZE = 10_000
#: Fields a pod is started with: changing one drains the running pods.
_POD_FIELDS = frozenset({"env", "resource_tier", "limits", "max_concurrency", "runtime"})
#: AppMeta field name → AppSettings attribute, where they differ.
_SETTING_OF_FIELD = {"resource_tier": "tier"}


@dataclass(frozen=True)
class PublicUrls:
    """How direct app URLs are spelled: ``<scheme>://<app>-<org>.<domain>[:port]``."""

    domain: str = "ignite.localhost"
    scheme: str = "http"
    port: int = 8080

    def for_app(self, organization: str, name: str) -> list[str]:
        default_port = {"http": 80, "https": 443}.get(self.scheme)
        suffix = "" if self.port == default_port else f":{self.port}"
        return [f"{self.scheme}://{name}-{organization}.{self.domain}{suffix}"]


def _now_ms() -> int:
    return int(time.time() * 1000)


def resources_of(app: App) -> Resources:
    """Effective per-pod resources: the tier, overridden by explicit limits."""
    memory, cpu = defaults.TIERS[app.tier]
    return Resources(
        memory_mb=app.limits.memory_mb or memory,
        cpu_millicores=app.limits.cpu_millicores or cpu,
        timeout_secs=app.limits.timeout_secs or defaults.DEFAULT_TIMEOUT_SECS,
    )


def settings_of(app: App) -> AppSettings:
    """The caller-chosen part of a stored app."""
    return AppSettings(**{f.name: getattr(app, f.name) for f in fields(AppSettings)})


class Lifecycle:
    """Creates, changes and publishes apps; resolves what an invocation runs."""

    def __init__(
        self,
        store: AppStore,
        blobs: BlobStore,
        builder: Builder,
        runner: AppRunner | None,
        urls: PublicUrls,
        logs: LogService | None = None,
    ) -> None:
        self._store = store
        self._logs = logs
        self._blobs = blobs
        self._builder = builder
        self._runner = runner
        self._urls = urls
        self._compiling: set[str] = set()
        # (org, name, version asked for) → (expiry, target): spares every
        # invocation the store lookups of its app and version.
        self._targets: dict[tuple[str, str, int], tuple[float, RunTarget]] = {}

    # --- apps -----------------------------------------------------------

    def _forget(self, organization: str, name: str) -> None:
        """Drop cached run targets of an app this server just changed."""
        for key in [k for k in self._targets if k[:2] == (organization, name)]:
            del self._targets[key]

    async def _traffic_moved(self, app: App, version: int | None) -> None:
        """After a change of what serves ``app``: drain the old pods, start
        the new version's reserved capacity."""
        self._forget(app.organization, app.name)
        if self._runner is None:
            return
        await self._runner.retire(app.id, keep_version=version)
        if version and app.scaling.reserved_capacity:
            await self._runner.warm(await self.run_target(app.organization, app.name))

    def view(self, app: App) -> AppView:
        """GetApp's picture: stored settings plus what really runs."""
        state = DeploymentState.CREATED if app.active_version == 0 else DeploymentState.COLD
        ready, message = 0, ""
        if self._runner is not None and app.active_version:
            status = self._runner.status(app.id)
            if status.state is not None:
                state = status.state
            ready, message = status.ready_replicas, status.message
        if app.id in self._compiling:
            state = DeploymentState.COMPILING
        urls = self._urls.for_app(app.organization, app.name) if app.active_version else []
        return AppView(app, state, ready, message, urls)

    async def create_app(
        self, organization: str, name: str, settings: AppSettings, code: CodeUpload | None
    ) -> AppView:
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
        stored = await self._store.create_app(app, draft)
        log.info("app.created", app=stored.id)
        return self.view(stored)

    async def stored_app(self, organization: str, name: str) -> App | None:
        """The stored app, or None if it is gone (no view, no validation)."""
        try:
            return await self._store.get_app(organization, name)
        except NotFound:
            return None

    async def get_app(self, organization: str, name: str) -> AppView:
        check_app_ref(organization, name)
        return self.view(await self._store.get_app(organization, name))

    async def list_apps(self, organization: str, page_size: int, page_token: str) -> Page[AppView]:
        check_name(organization, "organization_name")
        limit = check_page_size(page_size)
        apps = await self._store.list_apps(organization, decode_token(page_token), limit + 1)
        token = encode_token(apps[limit - 1].name) if len(apps) > limit else ""
        return Page([self.view(a) for a in apps[:limit]], token)

    async def update_app(
        self, organization: str, name: str, changes: dict[str, Any], mask: Iterable[str]
    ) -> AppView:
        """Apply ``changes`` (AppMeta field name → new value) for the fields in ``mask``."""
        check_app_ref(organization, name)
        mask = list(mask)
        if not mask:
            raise InvalidArgument(
                "update_mask names no field to change",
                reason="EMPTY_UPDATE_MASK",
                metadata={"field": "update_mask"},
            )
        unknown = sorted(set(mask) - UPDATABLE_FIELDS)
        if unknown:
            raise InvalidArgument(
                f"update_mask names fields that cannot be changed: {', '.join(unknown)}",
                reason="FIELD_NOT_UPDATABLE",
                metadata={"field": "update_mask", "fields": ",".join(unknown)},
            )
        current = await self._store.get_app(organization, name)
        settings = replace(
            settings_of(current),
            **{_SETTING_OF_FIELD.get(f, f): changes[f] for f in mask},
        )
        settings = normalize_settings(settings)
        update = {
            _SETTING_OF_FIELD.get(f, f): getattr(settings, _SETTING_OF_FIELD.get(f, f))
            for f in mask
        }
        update["updated_at_ms"] = _now_ms()
        stored = await self._store.update_app(organization, name, update)
        self._forget(organization, name)
        if stored.active_version and (_POD_FIELDS | {"scaling"}) & set(mask):
            # New env, limits or concurrency apply to pods started from now
            # on: drain the current ones so the next request gets a fresh pod.
            await self._traffic_moved(
                stored, None if _POD_FIELDS & set(mask) else stored.active_version
            )
        log.info("app.updated", app=stored.id, fields=",".join(sorted(mask)))
        return self.view(stored)

    async def delete_app(self, organization: str, name: str) -> None:
        check_app_ref(organization, name)
        await self._store.delete_app(organization, name)
        self._forget(organization, name)
        if self._runner is not None:
            await self._runner.retire(f"{organization}/{name}", keep_version=None)
        log.info("app.deleted", app=f"{organization}/{name}")

    # --- drafts ---------------------------------------------------------

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
        if code.kind in (UploadKind.ARCHIVE, UploadKind.IMAGE_FROM_CODE):
            archives.check(code.data)
        if runtime is not None and runtime.kind == RuntimeKind.PYTHON:
            requirements.check_upload(code)
        if code.kind == UploadKind.PREBUILT_IMAGE and not code.image_ref:
            raise InvalidArgument(
                "image.prebuilt.image_ref is required",
                reason="IMAGE_REF_REQUIRED",
                metadata={"field": "code.image.prebuilt.image_ref"},
            )
        code_hash = self._blobs.put_code(code.data if code.data else code.image_ref.encode())
        return DraftRecord(
            code_hash=code_hash,
            code_size_bytes=len(code.data),
            upload_kind=code.kind,
            runtime=runtime if code.kind in (UploadKind.SOURCE_FILE, UploadKind.ARCHIVE) else None,
            build_args=dict(code.build_args),
            image_ref=code.image_ref,
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

    async def _build(self, draft: Version) -> Version:
        """Build the draft and record the outcome; return the draft after it."""
        app_id = f"{draft.organization}/{draft.app}"
        self._require_runnable(draft)
        self._compiling.add(app_id)
        try:
            result = await self._builder.build(draft)
        finally:
            self._compiling.discard(app_id)
        self._log_build(draft, result.log, result.error)
        outcome = BuildOutcome(
            code_hash=draft.code_hash,
            status=VersionStatus.DRAFT if result.ok else VersionStatus.FAILED,
            artifact_digest=result.digest if result.ok else "",
            error=result.error,
            build_log=result.log,
        )
        recorded = await self._store.record_build(draft.organization, draft.app, 0, outcome)
        if recorded is None:
            raise FailedPrecondition(
                "the draft changed while it was being built; compile again",
                reason="DRAFT_CHANGED",
                metadata={"app_id": app_id},
            )
        return recorded

    def _log_build(self, draft: Version, output: str, error: str) -> None:
        """The build's output joins the app's logs (stream BUILD, version 0)."""
        if self._logs is None:
            return
        now = _now_ms()
        lines = output.splitlines() + ([f"build failed: {error}"] if error else [])
        for line in lines:
            self._logs.emit(
                LogEntry(now, draft.organization, draft.app, 0, "", LogStream.BUILD, line)
            )

    def _require_runnable(self, version: Version) -> None:
        if version.code_kind != CodeKind.SDK:
            raise FailedPrecondition(
                "image apps need the Kubernetes pod backend; this platform runs managed"
                " runtimes (python, go, rust, deno) only",
                reason="IMAGE_MODE_UNSUPPORTED",
                metadata={"app_id": f"{version.organization}/{version.app}"},
            )

    async def compile_draft(self, organization: str, name: str) -> Version:
        check_app_ref(organization, name)
        draft = await self._store.get_version(organization, name, 0)
        return await self._build(draft)

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
        self._require_runnable(draft)
        digest = self._builder.digest(draft)
        if self._builder.needs_explicit_compile(draft):
            if draft.artifact_digest != digest or not self._builder.is_built(draft):
                raise FailedPrecondition(
                    f"the {draft.runtime.kind if draft.runtime else ''} draft must be compiled"
                    " before it is published: run CompileDraft (dodil ignite draft compile)",
                    reason="DRAFT_NOT_COMPILED",
                    metadata={"app_id": f"{organization}/{name}"},
                )
        elif not self._builder.is_built(draft) or draft.artifact_digest != digest:
            draft = await self._build(draft)
        if draft.status == VersionStatus.FAILED:
            raise FailedPrecondition(
                f"the draft failed to build: {draft.error}",
                reason="BUILD_FAILED",
                metadata={"app_id": f"{organization}/{name}"},
            )
        version, app = await self._store.publish(
            organization, name, draft.code_hash, digest, _now_ms()
        )
        log.info("draft.published", app=app.id, version=version.version)
        await self._traffic_moved(app, version.version)
        return version, self.view(app)

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

    # --- versions -------------------------------------------------------

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
        await self._traffic_moved(app, version)
        return self.view(app)

    # --- invocation -----------------------------------------------------

    async def run_target(
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
            chosen = await self._store.get_version(organization, name, 0)
            self._require_runnable(chosen)
            if not self._builder.is_built(chosen) or chosen.artifact_digest != self._builder.digest(
                chosen
            ):
                if self._builder.needs_explicit_compile(chosen):
                    raise FailedPrecondition(
                        "the draft is not compiled; run CompileDraft first",
                        reason="DRAFT_NOT_COMPILED",
                        metadata={"app_id": app.id},
                    )
                chosen = await self._build(chosen)
            if chosen.status == VersionStatus.FAILED:
                raise FailedPrecondition(
                    f"the draft failed to build: {chosen.error}",
                    reason="BUILD_FAILED",
                    metadata={"app_id": app.id},
                )
        else:
            number = version or app.active_version
            if number == 0:
                raise await self._not_published(app)
            chosen = await self._store.get_version(organization, name, number)
            self._require_runnable(chosen)
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
            artifact_dir=self._builder.artifact_path(chosen.artifact_digest),
        )
        if not draft:
            if len(self._targets) >= TARGET_CACHE_SIZE:
                self._targets.clear()
            self._targets[key] = (time.monotonic() + TARGET_CACHE_SECS, target)
        return target
