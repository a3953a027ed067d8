"""The ports of the platform registry's bookkeeping: which images it holds
and what they take (``RegistryImages``, in the database), and the registry
itself as the platform maintains it (``RegistryStorage``: reading an
image's blobs, deleting an image, collecting unreferenced blobs).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class StoredImage:
    """One image (manifest) in the platform's registry."""

    repository: str
    digest: str
    organization: str
    #: Its config's and layers' digests and sizes.
    blobs: Mapping[str, int] = field(default_factory=dict)
    created_at_ms: int = 0

    @property
    def size_bytes(self) -> int:
        return sum(self.blobs.values())


class RegistryImages(Protocol):
    async def record(self, image: StoredImage) -> None:
        """Remember an image (again: its row is replaced)."""
        ...

    async def forget(self, repository: str, digest: str) -> None: ...

    async def of_organization(self, organization: str) -> list[StoredImage]: ...

    async def all(self) -> list[StoredImage]: ...

    async def referenced(self) -> set[tuple[str, str]]:
        """(repository with its host, digest) of every image a version names."""
        ...


@dataclass(frozen=True)
class Manifest:
    """A manifest the registry holds: where, which, and since when."""

    repository: str
    digest: str
    stored_at_ms: int


class RegistryStorage(Protocol):
    """The platform's own registry, as its owner maintains it."""

    #: host[:port] of the registry.
    host: str

    def pushing(self) -> AbstractAsyncContextManager[None]:
        """Held around every push (many at once); ``collect_blobs`` waits
        for them and keeps new ones waiting while it runs."""
        ...

    async def manifests(self) -> list[Manifest]:
        """Every manifest in every repository."""
        ...

    async def blobs(self, repository: str, digest: str) -> dict[str, int]:
        """The config and layers of one manifest, with their sizes."""
        ...

    async def delete(self, repository: str, digest: str) -> None:
        """Remove one manifest (its blobs go at the next collection)."""
        ...

    async def collect_blobs(self) -> int:
        """Remove every blob no manifest references; the bytes freed."""
        ...
