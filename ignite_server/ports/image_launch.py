"""How an image app's pod starts: the ``image`` entry of the artifact's
``ignite-launch.json`` (docs/pod-protocol.md, docs/runtimes/images.md).

An image app's artifact is a folder holding only this manifest; the image
itself stays in the platform's registry, named by digest. Core writes it
when the version is built; the pod backends read it (the local backend
unpacks the image and runs it with an OCI runtime, the Kubernetes backend
makes it the Deployment's image).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ignite_server.ports.image_builder import BuiltImage
from ignite_server.ports.pod_protocol import MANIFEST_NAME


@dataclass(frozen=True)
class ImageLaunch:
    """What a pod of an image app runs and how it is known to be ready."""

    #: Pullable by digest, e.g. "127.0.0.1:5000/ignite/acme/web@sha256:…".
    reference: str
    digest: str
    #: The TCP port the app listens on ($PORT).
    port: int
    #: GET path answering 2xx/3xx once the app is ready; "" = the port
    #: accepting connections is enough.
    health_path: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    #: The image's own environment (the app's env is laid over it).
    env: Mapping[str, str] = field(default_factory=dict)
    workdir: str = ""
    #: The image's USER as written.
    user: str = ""

    @property
    def argv(self) -> list[str]:
        """ENTRYPOINT + CMD, as a container runtime joins them."""
        return [*self.entrypoint, *self.cmd]

    @classmethod
    def of(cls, image: BuiltImage, health_path: str) -> ImageLaunch:
        config = image.config
        return cls(
            reference=image.reference,
            digest=image.digest,
            port=config.port,
            health_path=health_path,
            entrypoint=config.entrypoint,
            cmd=config.cmd,
            env=dict(config.env),
            workdir=config.workdir,
            user=config.user,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "port": self.port,
            "health_path": self.health_path,
            "entrypoint": list(self.entrypoint),
            "cmd": list(self.cmd),
            "env": dict(self.env),
            "workdir": self.workdir,
            "user": self.user,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ImageLaunch:
        """Raises KeyError/TypeError/ValueError on a malformed entry."""
        return cls(
            reference=str(raw["reference"]),
            digest=str(raw["digest"]),
            port=int(raw["port"]),
            health_path=str(raw.get("health_path") or ""),
            entrypoint=tuple(str(a) for a in raw.get("entrypoint") or ()),
            cmd=tuple(str(a) for a in raw.get("cmd") or ()),
            env={str(k): str(v) for k, v in (raw.get("env") or {}).items()},
            workdir=str(raw.get("workdir") or ""),
            user=str(raw.get("user") or ""),
        )

    def write(self, out_dir: Path) -> None:
        """Write the artifact's manifest (an image app has no argv of its own)."""
        manifest: dict[str, object] = {
            "argv": [],
            "ro_paths": [],
            "env": {},
            "prestart": None,
            "image": self.to_json(),
        }
        (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
