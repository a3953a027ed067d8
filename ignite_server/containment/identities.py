"""Host uids for sandboxed processes, never root.

A server running as root gives every pod a uid of its own from a range no
account uses (the way ``isolate`` hands out box uids and Firecracker's
jailer runs each VM under its own uid), and every build step one dedicated
build uid (builds share their dependency caches, which that uid owns). So
whatever a sandboxed process manages to write or start on the host is owned
by an unprivileged uid that owns nothing else, and two pods never share one.

A server that is not root cannot switch uids; its sandboxes run under its own
uid inside a user namespace (see sandbox.py).
"""

from __future__ import annotations

import os
from pathlib import Path

#: First uid of the pod range; far above the uids distributions hand out to
#: accounts (and below the 2^31 that some tools mishandle).
POD_UID_BASE = 1_800_000
#: How many pods can run at once on one server.
POD_UID_COUNT = 65_536
#: The uid (and gid) of every build step.
BUILD_UID = POD_UID_BASE - 1
#: First host uid (and gid) of the user namespace image builds run in: its
#: root is this uid, its uid n is this + n. Above the pod range, so no pod
#: or build step ever shares a uid with an image build.
IMAGE_BUILD_UID_BASE = 1_900_000
#: Uids mapped into that namespace: the 16-bit range images' files use.
IMAGE_BUILD_UID_COUNT = 65_536


def privileged() -> bool:
    """Whether this server can hand out uids (it runs as root)."""
    return os.geteuid() == 0


class UidRange:
    """Hands out pod uids, each to one live pod at a time."""

    def __init__(self, base: int = POD_UID_BASE, count: int = POD_UID_COUNT) -> None:
        self._base = base
        self._count = count
        self._next = 0
        self._taken: set[int] = set()

    def take(self) -> int:
        """A uid no live pod of this server has."""
        for _ in range(self._count):
            uid = self._base + self._next
            self._next = (self._next + 1) % self._count
            if uid not in self._taken:
                self._taken.add(uid)
                return uid
        raise RuntimeError("every pod uid is in use")

    def give_back(self, uid: int) -> None:
        self._taken.discard(uid)


def hand_over(path: Path, uid: int) -> None:
    """Make ``path`` and everything below it belong to ``uid``, so a sandbox
    running as that uid can write it (the server, as root, may have put new
    files there since the last build: sources copied into a work folder)."""
    if not privileged():
        return
    for root, dirs, files in os.walk(path):
        for name in (".", *dirs, *files):
            entry = os.path.join(root, name)
            if os.lstat(entry).st_uid != uid:
                os.lchown(entry, uid, uid)
