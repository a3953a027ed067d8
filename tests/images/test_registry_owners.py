"""The platform's registry has owners (the shared test platform, two
organizations): anything on this machine reaches its loopback port, yet
nothing is readable or writable there without credentials, each
organization's read-only pull credentials open its own repositories only,
nobody but the server pushes or deletes, and ``--image`` naming the
platform's registry is accepted only within the caller's organization."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import LocalPlatform
from ignite_server.images.registry_tokens import RegistryTokens
from ignite_server.ports.image_builder import RegistryCredentials
from tests.support import error_info, push_tiny_image, unique_name

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json,"
    "application/vnd.docker.distribution.manifest.v2+json"
)


def _prebuilt(stub, org: str, app: str, ref: str) -> compute.PublishDraftResponse:
    stub.CreateApp(compute.CreateAppRequest(organization_name=org, name=app))
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org,
            app_name=app,
            code=compute.CodeSource(image=compute.ImageSource(prebuilt={"image_ref": ref})),
        )
    )
    return stub.PublishDraft(
        compute.PublishDraftRequest(organization_name=org, app_name=app), timeout=300
    )


def _skopeo(*argv: str, credentials: RegistryCredentials | None = None) -> tuple[int, str]:
    creds = [f"--creds={credentials.username}:{credentials.password}"] if credentials else []
    done = subprocess.run(
        ["skopeo", "--insecure-policy", *argv[:1], *creds, *argv[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr


def _http(method: str, url: str, token: str = "") -> int:
    request = urllib.request.Request(url, method=method)
    request.add_header("Accept", MANIFEST_TYPES)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def _token(registry: str, credentials: RegistryCredentials, scope: str) -> str:
    """A token from the registry's own realm, as a client gets one."""
    try:
        urllib.request.urlopen(f"http://{registry}/v2/", timeout=10)
    except urllib.error.HTTPError as challenge:
        header = challenge.headers["WWW-Authenticate"]
    fields = dict(part.split("=", 1) for part in header.removeprefix("Bearer ").split(","))
    realm, service = fields["realm"].strip('"'), fields["service"].strip('"')
    query = urllib.parse.urlencode({"service": service, "scope": scope})
    request = urllib.request.Request(f"{realm}?{query}")
    basic = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return str(json.loads(answer.read())["token"])


def test_images_stay_in_their_organization(
    platform: LocalPlatform, stub, user_registry: str, tmp_path: Path
) -> None:
    if not platform.registry:
        pytest.fail("the test platform runs no embedded registry")
    registry = platform.registry
    owner, intruder = unique_name("org"), unique_name("org")
    digest = push_tiny_image(f"{user_registry}/{owner}/tiny:1", tmp_path / "image", owner)
    published = _prebuilt(stub, owner, "tiny", f"{user_registry}/{owner}/tiny:1")
    mine = published.version.image_ref
    assert mine == f"{registry}/ignite/{owner}/tiny@{digest}"

    # Another organization cannot deploy it, by the registry's name or by
    # another loopback name of it; the owner can.
    port = registry.rsplit(":", 1)[1]
    for ref in (mine, f"localhost:{port}/ignite/{owner}/tiny@{digest}"):
        with pytest.raises(grpc.RpcError) as refused:
            _prebuilt(stub, intruder, unique_name("app"), ref)
        info = error_info(refused.value)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert info is not None and info.reason == "IMAGE_NOT_FOUND", refused.value.details()
        assert owner not in (refused.value.details() or "").replace(ref, "")
    again = _prebuilt(stub, owner, "again", mine)
    assert again.version.image_ref == f"{registry}/ignite/{owner}/again@{digest}"

    # On loopback, without credentials: nothing.
    assert _http("GET", f"http://{registry}/v2/_catalog") == 401
    code, error = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{mine}")
    assert code != 0 and ("unauthorized" in error or "credentials" in error), error
    code, error = _skopeo(
        "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{user_registry}/{owner}/tiny:1", f"docker://{registry}/ignite/{owner}/tiny:evil",
    )  # fmt: skip
    assert code != 0, "an anonymous push was taken"

    # Each organization's pull credentials open its own repositories only,
    # and never push or delete.
    tokens = RegistryTokens(platform.state_dir / "registry" / "auth")
    own, other = tokens.pull_credentials(owner), tokens.pull_credentials(intruder)
    code, error = _skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{mine}", credentials=own
    )
    assert code == 0, error
    code, error = _skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{mine}", credentials=other
    )
    assert code != 0 and "denied" in error, error
    for credentials in (own, other):
        code, _ = _skopeo(
            "copy", "--src-tls-verify=false", "--dest-tls-verify=false",
            f"--dest-creds={credentials.username}:{credentials.password}",
            f"docker://{user_registry}/{owner}/tiny:1",
            f"docker://{registry}/ignite/{owner}/tiny:evil",
        )  # fmt: skip
        assert code != 0, f"{credentials.username} pushed"
    token = _token(registry, own, f"repository:ignite/{owner}/tiny:pull,push,delete")
    manifest = f"http://{registry}/v2/ignite/{owner}/tiny/manifests/{digest}"
    assert _http("DELETE", manifest, token) == 401
    assert _http("HEAD", manifest, token) == 200
    wrong = RegistryCredentials(own.username, other.password)
    code, _ = _skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{mine}", credentials=wrong
    )
    assert code != 0
    # Still there, unchanged, for the owner's app.
    assert (
        _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{mine}", credentials=own)[0]
        == 0
    )
