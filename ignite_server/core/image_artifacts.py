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
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from ignite_server.core.secrets import Secrets
from ignite_server.domain import archives
from ignite_server.domain.errors import FailedPrecondition
from ignite_server.domain.models import ImageSpec, UploadKind, Version
from ignite_server.ports.blob_store import BlobStore
from ignite_server.ports.image_builder import (
    BuiltImage,
    DockerfileBuild,
    GitContext,
    ImageBuilder,
    ImageUnavailable,
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
    return f"ignite/{version.organization}/{version.app}"


class ImageArtifacts:
    """Makes the image of an image-app version and writes its launch manifest."""

    def __init__(self, blobs: BlobStore, builder: ImageBuilder, secrets: Secrets) -> None:
        self._blobs = blobs
        self._builder = builder
        self._secrets = secrets

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
        if version.upload_kind == UploadKind.PREBUILT_IMAGE:
            image = await self._import(version, spec)
        else:
            git = None
            upload = None
            if version.upload_kind == UploadKind.IMAGE_FROM_GIT:
                credentials = await self._secrets.credentials(version.organization, spec.secret_ref)
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
        log(f"image {image.reference}")
        ImageLaunch.of(image, spec.health_path).write(out)
        return image

    async def _import(self, version: Version, spec: ImageSpec) -> BuiltImage:
        credentials = await self._secrets.credentials(version.organization, spec.secret_ref)
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
