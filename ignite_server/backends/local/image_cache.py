"""Unpacked images, one read-only root file system per digest, shared by
every pod that runs it.

The first pod of a digest fetches the image from the registry with
``skopeo`` into an OCI layout and unpacks it with ``umoci`` into a fresh
folder; every later pod of that digest reuses the result. Concurrent starts
of one digest wait for one fetch (a lock per digest). What is unpacked is
made safe to keep on the host before any pod sees it:

- every setuid and setgid bit is cleared and every file capability
  (``security.capability``) removed: an image may carry a setuid-root
  program, which on the host must never be one (pods could not use it
  anyway, with ``no_new_privs``, but the host could);
- device nodes are removed: a container gets its devices from the OCI
  runtime, never from its image;
- the mount points every pod needs (``/proc``, ``/dev``, ``/tmp``,
  ``/etc/hosts``, ``/etc/ignite/tls``, the cgroup folders) are created, so the runtime never
  writes to the shared tree (it is mounted read-only into each pod).

An image is unpacked into a temporary folder and renamed into place once
complete, so a crash leaves no half-unpacked image that looks usable;
temporary folders left by a server that died are removed at start.

The cache lives in ``<state_dir>/images/``, root's and mode 0700, so no
other host user traverses it (the unpacked files keep the owners the image
gave them). Images stay until the state folder is cleared: eviction of
digests no pod used for a while is not implemented yet.

Only the registry on loopback (the platform's own) is read without TLS
verification; any other is verified. The image is read with the
credentials given (the pod's organization's read-only ones, for the
platform's registry), through an auth file of its own, never with whatever
the server's account may have configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import re
import shutil
import stat
import uuid
from pathlib import Path

import structlog

from ignite_common.addresses import is_loopback
from ignite_server.ports.image_builder import RegistryCredentials
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_backend import PodStartError
from ignite_server.ports.registry_auth import private_auth_file

log = structlog.get_logger(__name__)

#: A digest the cache can name a folder after (nothing else reaches a path).
DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
#: The tag the fetched image gets in its temporary OCI layout.
LAYOUT_TAG = "image"
#: Folders and files (relative to the rootfs) every container mounts over.
MOUNT_POINT_DIRS = (
    "proc",
    "dev",
    "tmp",
    "sys/fs/cgroup/memory",
    "sys/fs/cgroup/cpu",
    "etc/ignite/tls",
)
MOUNT_POINT_FILES = ("etc/hosts",)
#: How long a fetch and unpack may take: a big image over loopback takes
#: seconds; past this the registry or the disk is in trouble.
FETCH_TIMEOUT_SECS = 300.0
#: Temporary folders of the cache start with this.
PARTIAL_PREFIX = "partial-"


class ImageCache:
    """Unpacked root file systems by digest under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        for leftover in root.glob(f"{PARTIAL_PREFIX}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        self._locks: dict[str, asyncio.Lock] = {}
        #: Digests whose mount points this process checked: an image
        #: unpacked by an older server may lack a newer one.
        self._checked: set[str] = set()

    def path(self, digest: str) -> Path:
        """Where the root file system of ``digest`` is (or will be)."""
        found = DIGEST.fullmatch(digest)
        if found is None:
            raise PodStartError(f"the image digest {digest!r} is not a sha256 digest")
        return self.root / found.group(1) / "rootfs"

    async def rootfs(
        self, image: ImageLaunch, credentials: RegistryCredentials | None = None
    ) -> Path:
        """The unpacked root file system of ``image``, fetched (with
        ``credentials``) the first time; raises PodStartError when the image
        cannot be had."""
        rootfs = self.path(image.digest)
        if rootfs.is_dir():
            if image.digest not in self._checked:
                await asyncio.to_thread(_make_mount_points, rootfs)
                self._checked.add(image.digest)
            return rootfs
        lock = self._locks.setdefault(image.digest, asyncio.Lock())
        async with lock:
            if not rootfs.is_dir():
                await self._fetch(image, rootfs.parent, credentials)
        self._checked.add(image.digest)
        return rootfs

    async def _fetch(
        self, image: ImageLaunch, final: Path, credentials: RegistryCredentials | None
    ) -> None:
        partial = self.root / f"{PARTIAL_PREFIX}{uuid.uuid4().hex}"
        partial.mkdir(mode=0o700)
        try:
            layout = partial / "layout"
            started = asyncio.get_running_loop().time()
            host = image.reference.split("/", 1)[0]
            with private_auth_file(host, credentials) as (auth, home):
                copy = ["skopeo", "copy", "--quiet", "--src-authfile", auth]
                if _on_loopback(image.reference):
                    copy.append("--src-tls-verify=false")
                await _run(
                    [*copy, f"docker://{image.reference}", f"oci:{layout}:{LAYOUT_TAG}"],
                    f"cannot fetch the image {image.reference}",
                    env={"PATH": "/usr/bin:/bin", "HOME": home},
                )
            await _run(
                [
                    "umoci",
                    "raw",
                    "unpack",
                    "--image",
                    f"{layout}:{LAYOUT_TAG}",
                    str(partial / "rootfs"),
                ],
                f"cannot unpack the image {image.reference}",
            )
            await asyncio.to_thread(shutil.rmtree, layout)
            await asyncio.to_thread(seal, partial / "rootfs")
            partial.rename(final)
            log.info(
                "image unpacked",
                digest=image.digest,
                secs=round(asyncio.get_running_loop().time() - started, 3),
            )
        finally:
            if partial.exists():
                await asyncio.to_thread(shutil.rmtree, partial, True)


async def _run(argv: list[str], failure: str, env: dict[str, str] | None = None) -> None:
    """Run one tool; raise PodStartError with ``failure`` and its output."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
        )
    except OSError as exc:
        raise PodStartError(f"{failure}: {argv[0]}: {exc.strerror or exc}") from exc
    try:
        async with asyncio.timeout(FETCH_TIMEOUT_SECS):
            output, _ = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise PodStartError(f"{failure}: {argv[0]} took over {FETCH_TIMEOUT_SECS:g}s") from None
    if proc.returncode != 0:
        detail = output.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise PodStartError(f"{failure}: {' '.join(detail) or f'exit {proc.returncode}'}")


def _on_loopback(reference: str) -> bool:
    """Whether the reference's registry is on this machine's loopback."""
    return is_loopback(reference.split("/", 1)[0])


def seal(rootfs: Path) -> None:
    """Make an unpacked tree safe to keep on the host and share read-only
    (see the module docstring)."""
    os.chmod(rootfs, 0o755)
    for folder, dirs, files in os.walk(rootfs):
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            info = os.lstat(path)
            mode = info.st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                os.unlink(path)
                continue
            if stat.S_ISLNK(mode):
                continue
            if mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID))
            if stat.S_ISREG(mode):
                with contextlib.suppress(OSError):
                    os.removexattr(path, "security.capability")
    _make_mount_points(rootfs)


def _make_mount_points(rootfs: Path) -> None:
    """Create the mount points every container needs, never following a
    symbolic link of the image out of the tree (where one is in the way,
    the OCI runtime resolves it inside the container's root)."""
    root_fd = os.open(rootfs, os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for relative in MOUNT_POINT_DIRS:
            fd = _open_dirs(root_fd, relative.split("/"))
            if fd is not None:
                os.close(fd)
        for relative in MOUNT_POINT_FILES:
            *parents, name = relative.split("/")
            fd = _open_dirs(root_fd, parents)
            if fd is None:
                continue
            try:
                created = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd
                )
                os.close(created)
            except FileExistsError:
                pass
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)


def _open_dirs(root_fd: int, parts: list[str]) -> int | None:
    """Open (creating where missing) the folder ``parts`` below ``root_fd``;
    None when something other than a folder is in the way."""
    fd = os.dup(root_fd)
    for part in parts:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        try:
            child = os.open(part, os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                return None
            raise
        os.close(fd)
        fd = child
    return fd
