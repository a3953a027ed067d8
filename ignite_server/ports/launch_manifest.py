"""Reading ``ignite-launch.json``, the artifact manifest of docs/pod-protocol.md,
as both pod backends do (the build pipelines write it).

An image app's manifest has an ``image`` entry (ports/image_launch.py) and
an empty argv: its pod runs the image's own command in a container.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_protocol import CODE_PLACEHOLDER, MANIFEST_NAME

#: The most a manifest's ``prestart_files`` may hold together: they are
#: read on every start and kept in memory by the pool.
MAX_PRESTART_FILES_BYTES = 1024 * 1024


class ManifestError(Exception):
    """The artifact has no usable launch manifest (a build pipeline bug)."""


@dataclass(frozen=True)
class LaunchManifest:
    """How to start a pod for one artifact."""

    argv: tuple[str, ...]
    ro_paths: tuple[str, ...]
    env: Mapping[str, str]
    #: A pre-started pool that can be specialized instead of running argv.
    prestart: str | None
    #: The container an image app's pod runs instead of argv.
    image: ImageLaunch | None = None
    #: Files of the artifact (relative path, content) that a pre-started
    #: process reads when it starts, before it is given the app: its pool
    #: holds only pods started with the same ones.
    prestart_files: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def load(cls, artifact_dir: Path) -> LaunchManifest:
        """Read and check the manifest at the root of ``artifact_dir``."""
        try:
            raw = json.loads((artifact_dir / MANIFEST_NAME).read_text())
            argv = tuple(str(a) for a in raw["argv"])
            ro_paths = tuple(str(p) for p in raw.get("ro_paths") or ())
            env = {str(k): str(v) for k, v in (raw.get("env") or {}).items()}
            prestart = raw.get("prestart")
            image = ImageLaunch.from_json(raw["image"]) if raw.get("image") else None
            names = [str(n) for n in raw.get("prestart_files") or ()]
            files = tuple((name, _artifact_file(artifact_dir, name)) for name in names)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"unreadable {MANIFEST_NAME} in {artifact_dir}: {exc}") from exc
        if not argv and image is None:
            raise ManifestError(f"{MANIFEST_NAME} has an empty argv")
        if any(not p.startswith("/") for p in ro_paths):
            raise ManifestError(f"{MANIFEST_NAME}: ro_paths must be absolute")
        if sum(len(content) for _, content in files) > MAX_PRESTART_FILES_BYTES:
            raise ManifestError(f"{MANIFEST_NAME}: prestart_files are too big")
        return cls(argv, ro_paths, env, str(prestart) if prestart else None, image, files)

    def resolved_argv(self, code_dir: str) -> list[str]:
        """argv with ``{code}`` replaced by the code directory the pod sees."""
        return [a.replace(CODE_PLACEHOLDER, code_dir) for a in self.argv]

    @property
    def pool_key(self) -> tuple[object, ...]:
        """Pods are interchangeable before specialization when this is equal."""
        files = hashlib.sha256()
        for name, content in self.prestart_files:
            files.update(f"{name}\0{len(content)}\0".encode() + content)
        return (
            self.prestart,
            self.argv,
            self.ro_paths,
            tuple(sorted(self.env.items())),
            files.hexdigest(),
        )


def _artifact_file(artifact_dir: Path, name: str) -> bytes:
    """A file the manifest names, which must lie inside the artifact."""
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"prestart file {name!r} is not a path inside the artifact")
    path = artifact_dir / relative
    inside = path.resolve().is_relative_to(artifact_dir.resolve())
    if not inside or path.is_symlink() or not path.is_file():
        raise ValueError(f"prestart file {name!r} is not a regular file of the artifact")
    return path.read_bytes()
