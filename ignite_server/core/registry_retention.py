"""What the platform keeps in its own registry, and for how long.

**Quota.** An organization's images may take ``quota_bytes`` of the
registry, counting every blob (layer, config, manifest) of its images once,
however many of its images share it (``usage``). A build or an import is
refused before it starts when the organization is at its quota
(``check``); an image that would take it past the quota is removed again as
soon as it is pushed and refused (``admit``): RESOURCE_EXHAUSTED, reason
REGISTRY_QUOTA_EXCEEDED, with the figures. One organization's images never
count against another's.

**Collection.** Every ``interval_secs`` (and on demand), ``collect``:

1. lists the manifests the registry holds and records any it does not know
   yet (an image from before this bookkeeping, a push whose record was
   lost), so that every image is counted;
2. removes each manifest that no version of any app names (a deleted app's,
   a rebuilt draft's former image, a refused push's) once it is older than
   ``grace_secs`` (a build that has just pushed has not recorded its image
   on the draft yet);
3. collects the blobs no manifest references any more (the registry
   adapter keeps pushes out while it does).

Only the platform deletes: no other account of the registry may.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from ignite_server.domain.errors import ResourceExhausted
from ignite_server.ports.registry_images import RegistryImages, RegistryStorage, StoredImage

log = structlog.get_logger(__name__)

MIB = 1024 * 1024
#: A pushed image not yet named by a draft is kept at least this long.
DEFAULT_GRACE_SECS = 600.0


def organization_of(repository: str) -> str:
    """``<org>`` of ``ignite/<org>/…``; "" for any other repository."""
    parts = repository.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "ignite" else ""


class RegistryRetention:
    """Quota and garbage collection of the platform's registry."""

    def __init__(
        self,
        images: RegistryImages,
        storage: RegistryStorage,
        *,
        quota_bytes: int,
        interval_secs: float,
        grace_secs: float = DEFAULT_GRACE_SECS,
    ) -> None:
        self._images = images
        self._storage = storage
        self.quota_bytes = quota_bytes
        self._interval = interval_secs
        self._grace_ms = int(grace_secs * 1000)
        self._task: asyncio.Task[None] | None = None
        self._collecting = asyncio.Lock()

    # --- quota ---------------------------------------------------------------

    async def usage(self, organization: str) -> int:
        """Bytes the organization's images take, each blob counted once."""
        blobs: dict[str, int] = {}
        for image in await self._images.of_organization(organization):
            blobs.update(image.blobs)
        return sum(blobs.values())

    async def check(self, organization: str) -> None:
        """RESOURCE_EXHAUSTED when the organization is at its quota."""
        used = await self.usage(organization)
        if used >= self.quota_bytes:
            raise self._exceeded(organization, used)

    async def admit(self, organization: str, reference: str) -> None:
        """Record a pushed image (``host/repository@digest``), or remove it
        again and refuse it when it takes the organization past its quota."""
        repository, _, digest = reference.partition("@")
        repository = repository.split("/", 1)[1]
        blobs = await self._storage.blobs(repository, digest)
        image = StoredImage(repository, digest, organization, blobs, int(time.time() * 1000))
        held: dict[str, int] = {}
        for other in await self._images.of_organization(organization):
            if (other.repository, other.digest) != (repository, digest):
                held.update(other.blobs)
        after = sum({**held, **blobs}.values())
        if after > self.quota_bytes:
            if not await self._still_named(repository, digest):
                await self._storage.delete(repository, digest)
                await self._images.forget(repository, digest)
            raise self._exceeded(organization, after)
        await self._images.record(image)

    async def _still_named(self, repository: str, digest: str) -> bool:
        return (f"{self._storage.host}/{repository}", digest) in await self._images.referenced()

    def _exceeded(self, organization: str, used: int) -> ResourceExhausted:
        return ResourceExhausted(
            f"organization {organization}'s images would take {used / MIB:.1f} MiB of the"
            f" platform's registry; its quota is {self.quota_bytes / MIB:.1f} MiB. Delete apps"
            " it no longer needs (their images are collected) or ask the operator for more",
            reason="REGISTRY_QUOTA_EXCEEDED",
            metadata={
                "organization": organization,
                "used_bytes": str(used),
                "quota_bytes": str(self.quota_bytes),
            },
        )

    # --- collection ------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="registry-retention")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.collect()
            except Exception:  # retried at the next interval
                log.exception("registry.collection_failed")

    async def collect(self) -> tuple[int, int]:
        """One collection: (manifests removed, blob bytes freed)."""
        async with self._collecting:
            now = int(time.time() * 1000)
            known = {(i.repository, i.digest): i for i in await self._images.all()}
            referenced = await self._images.referenced()
            present = await self._storage.manifests()
            removed = 0
            for manifest in present:
                key = (manifest.repository, manifest.digest)
                image = known.get(key)
                if image is None:
                    blobs = await self._storage.blobs(manifest.repository, manifest.digest)
                    image = StoredImage(
                        manifest.repository,
                        manifest.digest,
                        organization_of(manifest.repository),
                        blobs,
                        manifest.stored_at_ms,
                    )
                    await self._images.record(image)
                named = (f"{self._storage.host}/{manifest.repository}", manifest.digest)
                if named in referenced or now - image.created_at_ms < self._grace_ms:
                    continue
                # Forgotten first: an image that no longer counts may still be
                # listed for a moment, never the other way round (a failed
                # delete is found and recorded again next time).
                await self._images.forget(manifest.repository, manifest.digest)
                await self._storage.delete(manifest.repository, manifest.digest)
                removed += 1
            on_disk = {(m.repository, m.digest) for m in present}
            for key in set(known) - on_disk:
                await self._images.forget(*key)
            freed = await self._storage.collect_blobs()
            log.info("registry.collected", manifests_removed=removed, bytes_freed=freed)
            return removed, freed
