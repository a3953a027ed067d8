"""`ignite-server` as an operator starts it."""

from __future__ import annotations

import subprocess
import sys

from ignite_launcher import private_state_dir


def test_production_without_a_sandbox_refuses_to_start() -> None:
    state = private_state_dir("ignite-production-")
    done = subprocess.run(
        [
            sys.executable, "-m", "ignite_server",
            "--production", "--sandbox", "off", "--insecure",
            "--state-dir", str(state), "--listen", "localhost:0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ignite-server: a production server needs the pod sandbox"), last
    assert "Traceback" not in done.stderr
    # Nothing was left running: the embedded PostgreSQL stopped with it.
    postmaster = state / "postgres" / "data" / "postmaster.pid"
    assert not postmaster.exists()
