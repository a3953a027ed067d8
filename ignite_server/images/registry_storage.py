"""The embedded registry as its owner maintains it (ports/registry_images.py
``RegistryStorage``): which manifests it holds, what blobs each references,
removing a manifest, and collecting the blobs no manifest references.

- Manifests are listed from the registry's own storage folder (the
  distribution API lists tags, and the platform pushes by digest, without
  tags): the names of ``<repo>/_manifests/revisions/sha256/<hex>`` folders
  under ``docker/registry/v2/repositories`` that still hold their ``link``
  (a deleted manifest's folder stays, empty). Only names are read (no link
  is followed, no file opened): the folder is written by the registry process
  alone, and nothing of a tenant's names a path there.
- Reading a manifest and deleting one go through the registry's HTTP API
  with a token the server mints for itself (registry_tokens.py), so the
  registry stays the one that changes its storage.
- Collecting runs distribution's ``garbage-collect`` (mark every blob a
  manifest references, sweep the rest) against the live registry. That is
  safe only while nothing uploads: the server is the only account that may
  push, and every push it makes holds ``pushing()``, which
  ``collect_blobs`` waits out and keeps new ones from starting until it is
  done (pulls go on: no blob a manifest references is touched). The
  registry runs without a blob descriptor cache (registry.py), so it never
  answers from memory that a collected blob exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import structlog

from ignite_server.images.registry import REGISTRY_BINARY, EmbeddedRegistry
from ignite_server.images.registry_tokens import RegistryTokens
from ignite_server.ports.registry_images import Manifest

log = structlog.get_logger(__name__)

#: What the server accepts when it reads a manifest.
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
#: How long a call to the registry may take.
HTTP_TIMEOUT_SECS = 30.0
#: How long one collection may take.
COLLECT_TIMEOUT_SECS = 600.0


class SharedExclusiveLock:
    """Many holders of ``shared()`` at once, or one of ``exclusive()``; a
    waiting exclusive holder keeps new shared ones waiting (so a stream of
    pushes cannot put a collection off for ever)."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._condition:
            await self._condition.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            async with self._condition:
                self._shared -= 1
                self._condition.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._condition:
            self._waiting += 1
            try:
                await self._condition.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            async with self._condition:
                self._exclusive = False
                self._condition.notify_all()


class EmbeddedRegistryStorage:
    """RegistryStorage of the embedded registry."""

    def __init__(self, registry: EmbeddedRegistry, tokens: RegistryTokens) -> None:
        self.host = registry.host
        self._registry = registry
        self._tokens = tokens
        self._lock = SharedExclusiveLock()

    def pushing(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._lock.shared()

    @property
    def _v2(self) -> Path:
        return self._registry.data_dir / "docker" / "registry" / "v2"

    async def manifests(self) -> list[Manifest]:
        return await asyncio.to_thread(_manifests, self._v2 / "repositories")

    async def blobs(self, repository: str, digest: str) -> dict[str, int]:
        body = await self._call("GET", repository, digest, ("pull",))
        blobs = {digest: len(body)}
        document = json.loads(body)
        for entry in [document.get("config") or {}, *(document.get("layers") or [])]:
            if "digest" in entry:
                blobs[str(entry["digest"])] = int(entry.get("size") or 0)
        for entry in document.get("manifests") or []:
            blobs.update(await self.blobs(repository, str(entry["digest"])))
        return blobs

    async def delete(self, repository: str, digest: str) -> None:
        await self._call("DELETE", repository, digest, ("delete",), missing_ok=True)

    async def collect_blobs(self) -> int:
        async with self._lock.exclusive():
            before = await asyncio.to_thread(_size, self._v2 / "blobs")
            process = await asyncio.create_subprocess_exec(
                REGISTRY_BINARY,
                "garbage-collect",
                str(self._registry.config_file),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={"PATH": "/usr/bin:/bin"},
            )
            try:
                async with asyncio.timeout(COLLECT_TIMEOUT_SECS):
                    output, _ = await process.communicate()
            except TimeoutError:
                process.kill()
                await process.wait()
                raise
            if process.returncode != 0:
                tail = output.decode("utf-8", "replace").strip().splitlines()[-3:]
                log.error("registry.collect_failed", output=" | ".join(tail))
                return 0
            after = await asyncio.to_thread(_size, self._v2 / "blobs")
        return max(0, before - after)

    async def _call(
        self,
        method: str,
        repository: str,
        digest: str,
        actions: tuple[str, ...],
        *,
        missing_ok: bool = False,
    ) -> bytes:
        token = self._tokens.server_token(repository, actions)
        url = f"http://{self.host}/v2/{repository}/manifests/{digest}"
        headers = {"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES}
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_SECS)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, headers=headers) as answer,
        ):
            body = await answer.read()
            if answer.status == 404 and missing_ok:
                return b""
            answer.raise_for_status()
            return body


def _manifests(repositories: Path) -> list[Manifest]:
    """Every ``<repo>/_manifests/revisions/sha256/<hex>`` below
    ``repositories`` (names and times only; no link followed)."""
    found: list[Manifest] = []
    for folder, dirs, _ in os.walk(repositories):
        if "_manifests" not in dirs:
            dirs[:] = [d for d in dirs if not d.startswith("_")]
            continue
        repository = os.path.relpath(folder, repositories)
        revisions = os.path.join(folder, "_manifests", "revisions", "sha256")
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(revisions):
                # A deleted manifest loses its link; its folder stays.
                link = os.path.join(entry.path, "link")
                if entry.is_dir(follow_symlinks=False) and os.path.lexists(link):
                    stored = int(os.lstat(link).st_mtime * 1000)
                    found.append(Manifest(repository, f"sha256:{entry.name}", stored))
        dirs[:] = [d for d in dirs if not d.startswith("_")]
    return found


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total
