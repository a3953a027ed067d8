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
import tempfile
from pathlib import Path


class BlobStore:
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
