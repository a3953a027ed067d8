"""The image port: building and importing the container images of image
apps (``CodeSource.image``), kept by digest in the platform's registry.

Every image a version runs is in the platform's registry (the embedded one
on loopback by default, or an external one in production) and is named by
digest, never by a tag: a published version is immutable. A Dockerfile
build (``from_code``, and ``from_git`` after ``checkout``) pushes there; a
prebuilt image is resolved to a digest and copied there once
(``import_image``), so pods never need the owner's registry credentials and
a tag moved later changes nothing already published.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

#: The port a container listens on when its image exposes none.
DEFAULT_PORT = 8080


@dataclass(frozen=True)
class RegistryCredentials:
    """A user name and password (or token) for a registry or a git host."""

    username: str
    password: str

    def __repr__(self) -> str:  # never show the password
        return f"RegistryCredentials(username={self.username!r}, password=***)"


@dataclass(frozen=True)
class ImageConfig:
    """What an image's OCI config says about running it."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = ""
    #: The image's USER, as written ("1000", "1000:1000", "node", "").
    user: str = ""
    #: TCP ports from EXPOSE, in order.
    exposed_ports: tuple[int, ...] = ()

    @property
    def port(self) -> int:
        """The port the app listens on: the first exposed one, else 8080."""
        return self.exposed_ports[0] if self.exposed_ports else DEFAULT_PORT


@dataclass(frozen=True)
class BuiltImage:
    """An image in the platform's registry."""

    #: Pullable by digest: "127.0.0.1:5000/ignite/acme/web@sha256:…".
    reference: str
    #: "sha256:…" of the image manifest.
    digest: str
    config: ImageConfig


class ImageUnavailable(Exception):
    """A prebuilt image cannot be had. ``reason`` is the ErrorInfo reason:
    IMAGE_NOT_FOUND (no such repository, tag or digest), REGISTRY_AUTH_FAILED
    (credentials missing or refused), REGISTRY_UNREACHABLE (no answer),
    IMAGE_REF_INVALID (not an image reference)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class GitContext:
    """A build context cloned from ``url`` at ``ref`` (branch, tag or
    commit), ``context_dir`` inside the repository."""

    url: str
    ref: str
    context_dir: str = ""
    credentials: RegistryCredentials | None = None


@dataclass(frozen=True)
class DockerfileBuild:
    """One Dockerfile build of ``organization``'s, from an uploaded context
    (``upload_dir``, a folder of the server's) or a git repository
    (``git``); BuildFailed (ports/build_pipeline.py) for errors in the
    user's Dockerfile, context or repository."""

    organization: str
    #: The Dockerfile's path relative to the context.
    dockerfile: str
    build_args: Mapping[str, str]
    #: Repository in the platform registry, e.g. "ignite/acme/web".
    repository: str
    #: Receives the build's output line by line.
    log: Callable[[str], None]
    upload_dir: Path | None = None
    git: GitContext | None = None
    timeout_secs: int = 900


class RegistryAccess(Protocol):
    """Who may pull from the platform's registry: each organization with
    read-only credentials of its own, scoped to its repositories where the
    registry allows it (the embedded one does: images/registry_tokens.py)."""

    #: host[:port] of the platform's registry.
    host: str

    def pull_credentials(self, organization: str) -> RegistryCredentials | None:
        """Read-only credentials for ``organization``'s images (None when the
        registry needs none)."""
        ...


class ImageBuilder(Protocol):
    """Builds and imports images into the platform's registry."""

    #: host[:port] of the platform's registry.
    registry_host: str

    async def build(self, request: DockerfileBuild) -> BuiltImage:
        """Build (cloning the repository first for a git context), push by
        digest, and return the pushed image."""
        ...

    async def import_image(
        self, image_ref: str, credentials: RegistryCredentials | None, repository: str
    ) -> BuiltImage:
        """Resolve ``image_ref`` (tag or digest) and copy the image into
        ``repository`` of the platform registry. ImageUnavailable when it
        cannot be had."""
        ...
