"""Idmapped mounts: a folder shown with its owner's files as another uid's.

An organization's build cache belongs, on disk, to its server's cache owner
(identities.py), a uid that never runs anything. Each build runs as a uid of
its own, and sees the cache through a mount that maps the cache owner to
that uid: files the build finds there are its own, files it creates are
written as the cache owner's. So a build can use the cache as if it owned
it, no tree is ever chowned to hand it over (a recursive chown as root over
a tree a build could write is a way out of the sandbox), and after the build
its uid owns nothing anywhere.

How (Linux 5.12+, ext4 and tmpfs among others): a throwaway user namespace
whose uid and gid maps say "cache owner → build uid" (a short-lived
``unshare`` child; the server, as root of the host, writes its maps), a
detached copy of the folder's mount (``open_tree``), the mapping attached to
it (``mount_setattr`` with ``MOUNT_ATTR_IDMAP``), and the copy attached at a
fresh mount point (``move_mount``). Bind mounts of it (bubblewrap's) keep the
mapping.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import struct
import subprocess
import time
from pathlib import Path

#: System-call numbers (no C library wrappers yet), per architecture.
_CALLS = {
    "x86_64": {"open_tree": 428, "move_mount": 429, "mount_setattr": 442},
    "aarch64": {"open_tree": 428, "move_mount": 429, "mount_setattr": 442},
}
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
OPEN_TREE_CLONE = 0x1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
MNT_DETACH = 0x2
#: struct mount_attr: attr_set, attr_clr, propagation, userns_fd (u64 each).
MOUNT_ATTR = "QQQQ"
UNSHARE = "/usr/bin/unshare"
#: How long the throwaway namespace's process may take to unshare.
UNSHARE_WAIT_SECS = 5.0


class IdmapError(OSError):
    """An idmapped mount could not be made."""


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _call(name: str, *args: object) -> int:
    number = _CALLS.get(platform.machine(), {}).get(name)
    if number is None:
        raise IdmapError(0, f"{name}: unknown on {platform.machine()}")
    result = int(_libc().syscall(number, *args))
    if result < 0:
        err = ctypes.get_errno()
        raise IdmapError(err, f"{name}: {os.strerror(err)}")
    return result


def mount_mapped(source: Path, target: Path, *, owner: int, shown_as: int) -> None:
    """Mount ``source`` at ``target`` (an existing empty folder) so that
    files of uid and gid ``owner`` appear as ``shown_as``, and files that
    uid creates there are written as ``owner``; other ids appear unmapped
    (``nobody``), untouchable. Blocking: run it off the event loop."""
    userns = _mapping_namespace(owner, shown_as)
    try:
        tree = _call(
            "open_tree",
            AT_FDCWD,
            os.fsencode(source),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW,
        )
        try:
            attr = ctypes.create_string_buffer(
                struct.pack(MOUNT_ATTR, MOUNT_ATTR_IDMAP, 0, 0, userns)
            )
            _call("mount_setattr", tree, b"", AT_EMPTY_PATH, attr, struct.calcsize(MOUNT_ATTR))
            _call("move_mount", tree, b"", AT_FDCWD, os.fsencode(target), MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(tree)
    finally:
        os.close(userns)


def unmount(target: Path) -> None:
    """Detach the mount at ``target`` (lazily: open files do not block it)."""
    if _libc().umount2(os.fsencode(target), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
            raise IdmapError(err, f"unmount {target}: {os.strerror(err)}")


def _mapping_namespace(owner: int, shown_as: int) -> int:
    """A descriptor of a user namespace mapping ``owner`` (inside) to
    ``shown_as`` (on the host), for both uids and gids."""
    child = subprocess.Popen(
        [UNSHARE, "--user", "--", "/bin/sh", "-c", "read _"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        own = os.stat("/proc/self/ns/user").st_ino
        deadline = time.monotonic() + UNSHARE_WAIT_SECS
        path = f"/proc/{child.pid}/ns/user"
        while os.stat(path).st_ino == own:
            if child.poll() is not None or time.monotonic() > deadline:
                raise IdmapError(0, "the mapping namespace did not start")
            time.sleep(0.001)
        line = f"{owner} {shown_as} 1\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{child.pid}/{name}", "w") as f:
                f.write(line)
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise IdmapError(exc.errno or 0, f"mapping namespace: {exc}") from exc
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait()
