"""Where the exec launcher is: the pre-started process of ``exec`` pools.

The launcher (runtimes/exec, a static Go binary) runs in a pod's sandbox as
the pod's uid until the pod is given its app, then execs the app's binary
(docs/pod-protocol.md, Pre-started pools). ``make exec-launcher`` (part of
``make run`` and ``make test``) builds it into ``build/runtimes/exec/``; a
server without it starts Go and Rust pods directly, without a pool.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Where ``make exec-launcher`` puts the binary. It is mounted read-only
#: into pods by its folder, which holds nothing else.
DEFAULT_PATH = Path(__file__).resolve().parents[3] / "build" / "runtimes" / "exec" / "ignite-exec"


def installed(path: Path = DEFAULT_PATH) -> Path | None:
    """``path`` when an executable launcher is there, else None."""
    return path if path.is_file() and os.access(path, os.X_OK) else None
