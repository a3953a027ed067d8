"""Content-addressed storage of uploaded code and built artifacts on disk.

``code/<sha256>`` holds an upload exactly as received (a source file or an
archive); ``artifacts/<digest>/`` holds a build's output directory. Both are
written once under a temporary name and renamed into place, so a reader never
sees a half-written entry and a crash leaves only garbage to sweep, never a
corrupt entry. Nothing here is ever modified after it is written: versions
refer to their code and artifact by digest, which is what makes them
immutable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path


class DiskBlobStore:
    """Uploaded code by sha256, and artifact directories by digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.code_dir = root / "code"
        self.artifact_dir = root / "artifacts"
        self.scratch_dir = root / "scratch"
        for path in (self.code_dir, self.artifact_dir, self.scratch_dir):
            path.mkdir(parents=True, exist_ok=True)

    def put_code(self, data: bytes) -> str:
        """Store ``data``; return its sha256 (hex)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.code_dir / digest
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=self.scratch_dir)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        return digest

    def read_code(self, digest: str) -> bytes:
        return (self.code_dir / digest).read_bytes()

    def artifact_path(self, digest: str) -> Path:
        return self.artifact_dir / digest

    def has_artifact(self, digest: str) -> bool:
        return (self.artifact_dir / digest).is_dir()

    def scratch(self, prefix: str) -> Path:
        """A fresh private directory for a build to work in."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.scratch_dir))

    def commit_artifact(self, digest: str, built: Path) -> Path:
        """Move a finished build directory into place under ``digest``."""
        final = self.artifact_dir / digest
        _seal(built)
        if final.exists():
            # Two builds of the same inputs raced; they are interchangeable.
            shutil.rmtree(built, ignore_errors=True)
        else:
            os.replace(built, final)
        return final

    def sweep_scratch(self) -> None:
        """Remove what interrupted builds left behind (called at start-up)."""
        for entry in self.scratch_dir.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def _seal(path: Path) -> None:
    """Make a finished build output the server's and plain: owned by the
    server, readable by every pod uid (directories 0755, files 0644 or 0755),
    with no setuid, setgid or sticky bit, so nothing a build wrote can run
    with privileges or be changed by the uid that wrote it."""
    owner = os.geteuid()
    for root, dirs, files in os.walk(path):
        _plain(root, directory=True, owner=owner)
        for name in dirs:
            _plain(os.path.join(root, name), directory=True, owner=owner)
        for name in files:
            _plain(os.path.join(root, name), directory=False, owner=owner)


def _plain(path: str, *, directory: bool, owner: int) -> None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        if info.st_uid != owner:
            os.lchown(path, owner, owner)
        return
    if info.st_uid != owner:
        os.chown(path, owner, owner)
    executable = directory or info.st_mode & 0o111
    wanted = 0o755 if executable else 0o644
    if stat.S_IMODE(info.st_mode) != wanted:
        os.chmod(path, wanted)
