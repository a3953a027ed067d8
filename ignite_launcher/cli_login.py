"""Logging the local `dodil` in to a platform `make run` started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ignite_launcher.platform import LocalPlatform


def log_cli_in(platform: LocalPlatform) -> bool:
    """Point the local `dodil` at this platform and log it in as the platform
    admin, so the quickstart needs no extra step. The secret travels in the
    environment, never on a command line."""
    dodil = Path(sys.executable).parent / "dodil"
    if not dodil.exists():
        return False
    client_id, secret = platform.admin_credentials()
    env = {**os.environ, "DODIL_CLIENT_SECRET": secret}
    for argv in (
        [str(dodil), "ignite", "config", "set", "api_endpoint", platform.grpc_target],
        [str(dodil), "login", "--client-id", client_id],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            print(f"could not log dodil in: {done.stderr.strip()}", file=sys.stderr)
            return False
    return True
