"""uv.lock is what pyproject.toml asks for: a range changed without `make
lock` would leave a fresh clone installing something else than CI tested."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UV = ROOT / "build" / "uv" / "bin" / "uv"


def test_the_lock_file_agrees_with_pyproject() -> None:
    assert UV.exists(), "uv is installed by `make setup` (tools/uv-requirements.txt)"
    done = subprocess.run(
        [str(UV), "lock", "--check", "--offline", "--python", "python3.11"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
