"""The store port: durable state of apps and versions.

Every method is one transaction. Implementations raise domain errors
(NotFound, AlreadyExists, FailedPrecondition) and never leak driver errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ignite_server.domain.models import (
    App,
    ImageSpec,
    RuntimeSpec,
    UploadKind,
    Version,
    VersionStatus,
)


class HostTaken(Exception):
    """The app's host label (``<app>-<org>``) is another app's already, or
    disputed (``holder`` empty)."""

    def __init__(self, label: str, holder_organization: str, holder_app: str) -> None:
        super().__init__(label)
        self.label = label
        self.holder_organization = holder_organization
        self.holder_app = holder_app


@dataclass(frozen=True)
class HostConflict:
    """An app whose host label other apps held too when labels became unique."""

    label: str
    organization: str
    app: str
    found_at_ms: int


@dataclass(frozen=True)
class DraftRecord:
    """What SaveDraft stores in version 0."""

    code_hash: str
    code_size_bytes: int
    upload_kind: UploadKind
    runtime: RuntimeSpec | None
    build_args: Mapping[str, str]
    #: Image apps: the image branch's fields.
    image: ImageSpec | None
    status: VersionStatus


@dataclass(frozen=True)
class BuildOutcome:
    """The result of building a draft, recorded only if the draft still holds
    the code that was built (a newer SaveDraft wins)."""

    code_hash: str
    status: VersionStatus
    artifact_digest: str
    error: str
    build_log: str
    #: Image apps: the built or imported image, by digest.
    image_ref: str = ""


class AppStore(Protocol):
    async def create_app(
        self, app: App, draft: DraftRecord | None, max_apps: int | None = None
    ) -> App:
        """Store a new app (and its draft) and claim its host label, in one
        transaction: AlreadyExists for a taken name, HostTaken for a taken
        label, QUOTA_EXCEEDED (quota ``apps``) when its organization has
        ``max_apps`` already."""
        ...

    async def host_conflicts(self) -> list[HostConflict]:
        """Every app of a disputed host label, by label."""
        ...

    async def get_app(self, organization: str, name: str) -> App: ...

    async def list_apps(self, organization: str, after_name: str, limit: int) -> list[App]: ...

    async def reserved_apps(self) -> list[App]:
        """Every app, of every organization, that serves a version and keeps
        reserved capacity (the reservations admission checks against)."""
        ...

    async def update_app(self, organization: str, name: str, changes: Mapping[str, Any]) -> App:
        """``changes`` maps App field names to new values."""
        ...

    async def delete_app(self, organization: str, name: str) -> None: ...

    async def save_draft(
        self, organization: str, name: str, draft: DraftRecord, now_ms: int
    ) -> Version: ...

    async def record_build(
        self, organization: str, name: str, version: int, outcome: BuildOutcome
    ) -> Version | None:
        """Store a build's outcome; None when the version's code changed meanwhile."""
        ...

    async def get_version(self, organization: str, name: str, version: int) -> Version: ...

    async def list_versions(
        self, organization: str, name: str, before_version: int, limit: int
    ) -> list[Version]:
        """Published versions below ``before_version`` (0 = no bound), newest first."""
        ...

    async def publish(
        self, organization: str, name: str, code_hash: str, artifact_digest: str, now_ms: int
    ) -> tuple[Version, App]:
        """Snapshot the draft (which must still hold ``code_hash``) into the
        next version, make it ACTIVE and the previous one SUPERSEDED."""
        ...

    async def rollback(self, organization: str, name: str, version: int, now_ms: int) -> App: ...
