"""The platform registry's images on PostgreSQL (ports/registry_images.py)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from ignite_server.ports.registry_images import StoredImage
from ignite_server.store.database import connection


def _image(row: Any) -> StoredImage:
    return StoredImage(
        repository=row["repository"],
        digest=row["digest"],
        organization=row["organization"],
        blobs={str(k): int(v) for k, v in json.loads(row["blobs"]).items()},
        created_at_ms=row["created_at_ms"],
    )


class PostgresRegistryImages:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, image: StoredImage) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(
                "INSERT INTO registry_images (repository, digest, organization, blobs,"
                " created_at_ms) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (repository, digest) DO UPDATE SET blobs = EXCLUDED.blobs",
                image.repository,
                image.digest,
                image.organization,
                json.dumps(dict(image.blobs)),
                image.created_at_ms,
            )

    async def forget(self, repository: str, digest: str) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(
                "DELETE FROM registry_images WHERE repository = $1 AND digest = $2",
                repository,
                digest,
            )

    async def of_organization(self, organization: str) -> list[StoredImage]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                "SELECT * FROM registry_images WHERE organization = $1", organization
            )
        return [_image(r) for r in rows]

    async def all(self) -> list[StoredImage]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch("SELECT * FROM registry_images")
        return [_image(r) for r in rows]

    async def referenced(self) -> set[tuple[str, str]]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                "SELECT DISTINCT image_ref FROM versions WHERE image_ref LIKE '%@sha256:%'"
            )
        found = set()
        for row in rows:
            repository, _, digest = str(row["image_ref"]).partition("@")
            found.add((repository, digest))
        return found
