"""Reading ``ignite-launch.json``, the artifact manifest of docs/pod-protocol.md.

An image app's manifest has an ``image`` entry (ports/image_launch.py) and
an empty argv: its pod runs the image's own command in a container.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ignite_server.ports.image_launch import ImageLaunch

MANIFEST_NAME = "ignite-launch.json"
CODE_PLACEHOLDER = "{code}"


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
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"unreadable {MANIFEST_NAME} in {artifact_dir}: {exc}") from exc
        if not argv and image is None:
            raise ManifestError(f"{MANIFEST_NAME} has an empty argv")
        if any(not p.startswith("/") for p in ro_paths):
            raise ManifestError(f"{MANIFEST_NAME}: ro_paths must be absolute")
        return cls(argv, ro_paths, env, str(prestart) if prestart else None, image)

    def resolved_argv(self, code_dir: str) -> list[str]:
        """argv with ``{code}`` replaced by the code directory the pod sees."""
        return [a.replace(CODE_PLACEHOLDER, code_dir) for a in self.argv]

    @property
    def pool_key(self) -> tuple[object, ...]:
        """Pods are interchangeable before specialization when this is equal."""
        return (self.prestart, self.argv, self.ro_paths, tuple(sorted(self.env.items())))
