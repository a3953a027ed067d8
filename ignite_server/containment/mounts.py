"""Size-capped tmpfs mounts on the host, for the one writable folder a
sandbox shares with the server (the pod's socket folder), and an image
pod's ``/tmp``, which the OCI runtime bind-mounts into the container.

A plain host folder would put what the sandbox writes on the host's disk,
uncapped, owned by whatever uid the sandbox has, with whatever mode bits it
chose. A tmpfs instead is capped in size, mounted ``nosuid,nodev,noexec`` and
owned by the sandbox's own uid with mode 0700, lives in memory (charged to
the writing sandbox's memory cgroup), and vanishes when unmounted. Mounting
needs ``CAP_SYS_ADMIN``: a server that is not root uses plain folders (see
docs/local-pods.md).

The server unmounts each one when its sandbox ends; after a crash,
``unmount_under`` removes every mount left below a folder.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MNT_DETACH = 0x2


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_tmpfs(
    target: Path,
    *,
    size_kib: int,
    uid: int,
    gid: int,
    inodes: int | None = 64,
    executable: bool = False,
) -> None:
    """Mount a fresh tmpfs of ``size_kib`` at ``target`` for ``uid``.

    ``inodes`` caps the files it holds (None: the kernel's default, for a
    pod's whole ``/tmp``); ``executable`` leaves out ``noexec``, for a
    ``/tmp`` that programs may run from as on any host.
    """
    options = f"size={size_kib}k,mode=0700,uid={uid},gid={gid}"
    if inodes is not None:
        options += f",nr_inodes={inodes}"
    flags = MS_NOSUID | MS_NODEV | (0 if executable else MS_NOEXEC)
    if _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tmpfs at {target}: {os.strerror(err)}")


def unmount(target: Path) -> None:
    """Detach the mount at ``target`` (lazily: open files do not block it)."""
    if _libc().umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(err, f"unmount {target}: {os.strerror(err)}")


def mounts_under(folder: Path) -> list[Path]:
    """Mount points at or below ``folder``, deepest first."""
    root = str(folder.resolve())
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        # Field 5 is the mount point, with spaces etc. octal-escaped.
        point = line.split(" ")[4].encode().decode("unicode_escape")
        if point == root or point.startswith(root + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_under(folder: Path) -> int:
    """Unmount everything below ``folder``; returns how many were mounted."""
    points = mounts_under(folder)
    for point in points:
        unmount(point)
    return len(points)
