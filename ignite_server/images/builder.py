"""The image builder: the ImageBuilder port (ports/image_builder.py) over
buildah, skopeo and git.

- ``build``: buildah builds the Dockerfile in the image-build namespace into
  an OCI layout (buildah.py); skopeo pushes it to the platform registry by
  its manifest digest and reads its config back (skopeo.py).
- ``checkout``: git in the build sandbox (git_checkout.py).
- ``import_image``: skopeo resolves the user's reference to a digest and
  copies that manifest, digest unchanged, into the platform registry.

The platform registry is named by host (the embedded registry.py on
loopback, or an external one with optional credentials and TLS); every
image this builder returns is referenced there by digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from ignite_server.builds.subprocess_build import DEFAULT_MEMORY_MB, Deadline
from ignite_server.domain.errors import Unavailable
from ignite_server.images import git_checkout, reference
from ignite_server.images.buildah import Buildah
from ignite_server.images.skopeo import Skopeo, oci_manifest_digest
from ignite_server.ports.image_builder import (
    BuiltImage,
    DockerfileBuild,
    GitCheckout,
    ImageUnavailable,
    RegistryCredentials,
)


class ContainerImageBuilder:
    """Builds and imports images into the registry at ``registry_host``
    (``host[:port]``), keeping buildah's storage under ``cache_dir``.

    ``registry_credentials`` log in to that registry; ``insecure_registries``
    are hosts reached without TLS verification besides loopback ones (for
    imports, pushes and Dockerfile base images alike). Every push holds
    ``push_guard`` (the registry's garbage collection waits for pushes:
    registry_storage.py).
    """

    def __init__(
        self,
        registry_host: str,
        cache_dir: Path,
        *,
        registry_credentials: RegistryCredentials | None = None,
        insecure_registries: Sequence[str] = (),
        memory_mb: int = DEFAULT_MEMORY_MB,
        push_guard: Callable[[], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self.registry_host = registry_host
        self._credentials = registry_credentials
        self._push_guard = push_guard or contextlib.nullcontext
        self._skopeo = Skopeo(insecure_registries)
        plain_http = [
            host
            for host in {registry_host, *insecure_registries}
            if not self._skopeo.tls_verify(host)
        ]
        self._buildah = Buildah(cache_dir, insecure_registries=plain_http, memory_mb=memory_mb)

    async def build(self, request: DockerfileBuild) -> BuiltImage:
        """Build, push by digest, and return the pushed image."""
        destination = self._destination(request.repository)
        deadline = Deadline(request.timeout_secs)
        layout = self._buildah.work_dir / uuid.uuid4().hex
        try:
            await self._buildah.build(request, layout, deadline)
            digest = await asyncio.to_thread(oci_manifest_digest, layout)
            try:
                async with asyncio.timeout(deadline.remaining()), self._push_guard():
                    await self._skopeo.copy(
                        f"oci:{layout}",
                        destination,
                        digest,
                        destination_credentials=self._credentials,
                        log=request.log,
                    )
            except TimeoutError:
                raise deadline.exceeded() from None
            return await self._pushed(destination, digest)
        except ImageUnavailable as exc:
            # The user's build is fine; the platform's registry is not.
            raise Unavailable(
                f"the image registry took no image: {exc.message}", reason=exc.reason
            ) from exc
        finally:
            await asyncio.to_thread(shutil.rmtree, layout, True)

    async def checkout(self, request: GitCheckout) -> str:
        """Clone the repository; returns the commit checked out."""
        return await git_checkout.checkout(request)

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
