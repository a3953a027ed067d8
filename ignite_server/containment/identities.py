"""Host uids for sandboxed processes, never root, never shared by two servers.

A server running as root gives every pod a uid of its own, every build a
uid of its own, and every Dockerfile build a range of 65,536 uids of its
own (the root of that build's user namespace and the ids its image's files
use), all taken from a **block** of host uids no account uses (the way
``isolate`` hands out box uids and Firecracker's jailer runs each VM under
its own uid). Whatever a sandboxed process manages to write or start on the
host is owned by an unprivileged uid that owns nothing else, and two pods,
two builds, or a pod and a build never share one while both live.

Blocks are reserved per state folder, so two servers on one host never hand
out the same uid: the reservation is a file ``<registry>/<block>`` naming
the state folder, held with ``flock`` while its server runs, and the state
folder remembers its block (``<state>/uid-block``) so a restarted server
takes the same one (build caches on disk stay owned by the block's cache
owner). A reservation whose state folder is gone, or names another block,
is free again; when none is free, the block of the server stopped longest
ago is taken over (its state folder gets another block, and makes its build
caches anew, when it starts again). A state folder whose block is held by a
live server is in use: the second server refuses to start.

Layout of a block (offsets from its first uid):

- 0: the **cache owner**, which owns organizations' build caches on disk and
  never runs anything; a build reaches its organization's cache through an
  idmapped mount that shows the cache owner's files as the build's own uid
  (idmap.py), so no tree is ever chowned;
- 1 … 65,535: build uids, one per running build;
- 65,536 … 131,071: pod uids, one per live pod;
- from 2^20: ranges of 65,536 uids, one per running Dockerfile build.

A server that is not root cannot switch uids; its sandboxes run under its own
uid inside a user namespace (see sandbox.py), and it reserves nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ignite_server.domain.build_settings import BLOCK_SIZE, DEFAULT_UID_RANGE

#: Offsets inside a block (see the module docstring).
CACHE_OWNER_OFFSET = 0
BUILD_UIDS = (1, 65_535)
POD_UIDS = (65_536, 65_536)
IMAGE_RANGES_START = 1 << 20
#: Uids mapped into one Dockerfile build's user namespace: the 16-bit range
#: images' files use.
IMAGE_RANGE_SIZE = 65_536
#: Where reservations live unless configured otherwise (persistent: a block
#: stays with its state folder across reboots).
DEFAULT_REGISTRY = Path("/var/lib/ignite/uid-blocks")
#: The file in a state folder that remembers its block.
STATE_FILE = "uid-block"


def privileged() -> bool:
    """Whether this server can hand out uids (it runs as root)."""
    return os.geteuid() == 0


class UidsExhausted(RuntimeError):
    """Every uid of a pool is taken, or no block is free."""


class StateInUse(RuntimeError):
    """Another live server holds this state folder's block."""


class UidPool:
    """Hands out uids of ``[base, base + count)``, each to one holder at a time."""

    def __init__(self, base: int, count: int) -> None:
        self.base = base
        self.count = count
        self._next = 0
        self._taken: set[int] = set()

    def take(self) -> int:
        """A uid no live holder has."""
        for _ in range(self.count):
            uid = self.base + self._next
            self._next = (self._next + 1) % self.count
            if uid not in self._taken:
                self._taken.add(uid)
                return uid
        raise UidsExhausted(f"all {self.count} uids from {self.base} are in use")

    def give_back(self, uid: int) -> None:
        self._taken.discard(uid)

    def __contains__(self, uid: int) -> bool:
        return self.base <= uid < self.base + self.count


@dataclass
class UidBlock:
    """One server's uids; ``lock_fd`` holds its reservation while it lives."""

    first: int
    index: int = -1
    lock_fd: int = -1
    #: The state folder had another block (or none) before: what it keeps on
    #: disk owned by the old block's uids is to be made anew.
    moved: bool = False
    pods: UidPool = field(init=False)
    builds: UidPool = field(init=False)
    image_ranges: UidPool = field(init=False)

    def __post_init__(self) -> None:
        self.pods = UidPool(self.first + POD_UIDS[0], POD_UIDS[1])
        self.builds = UidPool(self.first + BUILD_UIDS[0], BUILD_UIDS[1])
        # A pool of range numbers: range n is IMAGE_RANGE_SIZE uids at
        # image_range_base(n).
        self.image_ranges = UidPool(0, (BLOCK_SIZE - IMAGE_RANGES_START) // IMAGE_RANGE_SIZE)

    @property
    def cache_owner(self) -> int:
        return self.first + CACHE_OWNER_OFFSET

    def image_range_base(self, number: int) -> int:
        """The first host uid of image-build range ``number``."""
        return self.first + IMAGE_RANGES_START + number * IMAGE_RANGE_SIZE

    def owns(self, uid: int) -> bool:
        return self.first <= uid < self.first + BLOCK_SIZE

    def release(self) -> None:
        """Give the reservation up (the server is stopping)."""
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


def block_of(state_dir: Path, uid_range: tuple[int, int] = DEFAULT_UID_RANGE) -> UidBlock | None:
    """The block ``state_dir`` remembers (not reserved: for reading which
    uids a server there hands out), or None."""
    index = _remembered(state_dir)
    if index is None:
        return None
    return UidBlock(first=uid_range[0] + index * BLOCK_SIZE, index=index)


def reserve(
    state_dir: Path,
    uid_range: tuple[int, int] = DEFAULT_UID_RANGE,
    registry: Path = DEFAULT_REGISTRY,
) -> UidBlock:
    """The block of ``state_dir``, held until ``release`` (the pod backend
    and the builds of one server share it); StateInUse when another live
    server holds it, UidsExhausted when no block is free."""
    if not privileged():
        return UidBlock(first=uid_range[0])
    state_dir.mkdir(parents=True, exist_ok=True)
    return _reserve(state_dir.resolve(), uid_range, registry)


def _reserve(state_dir: Path, uid_range: tuple[int, int], registry: Path) -> UidBlock:
    registry.mkdir(parents=True, exist_ok=True, mode=0o755)
    blocks = uid_range[1] // BLOCK_SIZE
    remembered = _remembered(state_dir)
    with _registry_lock(registry):
        for index in _candidates(state_dir, remembered, blocks, registry):
            path = registry / str(index)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if index == remembered and _read(path) == str(state_dir):
                    raise StateInUse(
                        f"another running server uses the state folder {state_dir}"
                    ) from None
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(state_dir).encode(), 0)
            (state_dir / STATE_FILE).write_text(f"{index}\n")
            return UidBlock(
                first=uid_range[0] + index * BLOCK_SIZE,
                index=index,
                lock_fd=fd,
                moved=index != remembered,
            )
    raise UidsExhausted(f"every block of {BLOCK_SIZE} uids in {uid_range} is in use")


def _candidates(state_dir: Path, remembered: int | None, blocks: int, registry: Path) -> list[int]:
    """Blocks to try, best first: the one the state folder remembers; free
    ones (never reserved, or their state folder is gone or moved on); then
    the reservations of stopped servers, least recently taken first (their
    state folders get another block when they start again)."""
    free: list[int] = []
    taken: list[tuple[float, int]] = []
    for index in range(blocks):
        path = registry / str(index)
        owner = _read(path)
        if index == remembered and owner in ("", str(state_dir)):
            continue
        if not owner or not _still_reserved(Path(owner), index):
            free.append(index)
        else:
            taken.append((path.stat().st_mtime, index))
    first = [remembered] if remembered is not None and remembered < blocks else []
    return [*first, *free, *(index for _, index in sorted(taken))]


def _remembered(state_dir: Path) -> int | None:
    try:
        return int((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _still_reserved(state_dir: Path, index: int) -> bool:
    """Whether ``state_dir`` still exists and remembers block ``index``."""
    return _remembered(state_dir) == index


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def _registry_lock(registry: Path) -> Iterator[None]:
    """Serialises servers choosing blocks at the same moment."""
    fd = os.open(registry / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
