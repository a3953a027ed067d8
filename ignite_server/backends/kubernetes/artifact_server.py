"""Serving versions' artifacts to pods: ``GET /artifacts/<sha256>.tar``.

A pod cannot see the server's disk, so its init container fetches the
version's artifact over HTTP from this server, on a listener of its own
(not the gRPC port): an artifact directory is packed once into a
deterministic tar (sorted, zero mtimes and owners, so the same directory
always has the same sha256) kept under the state directory, and served to
a caller that shows the token of that very archive, an HMAC of its sha256
under a key the server keeps in its state directory. A token opens one
artifact and nothing else; the init container checks the sha256 of what it
received. Why not images per version: building and pushing an image per
publish needs a registry and a builder in every installation, and makes a
publish as slow as a push; an archive over HTTP needs neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import tarfile
from pathlib import Path

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

KEY_FILE = "kubernetes-artifact.key"


class ArtifactServer:
    """Packs artifact directories and serves them to pods with a token."""

    def __init__(self, state_dir: Path, listen: str, public_url: str = "") -> None:
        self._dir = state_dir / "kubernetes-artifacts"
        self._listen = listen
        self._public_url = public_url
        self._key = b""
        self._packed: dict[Path, str] = {}
        self._locks: dict[Path, asyncio.Lock] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        """Bind the listener; ``url`` is then the prefix pods fetch from."""
        self._dir.mkdir(parents=True, exist_ok=True)
        self._key = await asyncio.to_thread(_load_key, self._dir.parent / KEY_FILE)
        app = web.Application()
        app.router.add_get("/artifacts/{sha256}.tar", self._get)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, _, port = self._listen.rpartition(":")
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = self._public_url.rstrip("/") or f"http://{host}:{bound}"
        log.info("kubernetes.artifacts.serving", url=self.url)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def token(self, sha256: str) -> str:
        """The token that opens the archive ``sha256`` (and nothing else)."""
        return hmac.new(self._key, sha256.encode(), hashlib.sha256).hexdigest()

    def url_of(self, sha256: str) -> str:
        return f"{self.url}/artifacts/{sha256}.tar"

    async def publish(self, artifact_dir: Path) -> str:
        """Pack ``artifact_dir`` (once) and return the archive's sha256."""
        known = self._packed.get(artifact_dir)
        if known is not None:
            return known
        lock = self._locks.setdefault(artifact_dir, asyncio.Lock())
        async with lock:
            if artifact_dir not in self._packed:
                self._packed[artifact_dir] = await asyncio.to_thread(_pack, artifact_dir, self._dir)
        return self._packed[artifact_dir]

    async def _get(self, request: web.Request) -> web.StreamResponse:
        sha256 = request.match_info["sha256"]
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given, self.token(sha256)):
            raise web.HTTPForbidden(text="a token for this artifact is needed")
        path = self._dir / f"{sha256}.tar"
        if not all(c in "0123456789abcdef" for c in sha256) or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)


def _load_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return key


def _pack(artifact_dir: Path, out_dir: Path) -> str:
    scratch = out_dir / f".{secrets.token_hex(8)}.tar"

    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode &= 0o755
        return info

    with tarfile.open(scratch, "w", format=tarfile.PAX_FORMAT) as tar:
        for root, dirs, files in os.walk(artifact_dir):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = Path(root) / name
                tar.add(path, str(path.relative_to(artifact_dir)), recursive=False, filter=clean)
    digest = hashlib.sha256()
    with scratch.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    sha256 = digest.hexdigest()
    scratch.replace(out_dir / f"{sha256}.tar")
    return sha256
