"""State directories of launched platforms.

`make run` keeps its state in ./.state; tests and benchmarks each take a
fresh temporary directory, which this module hands out and remembers so that
whoever made it can remove it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

#: Temporary state directories this process made (for its own clean-up).
TEMPORARY_STATE_DIRS: list[Path] = []


def private_state_dir(prefix: str = "ignite-") -> Path:
    """A fresh temporary state directory. World-traversable (0755) because the
    embedded PostgreSQL runs as its own unprivileged user and must reach its
    data. Listed in TEMPORARY_STATE_DIRS so its creator can remove it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    TEMPORARY_STATE_DIRS.append(path)
    return path
