"""Safe reading of archives: uploaded code (ZIP and tar.gz), and the
plain tar stream a build's output leaves its sandbox as.

The format of an upload is recognised by its first bytes, never by a name.
One walk over the entries serves checking (SaveDraft: read everything, write
nothing) and extracting (builds: write under one directory), so what was
accepted at upload is exactly what is unpacked later; a build's output is
unpacked by the same walk, so nothing a build wrote reaches the server's
files but regular files, folders and links that stay inside. The walk
refuses, with a reason:

- absolute paths, ``..`` components, NUL bytes and backslashes in names;
- symbolic links whose target leaves the archive's root, and hard links to
  anything but a regular file seen earlier in the archive;
- device files, FIFOs and other special entries;
- more entries or unpacked bytes than its ArchiveLimits allow, or an
  unpacked/packed ratio above their ``max_ratio`` (a bomb).

Unpacked files are the server's, 0644 or 0755, whatever mode the entry had
(no setuid, setgid or sticky bit survives).

Sizes are counted from the bytes actually decompressed, not from the sizes
the archive declares, which a hostile archive can fake.
"""

from __future__ import annotations

import enum
import functools
import io
import os
import posixpath
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ignite_server.domain.errors import InvalidArgument

_CHUNK = 64 * 1024


class ArchiveFormat(enum.StrEnum):
    ZIP = "zip"
    TAR_GZ = "tar.gz"
    TAR = "tar"


@dataclass(frozen=True)
class ArchiveLimits:
    """How much an archive may hold."""

    max_entries: int
    max_unpacked_bytes: int
    #: Unpacked / packed size above which an archive counts as a bomb, once
    #: it unpacks to more than ``ratio_floor_bytes`` (0: no ratio check).
    max_ratio: int = 0
    ratio_floor_bytes: int = 0


#: Uploaded code: small files legitimately compress very well, source trees
#: stay far below 100:1.
UPLOADS = ArchiveLimits(
    max_entries=10_000,
    max_unpacked_bytes=256 * 1024 * 1024,
    max_ratio=100,
    ratio_floor_bytes=1024 * 1024,
)
#: A build's output (an artifact: the app and its dependencies, e.g. a
#: Python app's installed packages); an uncompressed stream, so no ratio.
BUILD_OUTPUTS = ArchiveLimits(max_entries=200_000, max_unpacked_bytes=2 * 1024 * 1024 * 1024)


def sniff(data: bytes) -> ArchiveFormat | None:
    """The archive format of ``data`` by its magic bytes, or None."""
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ArchiveFormat.ZIP
    if data[:2] == b"\x1f\x8b":
        return ArchiveFormat.TAR_GZ
    return None


def _reject(message: str, reason: str, entry: str = "") -> InvalidArgument:
    metadata = {"field": "archive"}
    if entry:
        metadata["entry"] = entry[:200]
    return InvalidArgument(message, reason=reason, metadata=metadata)


class _Kind(enum.Enum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


@dataclass(frozen=True)
class _Entry:
    path: str  # normalised, relative, '/'-separated
    kind: _Kind
    mode: int
    link: str = ""  # symlink target as stored, or hard-link source path
    open: Callable[[], IO[bytes]] | None = None


@dataclass(frozen=True)
class ArchiveSummary:
    format: ArchiveFormat
    entries: int
    unpacked_bytes: int


def _clean_path(name: str) -> str:
    if "\x00" in name or "\\" in name:
        raise _reject(
            f"archive entry {name[:200]!r} has a forbidden character", "ARCHIVE_UNSAFE_PATH", name
        )
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise _reject(
            f"archive entry {name[:200]!r} is an absolute path", "ARCHIVE_UNSAFE_PATH", name
        )
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _reject(
            f"archive entry {name[:200]!r} points outside the archive", "ARCHIVE_UNSAFE_PATH", name
        )
    return "/".join(parts)


def _check_symlink(path: str, target: str) -> None:
    if not target or target.startswith("/") or "\x00" in target:
        raise _reject(
            f"symbolic link {path!r} points outside the archive", "ARCHIVE_UNSAFE_LINK", path
        )
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if resolved == ".." or resolved.startswith("../"):
        raise _reject(
            f"symbolic link {path!r} points outside the archive", "ARCHIVE_UNSAFE_LINK", path
        )


def _zip_entries(data: bytes) -> Iterator[_Entry]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            path = _clean_path(info.filename)
            mode = info.external_attr >> 16
            kind_bits = stat.S_IFMT(mode)
            if info.is_dir():
                yield _Entry(path, _Kind.DIR, 0o755)
            elif kind_bits == stat.S_IFLNK:
                target = archive.read(info).decode(errors="replace")
                yield _Entry(path, _Kind.SYMLINK, 0o777, link=target)
            elif kind_bits in (0, stat.S_IFREG):
                yield _Entry(
                    path,
                    _Kind.FILE,
                    mode & 0o777 or 0o644,
                    open=functools.partial(archive.open, info),
                )
            else:
                raise _reject(
                    f"archive entry {path!r} is a special file", "ARCHIVE_UNSAFE_ENTRY", path
                )


def _tar_entries(stream: IO[bytes], compressed: bool = True) -> Iterator[_Entry]:
    # Stream mode: members are read in order, never by seeking back.
    with tarfile.open(fileobj=stream, mode="r|gz" if compressed else "r|") as archive:
        for member in archive:
            path = _clean_path(member.name)
            if member.isdir():
                yield _Entry(path, _Kind.DIR, 0o755)
            elif member.issym():
                yield _Entry(path, _Kind.SYMLINK, 0o777, link=member.linkname)
            elif member.islnk():
                yield _Entry(path, _Kind.HARDLINK, 0o644, link=_clean_path(member.linkname))
            elif member.isreg():
                yield _Entry(
                    path,
                    _Kind.FILE,
                    member.mode & 0o777 or 0o644,
                    open=functools.partial(_member_stream, archive, member),
                )
            else:
                raise _reject(
                    f"archive entry {path!r} is a special file", "ARCHIVE_UNSAFE_ENTRY", path
                )


def _member_stream(archive: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    stream = archive.extractfile(member)
    assert stream is not None  # only regular files are opened
    return stream


#: What a truncated or garbled archive raises while it is being read.
_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError)


def _walk(
    data: bytes, sink: Callable[[_Entry, Iterator[bytes]], None], limits: ArchiveLimits
) -> ArchiveSummary:
    fmt = sniff(data)
    if fmt is None:
        raise _reject("code archive is neither ZIP nor tar.gz", "ARCHIVE_FORMAT_UNKNOWN")
    entries = _zip_entries(data) if fmt == ArchiveFormat.ZIP else _tar_entries(io.BytesIO(data))
    return _walk_entries(entries, fmt, len(data), sink, limits)


def _walk_entries(
    entries: Iterator[_Entry],
    fmt: ArchiveFormat,
    packed: int,
    sink: Callable[[_Entry, Iterator[bytes]], None],
    limits: ArchiveLimits,
) -> ArchiveSummary:
    try:
        return _walk_checked(entries, fmt, packed, sink, limits)
    except _CORRUPT as err:
        raise _reject(f"not a readable {fmt} archive: {err}", "ARCHIVE_CORRUPT") from None


def _walk_checked(
    entries: Iterator[_Entry],
    fmt: ArchiveFormat,
    packed: int,
    sink: Callable[[_Entry, Iterator[bytes]], None],
    limits: ArchiveLimits,
) -> ArchiveSummary:
    count = 0
    unpacked = 0
    files: set[str] = set()

    def account(n: int, path: str) -> None:
        nonlocal unpacked
        unpacked += n
        if unpacked > limits.max_unpacked_bytes:
            raise _reject(
                f"archive unpacks to more than {limits.max_unpacked_bytes} bytes",
                "ARCHIVE_TOO_LARGE",
                path,
            )
        if (
            limits.max_ratio
            and unpacked > limits.ratio_floor_bytes
            and unpacked > limits.max_ratio * packed
        ):
            raise _reject(
                f"archive unpacks to more than {limits.max_ratio} times its size"
                " (a compression bomb)",
                "ARCHIVE_BOMB",
                path,
            )

    for entry in entries:
        count += 1
        if count > limits.max_entries:
            raise _reject(
                f"archive has more than {limits.max_entries} entries",
                "ARCHIVE_TOO_MANY_ENTRIES",
            )
        if not entry.path:
            continue
        if entry.kind == _Kind.SYMLINK:
            _check_symlink(entry.path, entry.link)
        if entry.kind == _Kind.HARDLINK and entry.link not in files:
            raise _reject(
                f"hard link {entry.path!r} does not point to a file of the archive",
                "ARCHIVE_UNSAFE_LINK",
                entry.path,
            )

        def chunks(entry: _Entry = entry) -> Iterator[bytes]:
            if entry.open is None:
                return
            with entry.open() as stream:
                while block := stream.read(_CHUNK):
                    account(len(block), entry.path)
                    yield block

        sink(entry, chunks())
        if entry.kind == _Kind.FILE:
            files.add(entry.path)
    return ArchiveSummary(fmt, count, unpacked)


def check(data: bytes, limits: ArchiveLimits = UPLOADS) -> ArchiveSummary:
    """Read the whole archive, writing nothing; raise InvalidArgument if unsafe."""

    def drain(entry: _Entry, chunks: Iterator[bytes]) -> None:
        for _ in chunks:
            pass

    return _walk(data, drain, limits)


def read_file(data: bytes, path: str, limit: int, limits: ArchiveLimits = UPLOADS) -> bytes | None:
    """The content of the regular file at ``path`` in the archive (the
    whole archive is checked on the way), or None when there is none;
    raises InvalidArgument when it is larger than ``limit`` bytes."""
    found: list[bytes] = []

    def capture(entry: _Entry, chunks: Iterator[bytes]) -> None:
        if entry.path != path or entry.kind != _Kind.FILE:
            for _ in chunks:
                pass
            return
        content = bytearray()
        for block in chunks:
            content += block
            if len(content) > limit:
                raise _reject(f"{path} is larger than {limit} bytes", "FILE_TOO_LARGE", path)
        found.append(bytes(content))

    _walk(data, capture, limits)
    return found[-1] if found else None


def extract(data: bytes, dest: Path, limits: ArchiveLimits = UPLOADS) -> ArchiveSummary:
    """Unpack the archive under ``dest`` (which must exist and be empty)."""
    return _walk(data, _writer(dest), limits)


def extract_tar(stream: IO[bytes], dest: Path, limits: ArchiveLimits) -> ArchiveSummary:
    """Unpack the plain (uncompressed) tar ``stream`` under ``dest`` (which
    must exist and be empty), read front to back: a build's output."""
    entries = _tar_entries(stream, compressed=False)
    return _walk_entries(entries, ArchiveFormat.TAR, 0, _writer(dest), limits)


def _folders(root: Path, folder: Path) -> None:
    """``folder`` and its parents below ``root``, 0755 whatever the umask (a
    build's sandbox reads them as another uid)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        if folder == root:
            break
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        os.chmod(path, 0o755)


def _writer(dest: Path) -> Callable[[_Entry, Iterator[bytes]], None]:
    root = dest.resolve()

    def write(entry: _Entry, chunks: Iterator[bytes]) -> None:
        target = root / entry.path
        # Parents are created by us and links are checked above, but a
        # symlinked directory from an earlier entry could still redirect a
        # later path: refuse anything that resolves outside the root.
        _folders(root, target.parent)
        if not target.parent.resolve().is_relative_to(root):
            raise _reject(
                f"archive entry {entry.path!r} escapes through a link",
                "ARCHIVE_UNSAFE_LINK",
                entry.path,
            )
        if entry.kind == _Kind.DIR:
            _folders(root, target)
        elif entry.kind == _Kind.SYMLINK:
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(entry.link, target)
        elif entry.kind == _Kind.HARDLINK:
            source = root / entry.link
            target.write_bytes(source.read_bytes())
        else:
            if target.is_symlink():
                target.unlink()
            with open(target, "wb") as out:
                for block in chunks:
                    out.write(block)
            os.chmod(target, 0o755 if entry.mode & 0o111 else 0o644)

    return write
