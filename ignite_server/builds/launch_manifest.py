"""Writing ``ignite-launch.json``, the artifact manifest of docs/pod-protocol.md,
and copying user sources, for the compiled runtimes' pipelines."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from ignite_server.ports.pod_protocol import CODE_PLACEHOLDER, EXEC_POOL, MANIFEST_NAME

__all__ = ["CODE_PLACEHOLDER", "EXEC_POOL", "copy_sources", "write_launch_manifest"]


def write_launch_manifest(
    out_dir: Path,
    argv: Sequence[str],
    *,
    ro_paths: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    prestart: str | None = None,
    prestart_files: Sequence[str] = (),
) -> None:
    """Writes the manifest of a compiled runtime's artifact: ``prestart``
    names the pre-started pool its pods may come from (null: none), and
    ``prestart_files`` the artifact's files such a pod's process reads
    before it is given the app."""
    manifest: dict[str, object] = {
        "argv": list(argv),
        "ro_paths": list(ro_paths),
        "env": dict(env or {}),
        "prestart": prestart,
    }
    if prestart_files:
        manifest["prestart_files"] = list(prestart_files)
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def copy_sources(source: Path, destination: Path, *, skip_top_level: Sequence[str] = ()) -> None:
    """Copies a user's project. Symlinks stay links (never followed, so an
    archive cannot pull host files into a build), and files get fresh
    modification times so mtime-based tools (Cargo) see them as changed.
    ``skip_top_level`` names root entries left out (e.g. a stale build output
    directory shipped in the archive)."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        return set(skip_top_level) & set(names) if Path(directory) == source else set()

    shutil.copytree(
        source,
        destination,
        symlinks=True,
        copy_function=shutil.copy,
        dirs_exist_ok=True,
        ignore=ignore,
    )
