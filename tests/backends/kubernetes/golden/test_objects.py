"""Golden tests of the Kubernetes object builders (backends/kubernetes/
objects.py), as Knative tests its pure ``resources`` builders: the objects
a revision produces (ConfigMap, Deployment, Service, NetworkPolicy,
ScaledObject), compared with committed YAML, without a cluster.

A change to what the backend asks the cluster for shows up here as a diff
of the expected files. When it is meant, regenerate them and review the
diff with the change:

    make golden

(``IGNITE_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/backends/kubernetes/golden``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ignite_server.backends.kubernetes import objects
from ignite_server.backends.kubernetes.objects import Artifact, ClusterRevision
from ignite_server.domain.models import Resources
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_backend import PodSpec

EXPECTED = Path(__file__).parent / "expected"
UPDATE = os.environ.get("IGNITE_GOLDEN_UPDATE") == "1"
RUNTIME_PYTHON = "ignite.local/runtime/python:3.11"
RUNTIME_NATIVE = "ignite.local/runtime/native:1"
APP_OWNER = objects.owner("ConfigMap", "v1", "ig-app-greet-acme-corp-0a1b2c3d", "uid-app-1")
SCALER = "ignite-server.ignite.svc:9090"


def _spec(app_id: str = "acme-corp/greet", **changes: Any) -> PodSpec:
    values: dict[str, Any] = {
        "app_id": app_id,
        "version": 3,
        "artifact_dir": Path("/state/artifacts/ab12"),
        "env": {"GREETING": "hello", "LOG_LEVEL": "info"},
        "resources": Resources(memory_mb=512, cpu_millicores=500, timeout_secs=30),
        "max_concurrency": 8,
    }
    values.update(changes)
    return PodSpec(**values)


ARTIFACT = Artifact(
    url="http://10.0.0.5:8090/artifacts/" + "ab" * 32,
    token="tok-artifact-only",
    sha256="ab" * 32,
)

#: The revisions the golden files describe: one per kind of pod.
REVISIONS: dict[str, ClusterRevision] = {
    # The Python runtime fetches its own artifact before it execs the runtime.
    "python": ClusterRevision(
        spec=_spec(),
        image=RUNTIME_PYTHON,
        command=("/usr/bin/python3", "-I", "-S", "-B", "/opt/ignite/runtime/ignite_runtime.py"),
        runtime_env={"PYTHONUNBUFFERED": "1"},
        artifact=ARTIFACT,
        fetch_image=RUNTIME_PYTHON,
    ),
    # A compiled app: an init container fetches, the binary runs read-only.
    "native": ClusterRevision(
        spec=_spec("acme-corp/fast-go", max_concurrency=32),
        image=RUNTIME_NATIVE,
        command=("/code/app",),
        runtime_env={},
        artifact=ARTIFACT,
        fetch_image=RUNTIME_PYTHON,
    ),
    # An image app with a health path and a HOME below /tmp, pulled with its
    # organization's imagePullSecret.
    "image": ClusterRevision(
        spec=_spec("acme-corp/web", env={"HOME": "/tmp/home"}),
        image="127.0.0.1:5000/ignite/acme-corp/web@sha256:" + "cd" * 32,
        command=(),
        runtime_env={},
        artifact=Artifact(url=ARTIFACT.url, token="", sha256="ef" * 32),
        fetch_image=RUNTIME_PYTHON,
        launch=ImageLaunch(
            reference="127.0.0.1:5000/ignite/acme-corp/web@sha256:" + "cd" * 32,
            digest="sha256:" + "cd" * 32,
            port=3000,
            health_path="/healthz",
            entrypoint=("/server",),
            env={"PATH": "/usr/bin"},
        ),
        pull_secret=objects.pull_secret_name("acme-corp"),
    ),
    # An image app ready once its port accepts connections.
    "image-tcp": ClusterRevision(
        spec=_spec("acme-corp/tcp-only"),
        image="127.0.0.1:5000/ignite/acme-corp/tcp-only@sha256:" + "12" * 32,
        command=(),
        runtime_env={},
        artifact=Artifact(url="http://ignite-server.ignite.svc:8090/a", token="", sha256="34" * 32),
        fetch_image=RUNTIME_PYTHON,
        launch=ImageLaunch(
            reference="127.0.0.1:5000/ignite/acme-corp/tcp-only@sha256:" + "12" * 32,
            digest="sha256:" + "12" * 32,
            port=8080,
            health_path="",
        ),
    ),
}


def _objects(revision: ClusterRevision) -> list[dict[str, Any]]:
    dep_owner = objects.owner("Deployment", "apps/v1", revision.name, "uid-dep-1")
    return [
        objects.app_object(revision.spec.app_id),
        objects.deployment(revision, APP_OWNER, "IfNotPresent"),
        objects.service(revision, dep_owner),
        objects.network_policy(revision, dep_owner),
        objects.scaled_object(
            revision, dep_owner, SCALER, min_replicas=1, max_replicas=5, cooldown_secs=300
        ),
    ]


@pytest.mark.parametrize("kind", sorted(REVISIONS))
def test_a_revision_produces_the_committed_objects(kind: str) -> None:
    produced = _objects(REVISIONS[kind])
    path = EXPECTED / f"{kind}.yaml"
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump_all(produced, sort_keys=True, width=100))
    expected = list(yaml.safe_load_all(path.read_text()))
    for want, got in zip(expected, produced, strict=True):
        assert got == want, (
            f"the {got['kind']} of the {kind!r} revision changed; if that is meant, "
            "run `make golden` and commit the diff of tests/backends/kubernetes/golden/expected"
        )


def test_every_name_is_a_dns_label_and_says_whose_it_is() -> None:
    for revision in REVISIONS.values():
        assert objects.is_dns_label(revision.name), revision.name
        assert revision.name.startswith(f"ig-{revision.app[:20]}-")
        assert objects.is_dns_label(objects.app_object_name(revision.spec.app_id))
    long = ClusterRevision(
        spec=_spec("an-organization-with-a-long-name/" + "a" * 63),
        image=RUNTIME_NATIVE,
        command=("/code/app",),
        runtime_env={},
        artifact=ARTIFACT,
        fetch_image=RUNTIME_PYTHON,
    )
    assert objects.is_dns_label(long.name) and len(long.name) <= 63


def test_what_the_pods_start_with_decides_the_revision_and_nothing_else_does() -> None:
    base = REVISIONS["python"]
    same = ClusterRevision(**{**base.__dict__, "spec": _spec()})
    assert same.name == base.name
    for changed in (
        _spec(env={"GREETING": "bonjour"}),
        _spec(resources=Resources(memory_mb=1024, cpu_millicores=500, timeout_secs=30)),
        _spec(max_concurrency=4),
        _spec(version=4),
    ):
        other = ClusterRevision(**{**base.__dict__, "spec": changed})
        assert other.name != base.name
    # The timeout is the server's to enforce: the same pods serve it.
    later = _spec(resources=Resources(memory_mb=512, cpu_millicores=500, timeout_secs=90))
    assert ClusterRevision(**{**base.__dict__, "spec": later}).name == base.name


def test_every_container_is_hardened() -> None:
    for kind, revision in REVISIONS.items():
        pod = objects.deployment(revision, APP_OWNER, "IfNotPresent")["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, kind
        containers = pod["containers"] + pod.get("initContainers", [])
        for container in containers:
            context = container["securityContext"]
            assert context["runAsNonRoot"] and context["readOnlyRootFilesystem"], kind
            assert context["capabilities"] == {"drop": ["ALL"]}, kind
            assert context["allowPrivilegeEscalation"] is False, kind
            assert container["resources"]["limits"] == container["resources"]["requests"]
