"""The store port: durable state of apps and versions.

Every method is one transaction. Implementations raise domain errors
(NotFound, AlreadyExists, FailedPrecondition) and never leak driver errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ignite_server.domain.models import (
    App,
    ImageSpec,
    RuntimeSpec,
    TrafficTarget,
    UploadKind,
    Version,
    VersionSettings,
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


@dataclass(frozen=True)
class NewVersion:
    """A version to make: the code of version ``source`` (0 = the draft,
    which must still hold ``code_hash``) with ``settings``."""

    source: int
    code_hash: str
    artifact_digest: str
    settings: VersionSettings
    published_by: str
    message: str
    #: Make it even when it equals the active version.
    force: bool = False
    #: STARTING versions of the app made before this time were left by a
    #: server that stopped while making them ready: they become FAILED.
    abandoned_before_ms: int = 0


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

    async def create_version(
        self, organization: str, name: str, new: NewVersion, now_ms: int
    ) -> tuple[Version, bool]:
        """Snapshot ``new`` into the next version, STARTING; or, unless
        ``new.force``, when code, artifact, runtime, image and settings equal
        the active version's, make nothing: (the active version, True)."""
        ...

    async def finish_start(
        self, organization: str, name: str, version: int, status: VersionStatus, error: str = ""
    ) -> Version:
        """A STARTING version became READY or FAILED (with ``error``); any
        other version is returned as it is."""
        ...

    async def activate(
        self,
        organization: str,
        name: str,
        version: int,
        now_ms: int,
        *,
        traffic: Sequence[TrafficTarget] = (),
        only_if_newer: bool = False,
    ) -> App:
        """Make ``version`` ACTIVE (the previous one SUPERSEDED) with
        ``traffic`` as the split (empty: all of it to ``version``) and its
        settings as the app's. ``only_if_newer``: when a newer version is
        active already, ``version`` only becomes READY."""
        ...

    async def set_tag(
        self, organization: str, name: str, tag: str, version: int, max_tags: int, now_ms: int
    ) -> App:
        """Point ``tag`` at ``version`` (a servable one)."""
        ...

    async def remove_tag(self, organization: str, name: str, tag: str, now_ms: int) -> App:
        """NotFound TAG_NOT_FOUND when there is no such tag."""
        ...
