"""The image builder: the ImageBuilder port (ports/image_builder.py) over
buildah, skopeo and git.

- ``build``: in a jail of the build's own (builds/jail.py, with a range of
  uids for its user namespace): git clones the repository for a git
  context (git_checkout.py); the Dockerfile is read inside the jail and the
  base images its ``FROM`` lines name are fetched by the platform
  (bases.py); buildah builds (buildah.py) into an OCI layout that leaves the
  jail as its checked stream; skopeo, outside, pushes it to the platform
  registry by its manifest digest and reads its config back (skopeo.py).
- ``import_image``: skopeo resolves the user's reference to a digest and
  copies that manifest, digest unchanged, into the platform registry.

The platform registry is named by host (the embedded registry.py on
loopback, or an external one with optional credentials and TLS); every
image this builder returns is referenced there by digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from ignite_server.builds.jail import SRC, BuildJail, BuildSpace
from ignite_server.builds.subprocess_build import DEFAULT_MEMORY_MB
from ignite_server.domain.errors import Unavailable
from ignite_server.images import dockerfile as dockerfiles
from ignite_server.images import git_checkout, reference
from ignite_server.images.bases import BaseImages
from ignite_server.images.buildah import IMAGE_LAYOUT, Buildah, checked_dockerfile
from ignite_server.images.skopeo import LAYOUT_NAME, Skopeo, oci_manifest_digest
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.egress import Egress
from ignite_server.ports.image_builder import (
    BuiltImage,
    DockerfileBuild,
    ImageUnavailable,
    RegistryCredentials,
)


class ContainerImageBuilder:
    """Builds and imports images into the registry at ``registry_host``
    (``host[:port]``), building in ``space``'s jails and keeping fetched base
    images under ``bases_dir``.

    ``registry_credentials`` log in to that registry; ``insecure_registries``
    are hosts reached without TLS verification besides loopback ones (for
    imports, pushes and base images alike), and the registries on private
    addresses base images may come from (besides what ``egress``, the
    operator's ``--egress-allow``, allows). Every push holds ``push_guard``
    (the registry's garbage collection waits for pushes:
    registry_storage.py).
    """

    def __init__(
        self,
        registry_host: str,
        space: BuildSpace,
        bases_dir: Path,
        *,
        registry_credentials: RegistryCredentials | None = None,
        insecure_registries: Sequence[str] = (),
        memory_mb: int = DEFAULT_MEMORY_MB,
        push_guard: Callable[[], AbstractAsyncContextManager[None]] | None = None,
        egress: Egress | None = None,
    ) -> None:
        self.registry_host = registry_host
        self._space = space
        self._credentials = registry_credentials
        self._push_guard = push_guard or contextlib.nullcontext
        self._skopeo = Skopeo(insecure_registries)
        self._bases = BaseImages(
            bases_dir,
            self._skopeo,
            platform_registry=registry_host,
            platform_credentials=registry_credentials,
            allowed_private=insecure_registries,
            egress=egress,
        )
        self._buildah = Buildah(memory_mb=memory_mb)
        #: Where built images are unpacked from their jail before the push.
        self._scratch = bases_dir.parent / "exports"
        self._scratch.mkdir(parents=True, exist_ok=True)

    async def build(self, request: DockerfileBuild) -> BuiltImage:
        """Build, push by digest, and return the pushed image."""
        destination = self._destination(request.repository)
        with tempfile.TemporaryDirectory(prefix="image-", dir=self._scratch) as scratch:
            image = Path(scratch) / "out"
            await asyncio.to_thread(image.mkdir)
            async with self._space.jail(
                request.organization,
                request.log,
                request.timeout_secs,
                source=request.upload_dir,
                egress_urls=[request.git.url] if request.git else (),
                image_build=True,
            ) as jail:
                context = await self._context(jail, request)
                dockerfile = checked_dockerfile(context, request.dockerfile)
                text = await jail.read_text(dockerfile, dockerfiles.MAX_BYTES)
                bases = [
                    await self._bases.fetch(named, request.organization)
                    for named in dockerfiles.base_images(text, request.build_args)
                ]
                await self._buildah.build(
                    jail, context, dockerfile, dict(request.build_args), bases
                )
                await jail.export(image)
            layout = image / Path(IMAGE_LAYOUT).name
            try:
                digest = await asyncio.to_thread(oci_manifest_digest, layout)
            except (OSError, ValueError, KeyError, IndexError):
                raise BuildFailed("the build left no image") from None
            try:
                async with self._push_guard():
                    await self._skopeo.copy(
                        f"oci:{layout}:{LAYOUT_NAME}",
                        destination,
                        digest,
                        destination_credentials=self._credentials,
                        log=request.log,
                    )
                return await self._pushed(destination, digest)
            except ImageUnavailable as exc:
                # The user's build is fine; the platform's registry is not.
                raise Unavailable(
                    f"the image registry took no image: {exc.message}", reason=exc.reason
                ) from exc

    async def _context(self, jail: BuildJail, request: DockerfileBuild) -> str:
        """The build context's path inside the jail: the upload, or the
        clone's ``context_dir``."""
        if request.git is None:
            return SRC
        await git_checkout.checkout(jail, request.git)
        context = request.git.context_dir.strip("/")
        return f"{git_checkout.REPO}/{context}" if context else git_checkout.REPO

    async def import_image(
        self, image_ref: str, credentials: RegistryCredentials | None, repository: str
    ) -> BuiltImage:
        """Resolve ``image_ref`` to a digest and copy that image into
        ``repository`` of the platform registry."""
        source = reference.parse(image_ref)
        destination = self._destination(repository)
        digest = await self._skopeo.resolve(source, credentials)
        async with self._push_guard():
            await self._skopeo.copy(
                f"docker://{source.at(digest)}",
                destination,
                digest,
                source_credentials=credentials,
                destination_credentials=self._credentials,
            )
        return await self._pushed(destination, digest)

    def _destination(self, repository: str) -> reference.ImageReference:
        return reference.parse(f"{self.registry_host}/{repository}")

    async def _pushed(self, destination: reference.ImageReference, digest: str) -> BuiltImage:
        config = await self._skopeo.config(destination, digest, self._credentials)
        return BuiltImage(reference=destination.at(digest), digest=digest, config=config)
