"""Packing a project directory into the tar.gz archive a draft is saved from.

Which files go in follows git's ignore rules: every ``.gitignore`` and
``.igniteignore`` in the tree applies to its own directory and below, a
deeper file's rules win over a shallower one's, and at one level
``.igniteignore`` wins over ``.gitignore`` (so it can re-include a file git
ignores, e.g. a built asset). An ignored directory is not entered, so nothing
beneath it can be re-included, as in git. ``.git/`` is never packed.

The archive is reproducible: entries sorted, timestamps, owners and
permissions (beyond the executable bit) normalised, gzip header without a
date. Packing the same tree twice gives the same bytes, so the draft's
``code_hash`` changes only when the code does.

Symbolic links are followed when they point inside the project and skipped
(with a warning) when they point outside it, so a project cannot leak files
from elsewhere on the machine into an upload.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pathspec

IGNORE_FILES = (".gitignore", ".igniteignore")
#: Directories never packed whatever the ignore files say.
ALWAYS_SKIPPED = frozenset({".git"})


@dataclass(frozen=True)
class _Rules:
    """The ignore patterns of one directory (base is relative to the root)."""

    base: PurePosixPath
    spec: pathspec.PathSpec


@dataclass
class PackResult:
    """A packed archive and what went into it."""

    data: bytes
    files: list[str] = field(default_factory=list)
    total_bytes: int = 0


class IgnoreRules:
    """The ignore rules in force in one directory, from the root down."""

    def __init__(self, chain: tuple[_Rules, ...] = ()) -> None:
        self._chain = chain

    def descend(self, directory: Path, relative: PurePosixPath) -> IgnoreRules:
        """The rules for ``directory``: ours plus its own ignore files."""
        chain = self._chain
        for name in IGNORE_FILES:
            try:
                lines = (
                    (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
                )
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                continue
            chain = (*chain, _Rules(relative, pathspec.GitIgnoreSpec.from_lines(lines)))
        return IgnoreRules(chain)

    def ignored(self, relative: PurePosixPath, is_dir: bool) -> bool:
        """Whether the path (relative to the project root) is ignored."""
        verdict = False
        for rules in self._chain:
            inner = (
                relative.relative_to(rules.base).as_posix()
                if rules.base.parts
                else relative.as_posix()
            )
            result = rules.spec.check_file(inner + "/" if is_dir else inner)
            if result.include is not None:
                # Later (deeper, or .igniteignore) rules override earlier ones.
                verdict = result.include
        return verdict


def iter_files(root: Path, warn: Callable[[str], None] | None = None) -> Iterator[tuple[str, Path]]:
    """Yield ``(archive name, real path)`` of every file to pack, sorted."""
    root = root.resolve()
    yield from _walk(root, root, PurePosixPath(), IgnoreRules(), warn)


def _walk(
    root: Path,
    directory: Path,
    relative: PurePosixPath,
    rules: IgnoreRules,
    warn: Callable[[str], None] | None,
) -> Iterator[tuple[str, Path]]:
    rules = rules.descend(directory, relative)
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        path = Path(entry.path)
        rel = relative / entry.name
        if entry.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root) or not target.exists():
                if warn:
                    warn(f"skipping {rel}: a link to outside the project")
                continue
            is_dir = target.is_dir()
        else:
            is_dir = entry.is_dir()
        if is_dir and entry.name in ALWAYS_SKIPPED:
            continue
        if rules.ignored(rel, is_dir):
            continue
        if is_dir:
            if entry.is_symlink():
                # A link to a directory inside the project packs that
                # directory's files twice at most; never recurse into links,
                # which is how cycles start.
                if warn:
                    warn(f"skipping {rel}: a link to a directory")
                continue
            yield from _walk(root, path, rel, rules, warn)
        elif path.is_file():
            yield rel.as_posix(), path


def pack_directory(root: Path, warn: Callable[[str], None] | None = None) -> PackResult:
    """Pack ``root`` (honouring ignore files) into a reproducible tar.gz."""
    result = PackResult(b"")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name, path in iter_files(root, warn):
            data = path.read_bytes()
            mode = path.stat().st_mode
            member = tarfile.TarInfo(name)
            member.size = len(data)
            member.mode = 0o755 if mode & stat.S_IXUSR else 0o644
            member.mtime = 0
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            archive.addfile(member, io.BytesIO(data))
            result.files.append(name)
            result.total_bytes += len(data)
    result.data = buffer.getvalue()
    return result
