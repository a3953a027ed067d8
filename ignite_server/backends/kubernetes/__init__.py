"""The Kubernetes pod backend: app versions as Deployments scaled by KEDA,
with the server as their external-push scaler (docs/kubernetes.md)."""

from ignite_server.backends.kubernetes.backend import KubernetesBackend
from ignite_server.backends.kubernetes.settings import KubernetesSettings

__all__ = ["KubernetesBackend", "KubernetesSettings"]
