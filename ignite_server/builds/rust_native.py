"""The Rust pipeline's native target, ``x86_64-unknown-linux-gnu``: the
binary Cargo built is the pod's process, ``app`` in the artifact, started
from the ``exec`` pool where the backend has one."""

from __future__ import annotations

from pathlib import Path

from ignite_server.builds.jail import BuildJail
from ignite_server.builds.launch_manifest import (
    CODE_PLACEHOLDER,
    EXEC_POOL,
    write_launch_manifest,
)

NATIVE_TARGET = "x86_64-unknown-linux-gnu"
#: The binary's name inside the artifact.
BINARY = "app"


class NativeTarget:
    """Builds for linux/amd64 and runs the binary as it is."""

    triple = NATIVE_TARGET
    artifact = BINARY
    wasm = False

    async def finish_in(self, jail: BuildJail) -> None:
        """Nothing more: the binary is the artifact."""

    def write_manifest(self, out_dir: Path) -> None:
        """Writes the launch manifest that starts the binary."""
        write_launch_manifest(out_dir, [f"{CODE_PLACEHOLDER}/{BINARY}"], prestart=EXEC_POOL)
