"""What the Kubernetes backend needs to know about its cluster and itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KubernetesSettings:
    """Settings of ``KubernetesBackend`` (ignite-server's ``--kubernetes-*`` flags)."""

    #: Namespace the app versions' objects are made in.
    namespace: str
    #: A kubeconfig file; empty: the in-cluster service account.
    kubeconfig: str
    #: The runtime images (tools/images/build_runtime_images.py).
    python_image: str
    native_image: str
    deno_image: str
    #: host:port the artifact server listens on (pods fetch artifacts there).
    artifact_listen: str
    #: The URL prefix pods reach the artifact server by; empty: http://<listen>.
    artifact_url: str
    #: host:port the KEDA external scaler listens on.
    scaler_listen: str
    #: host:port KEDA dials for the scaler; empty: the listen address.
    scaler_address: str
    #: Where the artifact key and the artifacts' archives are kept.
    state_dir: Path
    #: imagePullPolicy of the runtime images (IfNotPresent for images loaded
    #: into the nodes' containerd without a registry).
    image_pull_policy: str = "IfNotPresent"
