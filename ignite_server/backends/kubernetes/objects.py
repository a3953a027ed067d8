"""The cluster objects of an app and of its versions, as manifests (no I/O).

Per app: a ConfigMap, the *app object*, owning every Deployment of the app,
so deleting it (or the app) lets Kubernetes' garbage collector remove the
rest. Per version and pod settings (a *revision*): a Deployment of hardened
pods, a headless Service over them, a NetworkPolicy denying their egress and
a KEDA ScaledObject whose trigger is this server (external-push); those
three are owned by the Deployment.

A pod fetches the version's artifact from the server's artifact server by
its sha256 with a token for that artifact only, checks the digest and
unpacks it into the ``code`` emptyDir: the Python image's interpreter does
it in the app container before it execs the runtime; for native images an
init container (the Python image) does it and the app container sees
``code`` read-only. The runtime listens on ``IGNITE_PORT``. Both run as uid 65532 on
a read-only root file system with every capability dropped, no privilege
escalation, the RuntimeDefault seccomp profile and no service-account
token; ``/tmp`` is a memory-backed emptyDir capped at half the memory limit
(as on the local backend, what a pod keeps there it cannot also allocate).

An image app's pod (docs/runtimes/images.md) runs the version's image
itself, named by digest: no artifact to fetch, no init container, no
``code`` volume, the image's ENTRYPOINT and CMD, WORKDIR and ENV as the
image has them, under the same hardening and uid (the image's USER may be
root or a name, so it is not used). It listens on the image's port
(``PORT``), which the readiness probe, the Service and the NetworkPolicy
name instead of 8080. ``HOME`` is the image's or the app's if either sets
it, else ``/tmp``; a ``HOME`` below ``/tmp`` is a folder of the ``/tmp``
volume (a ``subPath`` mount, which the kubelet creates writable before the
container starts), since a fresh ``/tmp`` holds nothing and a FROM-scratch
image has no shell to make it. An image in the platform's registry is
pulled with its organization's read-only credentials, an
``imagePullSecret`` (``pull_secret``) the registry honours for that
organization's repositories only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_backend import PodSpec
from ignite_server.ports.pod_protocol import CODE_DIR_ENV, HEALTH_PATH, PORT_ENV, app_identity_env

Manifest = dict[str, Any]

GROUP = "ignite.dodil.io"
LABEL_ORG = f"{GROUP}/organization"
LABEL_APP = f"{GROUP}/app"
LABEL_VERSION = f"{GROUP}/version"
LABEL_REVISION = f"{GROUP}/revision"
MANAGED_BY = {"app.kubernetes.io/managed-by": "ignite"}
#: The selector of every object this backend makes.
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=ignite"
#: Pods' uid and gid: an unprivileged id that owns nothing on the nodes
#: (distroless' "nonroot").
POD_UID = 65532
POD_PORT = 8080
CODE_DIR = "/code"
TMP_DIR = "/tmp"
APP_CONTAINER = "app"
FETCH_CONTAINER = "fetch-artifact"
#: Pods get this long between SIGTERM and SIGKILL; a pod is idle when the
#: platform stops it, so this only covers the runtime's own shutdown.
TERMINATION_GRACE_SECS = 5
#: A ReplicaSet that scales down removes pods with the lowest cost first:
#: pods the platform released go before pods that serve requests.
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
RELEASED_COST = "-1000"

#: The init container's program (run by the Python image's interpreter):
#: fetch, check the sha256, unpack with no path leaving /code.
FETCH_SCRIPT = """
import hashlib, os, sys, tarfile, time, urllib.request
url, token, want = (os.environ[k] for k in
    ("IGNITE_ARTIFACT_URL", "IGNITE_ARTIFACT_TOKEN", "IGNITE_ARTIFACT_SHA256"))
path, err = "/code/.artifact.tar", None
for attempt in range(20):
    try:
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
        digest = hashlib.sha256()
        with urllib.request.urlopen(req, timeout=30) as resp, open(path, "wb") as out:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        break
    except Exception as exc:
        err = exc
        time.sleep(min(0.2 * 2 ** attempt, 3))
else:
    sys.exit(f"cannot fetch the artifact: {err}")
if digest.hexdigest() != want:
    sys.exit("the artifact's sha256 is not the one asked for")
with tarfile.open(path) as tar:
    for m in tar.getmembers():
        if m.name.startswith("/") or ".." in m.name.split("/") or not (
                m.isfile() or m.isdir() or m.issym()):
            sys.exit(f"refusing artifact member {m.name!r}")
    tar.extractall("/code")
os.unlink(path)
"""


#: Appended to FETCH_SCRIPT when the app container fetches its own artifact
#: (an image with an interpreter): drop the fetch variables, become the runtime.
EXEC_SCRIPT = """
for name in ("IGNITE_ARTIFACT_URL", "IGNITE_ARTIFACT_TOKEN", "IGNITE_ARTIFACT_SHA256"):
    os.environ.pop(name, None)
os.execv(sys.argv[1], sys.argv[1:])
"""


@dataclass(frozen=True)
class Artifact:
    """A version's artifact as pods fetch it."""

    url: str
    token: str
    sha256: str


@dataclass(frozen=True)
class ClusterRevision:
    """One app version with one set of pod settings, as the cluster holds it."""

    spec: PodSpec
    image: str
    command: Sequence[str]
    #: The launch manifest's runtime variables.
    runtime_env: Mapping[str, str]
    artifact: Artifact
    #: An image with /usr/bin/python3 to run FETCH_SCRIPT (the Python runtime's).
    fetch_image: str
    #: An image app's image (then ``image`` is its reference, ``command`` is
    #: empty and the artifact, which holds only the launch manifest, is not
    #: fetched).
    launch: ImageLaunch | None = None
    #: The Secret its nodes pull the image with (``pull_secret``), if any.
    pull_secret: str = ""

    @property
    def port(self) -> int:
        """The TCP port the pods serve on."""
        return self.launch.port if self.launch is not None else POD_PORT

    @property
    def organization(self) -> str:
        return self.spec.app_id.partition("/")[0]

    @property
    def app(self) -> str:
        return self.spec.app_id.partition("/")[2]

    @property
    def digest(self) -> str:
        """Everything the pods are made from; equal digests, equal pods."""
        s = self.spec
        fields = [
            s.app_id, s.version, sorted(s.env.items()), s.resources.memory_mb,
            s.resources.cpu_millicores, s.max_concurrency, self.image, list(self.command),
            sorted(self.runtime_env.items()), self.artifact.sha256,
            # A server that moved its artifact listener or lost its key
            # makes new pods rather than pods that cannot fetch.
            self.artifact.url, self.artifact.token,
        ]  # fmt: skip
        if self.pull_secret:
            fields.append(self.pull_secret)
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()[:10]

    @property
    def name(self) -> str:
        """The Deployment's (and its Service's, ScaledObject's) name: a
        DNS-1035 label that still says whose it is."""
        app, organization = _cut(self.app, 20), _cut(self.organization, 12)
        return f"ig-{app}-{organization}-v{self.spec.version}-{self.digest}"

    @property
    def labels(self) -> dict[str, str]:
        return {
            **app_labels(self.spec.app_id),
            LABEL_VERSION: str(self.spec.version),
            LABEL_REVISION: self.name,
        }


def _cut(text: str, size: int) -> str:
    return text[:size].rstrip("-") or "x"


def app_labels(app_id: str) -> dict[str, str]:
    organization, _, app = app_id.partition("/")
    return {**MANAGED_BY, LABEL_ORG: organization, LABEL_APP: app}


def app_selector(app_id: str) -> str:
    return ",".join(f"{k}={v}" for k, v in app_labels(app_id).items())


def app_object_name(app_id: str) -> str:
    organization, _, app = app_id.partition("/")
    digest = hashlib.sha256(app_id.encode()).hexdigest()[:8]
    return f"ig-app-{_cut(app, 24)}-{_cut(organization, 16)}-{digest}"


def owner(kind: str, api_version: str, name: str, uid: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}


def app_object(app_id: str) -> Manifest:
    """The app's ConfigMap: the owner of all its versions' objects."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": app_object_name(app_id), "labels": app_labels(app_id)},
        "data": {"app": app_id},
    }


def _hardened() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": POD_UID,
        "runAsGroup": POD_UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _resources(spec: PodSpec) -> dict[str, Any]:
    amounts = {
        "memory": f"{spec.resources.memory_mb}Mi",
        "cpu": f"{spec.resources.cpu_millicores}m",
    }
    return {"requests": dict(amounts), "limits": dict(amounts)}


def deployment(rev: ClusterRevision, app_owner: Mapping[str, Any], pull_policy: str) -> Manifest:
    """The Deployment of one revision; KEDA sets its replicas (from 0)."""
    pod = _image_pod(rev, rev.launch) if rev.launch is not None else _runtime_pod(rev, pull_policy)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": rev.name,
            "labels": rev.labels,
            "ownerReferences": [dict(app_owner)],
        },
        "spec": {
            "replicas": 0,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": {LABEL_REVISION: rev.name}},
            "template": {
                "metadata": {
                    "labels": rev.labels,
                    "annotations": {f"{GROUP}/artifact-sha256": rev.artifact.sha256},
                },
                "spec": {
                    **(
                        {"imagePullSecrets": [{"name": rev.pull_secret}]} if rev.pull_secret else {}
                    ),
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": POD_UID,
                        "runAsGroup": POD_UID,
                        "fsGroup": POD_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    **pod,
                },
            },
        },
    }


def _tmp_volume(spec: PodSpec) -> dict[str, Any]:
    tmp_mb = max(16, spec.resources.memory_mb // 2)
    return {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": f"{tmp_mb}Mi"}}


def _runtime_pod(rev: ClusterRevision, pull_policy: str) -> dict[str, Any]:
    """A managed runtime's pod: the runtime image, the artifact fetched into ``code``."""
    spec = rev.spec
    env = {
        **rev.runtime_env,
        **spec.env,
        "HOME": TMP_DIR,
        PORT_ENV: str(POD_PORT),
        CODE_DIR_ENV: CODE_DIR,
        **app_identity_env(spec),
    }
    fetch_env = {
        "IGNITE_ARTIFACT_URL": rev.artifact.url,
        "IGNITE_ARTIFACT_TOKEN": rev.artifact.token,
        "IGNITE_ARTIFACT_SHA256": rev.artifact.sha256,
    }
    # An image with an interpreter fetches its own artifact before it execs
    # the runtime: one container start fewer, which is most of a second of
    # every cold start (the kubelet notices an init container's exit late).
    inline = rev.image == rev.fetch_image
    command = list(rev.command)
    app_env = dict(env)
    init: dict[str, Any] = {}
    if inline:
        command = ["/usr/bin/python3", "-I", "-S", "-c", FETCH_SCRIPT + EXEC_SCRIPT, *command]
        app_env.update(fetch_env)
    else:
        init = {
            "initContainers": [
                {
                    "name": FETCH_CONTAINER,
                    "image": rev.fetch_image,
                    "imagePullPolicy": pull_policy,
                    "command": ["/usr/bin/python3", "-I", "-S", "-c", FETCH_SCRIPT],
                    "env": [{"name": k, "value": v} for k, v in fetch_env.items()],
                    "securityContext": _hardened(),
                    "resources": _resources(spec),
                    "volumeMounts": [{"name": "code", "mountPath": CODE_DIR}],
                }
            ]
        }
    return {
        **init,
        "containers": [
            {
                "name": APP_CONTAINER,
                "image": rev.image,
                "imagePullPolicy": pull_policy,
                "command": command,
                "workingDir": TMP_DIR,
                "env": [{"name": k, "value": v} for k, v in app_env.items()],
                "ports": [{"name": "http", "containerPort": POD_PORT}],
                # What a runtime that cannot start printed last (a Python
                # import error's file:line) reaches the publish that waits.
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "readinessProbe": {
                    "httpGet": {"path": HEALTH_PATH, "port": POD_PORT},
                    "periodSeconds": 1,
                    "failureThreshold": 1,
                },
                "securityContext": _hardened(),
                "resources": _resources(spec),
                "volumeMounts": [
                    {"name": "code", "mountPath": CODE_DIR, "readOnly": not inline},
                    {"name": "tmp", "mountPath": TMP_DIR},
                ],
            }
        ],
        "volumes": [{"name": "code", "emptyDir": {"sizeLimit": "1Gi"}}, _tmp_volume(spec)],
    }


def _image_pod(rev: ClusterRevision, launch: ImageLaunch) -> dict[str, Any]:
    """An image app's pod: its image by digest, as the module docstring says."""
    spec = rev.spec
    # The image's ENV reaches the container from the image itself; only
    # HOME is decided here, since the runtime would make it "/" for a uid
    # the image's /etc/passwd does not name.
    home = posixpath.normpath({**launch.env, **spec.env}.get("HOME") or TMP_DIR)
    env = {**spec.env, "HOME": home, "PORT": str(launch.port), **app_identity_env(spec)}
    mounts = [{"name": "tmp", "mountPath": TMP_DIR}]
    below_tmp = posixpath.relpath(home, TMP_DIR)
    if home.startswith(TMP_DIR + "/") and not below_tmp.startswith(".."):
        mounts.append({"name": "tmp", "mountPath": home, "subPath": below_tmp})
    check: dict[str, Any] = (
        {"httpGet": {"path": launch.health_path, "port": launch.port}}
        if launch.health_path
        else {"tcpSocket": {"port": launch.port}}
    )
    return {
        "containers": [
            {
                "name": APP_CONTAINER,
                "image": rev.image,
                # A digest names one image for good: pull it once per node.
                "imagePullPolicy": "IfNotPresent",
                "env": [{"name": k, "value": v} for k, v in env.items()],
                "ports": [{"name": "http", "containerPort": launch.port}],
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "readinessProbe": {**check, "periodSeconds": 1, "failureThreshold": 1},
                "securityContext": _hardened(),
                "resources": _resources(spec),
                "volumeMounts": mounts,
            }
        ],
        "volumes": [_tmp_volume(spec)],
    }


def pull_secret_name(organization: str) -> str:
    """The Secret an organization's image pods are pulled with."""
    return f"ignite-pull-{organization}"


def pull_secret(organization: str, registry: str, config: Mapping[str, Any]) -> Manifest:
    """An organization's ``imagePullSecret``: its read-only credentials for
    the platform's registry, as a ``dockerconfigjson``. Pods cannot read it
    (no service-account token); the kubelet hands it to the node's runtime
    for pulls of that organization's images, and the registry refuses those
    credentials any other organization's repository."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/dockerconfigjson",
        "metadata": {
            "name": pull_secret_name(organization),
            "labels": {**MANAGED_BY, LABEL_ORG: organization},
            "annotations": {f"{GROUP}/registry": registry},
        },
        "data": {
            ".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode(),
        },
    }


def service(rev: ClusterRevision, dep_owner: Mapping[str, Any]) -> Manifest:
    """A headless Service over the revision's ready pods (the server itself
    talks to each pod by its IP, to keep per-pod concurrency)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": rev.name, "labels": rev.labels, "ownerReferences": [dict(dep_owner)]},
        "spec": {
            "clusterIP": "None",
            "selector": {LABEL_REVISION: rev.name},
            "ports": [{"name": "http", "port": rev.port, "targetPort": rev.port}],
        },
    }


#: The labels of Ignite's server pods (charts/ignite), which serve artifacts.
SERVER_POD_LABELS = {"app.kubernetes.io/name": "ignite", "app.kubernetes.io/component": "server"}


def network_policy(rev: ClusterRevision, dep_owner: Mapping[str, Any]) -> Manifest:
    """Egress only to the artifact listener (the pod fetches its artifact)
    and to cluster DNS (to resolve its URL); ingress on the pod port from
    the server only (its pods, or the address it serves artifacts on when
    it runs outside the cluster).
    Enforced only where the cluster's CNI implements NetworkPolicy (Calico,
    Cilium, ...)."""
    url = urlsplit(rev.artifact.url)
    port = [{"protocol": "TCP", "port": url.port or 80}]
    to_server: list[dict[str, Any]] = [
        {"namespaceSelector": {}, "podSelector": {"matchLabels": SERVER_POD_LABELS}}
    ]
    with contextlib.suppress(ValueError):  # a server outside the cluster, by its address
        to_server.append({"ipBlock": {"cidr": str(ipaddress.ip_network(url.hostname or ""))}})
    dns = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": rev.name, "labels": rev.labels, "ownerReferences": [dict(dep_owner)]},
        "spec": {
            "podSelector": {"matchLabels": {LABEL_REVISION: rev.name}},
            "policyTypes": ["Ingress", "Egress"],
            # Only the server calls pods (requests are authorized there).
            "ingress": [{"from": to_server, "ports": [{"protocol": "TCP", "port": rev.port}]}],
            "egress": [
                {"to": to_server, "ports": port},
                {
                    "to": [
                        {
                            "namespaceSelector": {},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": dns,
                },
            ],
        },
    }


def scaled_object(
    rev: ClusterRevision,
    dep_owner: Mapping[str, Any],
    scaler_address: str,
    *,
    min_replicas: int,
    max_replicas: int,
    cooldown_secs: int,
) -> Manifest:
    """KEDA scales the Deployment on what this server's scaler reports: the
    pods the server's autoscaler wants for the revision (metric ``pods``,
    target 1 per replica)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": rev.name, "labels": rev.labels, "ownerReferences": [dict(dep_owner)]},
        "spec": {
            "scaleTargetRef": {"name": rev.name},
            "minReplicaCount": min_replicas,
            "maxReplicaCount": max(1, max_replicas),
            "cooldownPeriod": cooldown_secs,
            "pollingInterval": 5,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    # The server's autoscaler already waited its scale-down
                    # period: the HPA follows at once.
                    "behavior": {
                        "scaleDown": {"stabilizationWindowSeconds": 0},
                        "scaleUp": {"stabilizationWindowSeconds": 0},
                    }
                }
            },
            "triggers": [
                {
                    "type": "external-push",
                    "metadata": {"scalerAddress": scaler_address, "revision": rev.name},
                }
            ],
        },
    }


_DNS = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def is_dns_label(name: str) -> bool:
    return len(name) <= 63 and _DNS.fullmatch(name) is not None
