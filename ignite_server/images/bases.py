"""Base images, fetched by the platform before a Dockerfile build starts.

A Dockerfile build runs in its own network namespace whose only way out is
the egress proxy to the package registries (builds/egress.py): it has no
route to the platform's registry and no credentials for any registry. So the
images its ``FROM`` lines name (dockerfile.py) are fetched by the platform
instead, by skopeo on the host, a step that runs no user code:

- each reference is resolved to a digest by its own registry (so a digest
  never stands for an image its registry does not hold), then fetched by
  that digest into an OCI layout folder ``<cache>/<hex>`` that skopeo
  verifies against it; a digest fetched once is kept, and shared by every
  organization's builds, read-only (the bytes a digest names are the same
  for everyone; who may name them is checked first, every time);
- the platform's own registry serves a build only its own organization's
  repositories (``ignite/<org>/…``), with the platform's pull credentials;
- a registry on a loopback, link-local or private address is reached only
  when the operator allowed it (``allowed_private``, the embedded
  registry's and the insecure ones, or ``--egress-allow``: the same check
  as ``--image``'s, images/egress.py), never because a Dockerfile named it.

The build then loads these folders (buildah.py) and never pulls.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ignite_server.domain.errors import FailedPrecondition
from ignite_server.images import reference
from ignite_server.images.egress import EgressPolicy
from ignite_server.images.reference import ImageReference
from ignite_server.images.skopeo import Skopeo
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.egress import Egress
from ignite_server.ports.image_builder import ImageUnavailable, RegistryCredentials


@dataclass(frozen=True)
class BaseImage:
    """A ``FROM`` image as the Dockerfile names it, and its fetched layout."""

    named: str
    reference: ImageReference
    digest: str
    layout: Path


class BaseImages:
    """Fetches base images into ``cache_dir`` (see the module docstring)."""

    def __init__(
        self,
        cache_dir: Path,
        skopeo: Skopeo,
        *,
        platform_registry: str,
        platform_credentials: RegistryCredentials | None,
        allowed_private: Sequence[str] = (),
        egress: Egress | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self._egress = egress or EgressPolicy()
        self._skopeo = skopeo
        self._platform = platform_registry
        self._credentials = platform_credentials
        self._allowed = {platform_registry, *allowed_private}
        self._locks: dict[str, asyncio.Lock] = {}
        cache_dir.mkdir(parents=True, exist_ok=True)

    async def fetch(self, named: str, organization: str) -> BaseImage:
        """The image ``named`` (a FROM reference) for a build of
        ``organization``; BuildFailed when it may not or cannot be had."""
        try:
            ref = reference.parse(named)
        except ImageUnavailable as exc:
            raise BuildFailed(f"FROM {named}: {exc.message}") from None
        credentials = await self._access(ref, organization, named)
        try:
            digest = await self._skopeo.resolve(ref, credentials)
            layout = await self._fetched(ref, digest, credentials)
        except ImageUnavailable as exc:
            raise BuildFailed(f"FROM {named}: {exc.message}") from None
        return BaseImage(named, ref, digest, layout)

    async def _access(
        self, ref: ImageReference, organization: str, named: str
    ) -> RegistryCredentials | None:
        if ref.host == self._platform:
            if not ref.path.startswith(f"ignite/{organization}/"):
                raise BuildFailed(
                    f"FROM {named}: the platform's registry serves a build only its own "
                    f"organization's images (ignite/{organization}/…)"
                )
            return self._credentials
        if ref.host not in self._allowed:
            try:
                await self._egress.check(ref.host, 443, f"FROM {named}")
            except FailedPrecondition as refused:
                raise BuildFailed(refused.message) from None
        return None

    async def _fetched(
        self, ref: ImageReference, digest: str, credentials: RegistryCredentials | None
    ) -> Path:
        hex_digest = digest.removeprefix("sha256:")
        layout = self.cache_dir / hex_digest
        lock = self._locks.setdefault(hex_digest, asyncio.Lock())
        async with lock:
            if not layout.is_dir():
                partial = self.cache_dir / f".{hex_digest}.{uuid.uuid4().hex}"
                try:
                    await self._skopeo.fetch(ref, digest, partial, credentials)
                    await asyncio.to_thread(partial.chmod, 0o755)
                    await asyncio.to_thread(partial.rename, layout)
                finally:
                    await asyncio.to_thread(shutil.rmtree, partial, True)
        return layout
