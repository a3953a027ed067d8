"""Image apps on a real cluster (the test bed): a FROM-scratch image built
with buildah and pushed to a registry on loopback, run by the Kubernetes
backend from its digest, with the same hardening as other pods; requests
reach it on its own port, and it scales to zero and back through KEDA.

The backend is driven directly (``start`` a pod for a ``PodSpec``, send
HTTP through it), as the platform's invoker does."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_server.backends.kubernetes.backend import KubernetesBackend
from ignite_server.backends.kubernetes.settings import KubernetesSettings
from ignite_server.domain.models import Resources, ScaleMetric, Scaling
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_backend import PodLogRecord, PodSpec
from tests.backends.kubernetes.conftest import NAMESPACE, Kubectl, assert_hardened
from tests.support import invoke, tar_gz, unique_name

HERE = Path(__file__).resolve().parent
#: Not 8080, so nothing passes by falling back to the runtimes' port.
APP_PORT = 8181
#: The bed's containerd pulls over plain HTTP from this loopback registry
#: (tools/testbed/configs.sh).
DEFAULT_REGISTRY = "127.0.0.1:15000"


@pytest.fixture(scope="module")
def registry(bed: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry on the loopback port the bed pulls from."""
    address = bed.get("TESTBED_REGISTRY", DEFAULT_REGISTRY)
    root = tmp_path_factory.mktemp("registry")
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: {address}\n"
        "log:\n  level: warn\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=(root / "registry.log").open("w"),
    )
    try:
        host, _, port = address.rpartition(":")
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (root / "registry.log").read_text()
                assert time.monotonic() < deadline, "the registry did not listen"
                time.sleep(0.1)
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


def _run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{argv[:4]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def image(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImageLaunch]:
    """The echo server of image_app/ in a FROM-scratch image, pushed by tag
    and named by digest, with ``HOME`` below ``/tmp`` as an image may set it."""
    work = tmp_path_factory.mktemp("image")
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    server = str(work / "server")
    _run("go", "build", "-trimpath", "-o", server, "main.go", cwd=HERE / "image_app", env=env)
    buildah = ("buildah", "--storage-driver", "vfs", "--root", str(work / "root"),
               "--runroot", str(work / "runroot"))  # fmt: skip
    repository = f"{registry}/ignite/{unique_name('org')}/web"
    try:
        container = _run(*buildah, "from", "scratch")
        _run(*buildah, "copy", container, server, "/server")
        _run(*buildah, "config", "--entrypoint", '["/server"]', "--port", str(APP_PORT),
             "--env", "HOME=/tmp/app", "--user", "root", container)  # fmt: skip
        _run(*buildah, "commit", "--quiet", container, "ignite-test-web")
        digest_file = work / "digest"
        _run(*buildah, "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file),
             "ignite-test-web", f"docker://{repository}:x")  # fmt: skip
    finally:
        shutil.rmtree(work / "root", ignore_errors=True)
        shutil.rmtree(work / "runroot", ignore_errors=True)
    digest = digest_file.read_text().strip()
    yield ImageLaunch(
        reference=f"{repository}@{digest}",
        digest=digest,
        port=APP_PORT,
        health_path="/healthz",
        entrypoint=("/server",),
        env={"HOME": "/tmp/app"},
        user="root",
    )


async def _until(what: str, check: Any, limit: float = 90.0) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {limit}s waiting for {what}"
        await asyncio.sleep(0.5)


async def _echo(pod: Any, body: bytes) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(connector=pod.connector()) as session,
        session.post(f"{pod.base_url}/orders/7?expand=1", data=body) as response,
    ):
        assert response.status == 200
        return dict(await response.json())


async def test_an_image_app_runs_from_its_digest_hardened_and_scales_from_zero(
    bed: dict[str, str], kubectl: Kubectl, image: ImageLaunch, tmp_path: Path
) -> None:
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    image.write(artifact)
    app_id = f"{unique_name('org')}/web"
    spec = PodSpec(
        app_id=app_id,
        version=1,
        artifact_dir=artifact,
        env={"GREETING": "hello"},
        resources=Resources(memory_mb=128, cpu_millicores=100, timeout_secs=30),
        max_concurrency=4,
        scaling=Scaling(
            max_replicas=1,
            reserved_capacity=0,
            scale_threshold=0,
            scale_metric=ScaleMetric.CONCURRENCY,
            scaledown_period_secs=1,
        ),
    )
    settings = KubernetesSettings(
        namespace=NAMESPACE,
        kubeconfig=bed["KUBECONFIG"],
        python_image="ignite.local/runtime/python:3.11",
        native_image="ignite.local/runtime/native:1",
        deno_image="ignite.local/runtime/deno:2",
        artifact_listen=f"{bed['TESTBED_HOST_IP']}:0",
        artifact_url="",
        scaler_listen="127.0.0.1:0",
        scaler_address="",
        state_dir=tmp_path / "state",
    )
    records: list[PodLogRecord] = []
    backend = KubernetesBackend(settings, log_sink=records.append)
    await backend.open()
    organization, _, app = app_id.partition("/")
    selector = f"ignite.dodil.io/organization={organization},ignite.dodil.io/app={app}"

    async def get(kinds: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(kubectl.get, kinds, selector)

    try:
        started = time.monotonic()
        pod = await backend.start(spec)
        print(f"first pod of the image (pull included) ready in {time.monotonic() - started:.2f}s")
        assert pod.base_url.endswith(f":{APP_PORT}")
        answer = await _echo(pod, b"payload")
        assert (answer["method"], answer["path"], answer["query"], answer["body"]) == (
            "POST", "/orders/7", "expand=1", "payload",
        )  # fmt: skip
        assert answer["port"] == str(APP_PORT)
        assert answer["function_id"] == app_id
        assert answer["from_app_env"] == "hello"
        # The image says USER root; the pod runs as the platform's uid.
        assert (answer["uid"], answer["gid"]) == (65532, 65532)
        assert answer["home"] == "/tmp/app" and answer["home_writable"] is True

        [deployment] = await get("deployments")
        template = deployment["spec"]["template"]["spec"]
        assert "initContainers" not in template
        assert [v["name"] for v in template["volumes"]] == ["tmp"]
        [container] = template["containers"]
        assert container["image"] == image.reference
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert "command" not in container and "args" not in container
        assert container["ports"] == [
            {"name": "http", "containerPort": APP_PORT, "protocol": "TCP"}
        ]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert_hardened(container)
        assert template["automountServiceAccountToken"] is False
        [service] = await get("services")
        assert service["spec"]["ports"][0]["targetPort"] == APP_PORT
        [policy] = await get("networkpolicies")
        assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": APP_PORT}]

        async def logged() -> bool:
            return any("listening on" in r.message for r in records)

        await _until("the app's output in its logs", logged, limit=30)

        # Given back, KEDA scales the Deployment to zero after the cooldown.
        await pod.stop()

        async def at_zero() -> bool:
            [dep] = await get("deployments")
            return dep["spec"].get("replicas") == 0 and not await get("pods")

        await _until("scale to zero", at_zero)

        started = time.monotonic()
        pod = await backend.start(spec)
        print(f"cold start of the image from zero pods in {time.monotonic() - started:.2f}s")
        assert (await _echo(pod, b"again"))["body"] == "again"
        await pod.stop()
    finally:
        await backend.remove_app(app_id)
        await backend.close()


def test_a_dockerfile_app_deployed_through_the_api_runs_on_the_cluster(
    k8s_stub: Any, org: str, kubectl: Kubectl, tmp_path: Path
) -> None:
    """The whole path on a server with --backend kubernetes: SaveDraft of a
    build context, the platform's buildah build pushed to its embedded
    registry, the Deployment pulling that digest, Invoke reaching it."""
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    server = tmp_path / "server"
    _run("go", "build", "-trimpath", "-o", str(server), "main.go", cwd=HERE / "image_app", env=env)
    # tar_gz stores files 0644: the Dockerfile makes the program executable.
    dockerfile = (
        "FROM scratch\nCOPY --chmod=755 server /server\n"
        f'EXPOSE {APP_PORT}\nENTRYPOINT ["/server"]\n'
    )
    context = tar_gz({"Dockerfile": dockerfile.encode(), "server": server.read_bytes()})
    k8s_stub.CreateApp(
        compute.CreateAppRequest(organization_name=org, name="web", env={"GREETING": "k8s"})
    )
    k8s_stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org,
            app_name="web",
            code=compute.CodeSource(
                image=compute.ImageSource(
                    from_code=compute.ImageFromCode(archive=context), health_path="/healthz"
                )
            ),
        )
    )
    published = k8s_stub.PublishDraft(
        compute.PublishDraftRequest(organization_name=org, app_name="web"), timeout=600
    )
    reference = published.version.image_ref
    assert "@sha256:" in reference
    status, body = invoke(k8s_stub, org, "web", b"from the api", timeout=180)
    assert status == 200, body
    echo = json.loads(body)
    assert echo["body"] == "from the api"
    assert echo["from_app_env"] == "k8s"
    assert echo["port"] == str(APP_PORT)
    deployments = kubectl.get("deployments", f"ignite.dodil.io/organization={org}")
    images = [
        container["image"]
        for item in deployments
        for container in item["spec"]["template"]["spec"]["containers"]
    ]
    assert images == [reference]
    # The node pulled it with the organization's read-only credentials, an
    # imagePullSecret: the registry answers nobody without credentials.
    secret_name = f"ignite-pull-{org}"
    assert [item["spec"]["template"]["spec"]["imagePullSecrets"] for item in deployments] == [
        [{"name": secret_name}]
    ]
    [secret] = kubectl.get("secrets", f"ignite.dodil.io/organization={org}")
    assert secret["metadata"]["name"] == secret_name
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    registry = reference.split("/", 1)[0]
    assert list(config["auths"]) == [registry]
    assert config["auths"][registry]["username"] == f"pull@{org}"
    anonymous = subprocess.run(
        ["skopeo", "--insecure-policy", "inspect", "--raw", "--tls-verify=false",
         f"docker://{reference}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert anonymous.returncode != 0
