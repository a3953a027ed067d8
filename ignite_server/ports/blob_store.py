"""The port for content-addressed code and artifacts (see store/blobs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class BlobStore(Protocol):
    """Uploaded code by sha256 and built artifacts by digest, written once."""

    def put_code(self, data: bytes) -> str:
        """Store an upload; its sha256."""
        ...

    def read_code(self, digest: str) -> bytes: ...

    def has_artifact(self, digest: str) -> bool: ...

    def artifact_path(self, digest: str) -> Path: ...

    def scratch(self, prefix: str) -> Path:
        """A fresh private folder for a build to work in."""
        ...

    def commit_artifact(self, digest: str, built: Path) -> Path:
        """Move a finished build folder into place under ``digest``."""
        ...

    def sweep_scratch(self) -> None: ...
