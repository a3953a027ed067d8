"""Building image apps' versions (``CodeSource.image``) into artifacts.

An image app's artifact is a folder holding only ``ignite-launch.json``
with an ``image`` entry (ports/image_launch.py): the image by digest in the
platform's registry, its port, its health path and how it starts. What
makes the image:

- ``from_code``: the uploaded build context's Dockerfile, built by the
  platform's builder and pushed by digest;
- ``from_git``: the repository cloned at the ref (credentials from the named
  secret), then built the same way from ``context_dir``;
- ``prebuilt``: the reference resolved to a digest and the image copied into
  the platform's registry (credentials from the named secret), so a tag
  moved later, or an owner's registry going away, changes nothing already
  published.

Images go to the repository ``ignite/<org>/<app>``.

Before the platform connects anywhere on the user's behalf:

- the destination (the registry of ``--image``, the host of ``--git-url``)
  must be a public address or one the operator allows (ports/egress.py);
- a named secret must be for exactly that host (core/secrets.py), or it
  is not sent, nor is anything else;
- an image in the platform's own registry may only be one of the caller's
  organization (``ignite/<org>/…``), copied with that organization's
  read-only pull credentials, so the registry itself refuses any other.
  One of another organization reads as missing (IMAGE_NOT_FOUND).

An organization at its registry quota builds and imports nothing more, and
an image that would take it past the quota is removed and refused
(core/registry_retention.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from ignite_common.addresses import is_loopback
from ignite_server.core.registry_retention import RegistryRetention
from ignite_server.core.secrets import Secrets
from ignite_server.domain import archives, hosts
from ignite_server.domain.errors import FailedPrecondition
from ignite_server.domain.models import ImageSpec, UploadKind, Version
from ignite_server.ports.blob_store import BlobStore
from ignite_server.ports.egress import Egress
from ignite_server.ports.image_builder import (
    BuiltImage,
    DockerfileBuild,
    GitContext,
    ImageBuilder,
    ImageUnavailable,
    RegistryAccess,
    RegistryCredentials,
)
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_protocol import MANIFEST_NAME

DEFAULT_DOCKERFILE = "Dockerfile"
#: Wall-clock limit of one image build.
BUILD_TIMEOUT_SECS = 900


def image_reference(artifact_dir: Path) -> str:
    """The image an artifact runs ("" for a managed runtime's artifact)."""
    try:
        raw = json.loads((artifact_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return ""
    entry = raw.get("image") if isinstance(raw, dict) else None
    return ImageLaunch.from_json(entry).reference if isinstance(entry, dict) else ""


def repository_of(version: Version) -> str:
    return f"{organization_prefix(version.organization)}{version.app}"


def organization_prefix(organization: str) -> str:
    """Where an organization's repositories are in the platform's registry."""
    return f"ignite/{organization}/"


#: The port a registry is reached on when its reference names none.
REGISTRY_PORT = 443


class ImageArtifacts:
    """Makes the image of an image-app version and writes its launch manifest."""

    def __init__(
        self,
        blobs: BlobStore,
        builder: ImageBuilder,
        secrets: Secrets,
        egress: Egress,
        access: RegistryAccess,
        retention: RegistryRetention | None = None,
    ) -> None:
        self._blobs = blobs
        self._builder = builder
        self._secrets = secrets
        self._egress = egress
        self._access = access
        self._retention = retention

    @property
    def registry(self) -> str:
        """host[:port] of the registry images are kept in."""
        return self._builder.registry_host

    async def make(
        self, version: Version, work: Path, out: Path, log: Callable[[str], None]
    ) -> BuiltImage:
        """Build or import the version's image and write the manifest into
        ``out``. BuildFailed for the user's own build errors;
        FailedPrecondition when a prebuilt image or a secret cannot be had."""
        spec = version.image or ImageSpec()
        if self._retention is not None:
            await self._retention.check(version.organization)
        if version.upload_kind == UploadKind.PREBUILT_IMAGE:
            image = await self._import(version, spec)
        else:
            git = None
            upload = None
            if version.upload_kind == UploadKind.IMAGE_FROM_GIT:
                host = hosts.url_host(spec.source)
                scheme = urlsplit(spec.source).scheme
                # Checked here for a clear refusal before the build starts;
                # the build's egress proxy checks again where it connects.
                await self._egress.check(
                    host, hosts.DEFAULT_PORTS.get(scheme, 443), "code.image.from_git.repo_url"
                )
                credentials = await self._secrets.credentials(
                    version.organization, spec.secret_ref, host
                )
                ref = spec.git_ref
                log(f"cloning {spec.source}" + (f" at {ref}" if ref else ""))
                git = GitContext(spec.source, ref, spec.context_dir, credentials)
            else:
                upload = work / "src"
                code = await asyncio.to_thread(self._blobs.read_code, version.code_hash)
                await asyncio.to_thread(archives.extract, code, upload)
            image = await self._builder.build(
                DockerfileBuild(
                    organization=version.organization,
                    dockerfile=spec.dockerfile_path or DEFAULT_DOCKERFILE,
                    build_args=version.build_args,
                    repository=repository_of(version),
                    log=log,
                    upload_dir=upload,
                    git=git,
                    timeout_secs=BUILD_TIMEOUT_SECS,
                )
            )
        if self._retention is not None:
            await self._retention.admit(version.organization, image.reference)
        log(f"image {image.reference}")
        ImageLaunch.of(image, spec.health_path).write(out)
        return image

    async def _import(self, version: Version, spec: ImageSpec) -> BuiltImage:
        credentials = await self._source_credentials(version, spec)
        try:
            return await self._builder.import_image(
                spec.source, credentials, repository_of(version)
            )
        except ImageUnavailable as exc:
            hint = (
                ""
                if credentials or exc.reason != "REGISTRY_AUTH_FAILED"
                else "; name a secret with the registry's credentials (--registry-secret)"
            )
            raise FailedPrecondition(
                f"image {spec.source} cannot be used: {exc.message}{hint}",
                reason=exc.reason,
                metadata={"image_ref": spec.source},
            ) from None

    async def _source_credentials(
        self, version: Version, spec: ImageSpec
    ) -> RegistryCredentials | None:
        """What a prebuilt image is copied with, once its registry is
        allowed: the organization's pull credentials for the platform's own
        registry (its own repositories only), else the named secret if it is
        for that registry."""
        host = hosts.registry_host(spec.source)
        if self._is_platform_registry(host):
            path = spec.source.split("/", 1)[1]
            if not path.startswith(organization_prefix(version.organization)):
                raise FailedPrecondition(
                    f"image {spec.source} cannot be used: no such repository in organization"
                    f" {version.organization}'s part of the platform's registry"
                    f" ({host}/{organization_prefix(version.organization)}…)",
                    reason="IMAGE_NOT_FOUND",
                    metadata={"image_ref": spec.source},
                )
            return self._access.pull_credentials(version.organization)
        await self._egress.check(host, REGISTRY_PORT, "code.image.prebuilt.image_ref")
        return await self._secrets.credentials(version.organization, spec.secret_ref, host)

    def _is_platform_registry(self, host: str) -> bool:
        """Whether ``host`` names the platform's registry (by its own name,
        or as another loopback name of the same port when it is embedded)."""
        own = self._access.host.lower()
        if host == own:
            return True
        own_name, own_port = hosts.split(own, REGISTRY_PORT)
        name, port = hosts.split(host, REGISTRY_PORT)
        return port == own_port and is_loopback(own_name) and is_loopback(name)
