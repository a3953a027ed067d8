"""Build volumes: a file system of its own for each organization's builds.

Everything an organization's builds write on disk (its dependency caches,
and each running build's work folders) lives on one ext4 file system kept in
a sparse image file, ``<root>/<org>.img``, mounted ``nosuid,nodev`` at
``<root>/<org>/``. Why a file system per organization rather than a folder:

- the quota is the file system's size: a build that fills it gets ENOSPC,
  the host's disk and other organizations are untouched, and how full it is
  is one ``statvfs``, not a walk over files a build wrote;
- forgetting an organization's caches (its volume is full, or the
  organization is gone) is unmounting and deleting one file, never a
  recursive delete, as root, of a tree a build could have filled with links;
- nothing of one organization's builds is even reachable from another's:
  a build's sandbox mounts only its own organization's volume.

Layout of a volume, made once when it is created:

- ``cache/``: the dependency caches, owned by the server's cache owner
  (identities.py) and shown to each build as its own through an idmapped
  mount (idmap.py);
- ``builds/``: root's (0711); each running build gets a folder in it, made
  by the server before the build's first process starts and owned by that
  build's uid.

A server that is not root cannot mount: its volumes are plain folders with
the same layout and no quota (docs/builds.md says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from ignite_server.containment import identities, mounts
from ignite_server.domain.build_settings import DEFAULT_CACHE_QUOTA_MB

#: At the start of a build, a volume fuller than this is made anew: the
#: organization's caches are forgotten (its next builds download again)
#: rather than letting builds fail for want of space.
RESET_AT_FRACTION = 0.9
MKFS = "/usr/sbin/mkfs.ext4"
MOUNT = "/usr/bin/mount"
#: Names of the layout's folders.
CACHE = "cache"
BUILDS = "builds"


class VolumeUnavailable(OSError):
    """A volume could not be made or mounted (the message says why)."""


@dataclass(frozen=True)
class Volume:
    """One organization's mounted build volume."""

    organization: str
    path: Path

    @property
    def cache(self) -> Path:
        return self.path / CACHE

    @property
    def builds(self) -> Path:
        return self.path / BUILDS

    def usage(self) -> tuple[int, int]:
        """(bytes used, bytes in all) of the volume."""
        info = os.statvfs(self.path)
        total = info.f_blocks * info.f_frsize
        return total - info.f_bfree * info.f_frsize, total


class BuildVolumes:
    """The build volumes below ``root``, ``quota_mb`` each; caches owned by
    ``cache_owner``."""

    def __init__(
        self, root: Path, *, quota_mb: int = DEFAULT_CACHE_QUOTA_MB, cache_owner: int
    ) -> None:
        self.root = root
        self.quota_mb = quota_mb
        self.cache_owner = cache_owner
        self._privileged = identities.privileged()
        self._locks: dict[str, asyncio.Lock] = {}
        #: Builds running on each organization's volume.
        self._users: dict[str, int] = {}
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o711)

    @contextlib.asynccontextmanager
    async def use(self, organization: str) -> AsyncIterator[Volume]:
        """The organization's volume for one build: made and mounted on
        first use (a mounted one, from this server or a crashed predecessor,
        is kept), and made anew when it is fuller than RESET_AT_FRACTION and
        no other build of the organization is using it."""
        lock = self._locks.setdefault(organization, asyncio.Lock())
        volume = Volume(organization, self.root / organization)
        async with lock:
            await asyncio.to_thread(self._ensure, volume)
            used, total = volume.usage()
            idle = not self._users.get(organization)
            if self._privileged and idle and total and used > RESET_AT_FRACTION * total:
                await asyncio.to_thread(self._recreate, volume)
            self._users[organization] = self._users.get(organization, 0) + 1
        try:
            yield volume
        finally:
            self._users[organization] -= 1

    def _ensure(self, volume: Volume) -> None:
        if not self._privileged:
            self._lay_out(volume.path)
            return
        if volume.path in mounts.mounts_under(volume.path):
            return
        image = self._image(volume)
        if not image.exists():
            self._make(image)
        volume.path.mkdir(mode=0o711, exist_ok=True)
        self._run(
            [MOUNT, "-t", "ext4", "-o", "loop,nosuid,nodev,noatime", str(image), str(volume.path)]
        )
        self._lay_out(volume.path)

    def _recreate(self, volume: Volume) -> None:
        """Forget the volume's contents: running builds of the organization
        keep the old file system until they end (a lazy unmount)."""
        mounts.unmount(volume.path)
        self._image(volume).unlink(missing_ok=True)
        self._ensure(volume)

    def _image(self, volume: Volume) -> Path:
        return self.root / f"{volume.organization}.img"

    def _make(self, image: Path) -> None:
        partial = image.with_suffix(".new")
        partial.unlink(missing_ok=True)
        with open(partial, "wb") as out:
            out.truncate(self.quota_mb * 1024 * 1024)
        # No journal (a cache lost in a crash is rebuilt), no reserved
        # blocks, root's root folder: the layout is made after mounting.
        self._run([MKFS, "-q", "-F", "-O", "^has_journal", "-m", "0", str(partial)])
        partial.rename(image)

    def _lay_out(self, path: Path) -> None:
        """The root-owned top and builds/, and cache/ of the cache owner,
        made on a fresh volume (nothing a build wrote is followed: the top
        folder is root's and builds cannot write it)."""
        path.mkdir(mode=0o711, parents=True, exist_ok=True)
        os.chmod(path, 0o711)
        builds = path / BUILDS
        builds.mkdir(mode=0o711, exist_ok=True)
        cache = path / CACHE
        try:
            cache.mkdir(mode=0o700)
        except FileExistsError:
            return
        if self._privileged:
            os.chown(cache, self.cache_owner, self.cache_owner)

    def forget_all(self) -> None:
        """Unmount and delete every volume (at start-up, before any build)."""
        self.close()
        for image in self.root.glob("*.img"):
            image.unlink(missing_ok=True)

    def close(self) -> None:
        """Unmount every volume (their image files stay for the next start)."""
        if self._privileged:
            for point in mounts.mounts_under(self.root):
                with contextlib.suppress(OSError):
                    mounts.unmount(point)

    @staticmethod
    def _run(argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()
            raise VolumeUnavailable(
                0, f"{Path(argv[0]).name} failed: {why[-1] if why else done.returncode}"
            )


def available() -> str:
    """ "" when volumes can be made here, else why not."""
    if not identities.privileged():
        return ""
    for tool in (MKFS, MOUNT):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    return ""
