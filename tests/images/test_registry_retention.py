"""The platform's registry keeps what versions name, within each
organization's quota: a platform of the test's own with a 2 MiB quota and a
collection every second, two organizations, images pushed to a registry of
the user's own and imported. An organization past its quota is refused
(and the image it pushed is removed), the other is not; a deleted app's
image is collected, blobs and all, while the other organization's images
stay pullable."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from ignite_launcher import temporary_platform
from ignite_server.images.registry_tokens import RegistryTokens
from tests.support import PlainRegistry, error_info, push_tiny_image, stub_for, unique_name

QUOTA_MB = 2
#: Random bytes do not compress: each big image takes about this much.
BIG = 1200 * 1024


def _deploy(stub, org: str, app: str, ref: str) -> None:
    stub.CreateApp(compute.CreateAppRequest(organization_name=org, name=app))
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org,
            app_name=app,
            code=compute.CodeSource(image=compute.ImageSource(prebuilt={"image_ref": ref})),
        )
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name=app), timeout=300)


def _blobs_size(state: Path) -> int:
    root = state / "registry" / "data" / "docker" / "registry" / "v2" / "blobs"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _manifest_stored(state: Path, repository: str, digest: str) -> bool:
    v2 = state / "registry" / "data" / "docker" / "registry" / "v2"
    path = v2 / "repositories" / repository / "_manifests" / "revisions" / "sha256"
    # A deleted manifest's folder stays, without its link.
    return (path / digest.removeprefix("sha256:") / "link").exists()


def test_quota_per_organization_and_collection_of_unreferenced_images(tmp_path: Path) -> None:
    user = PlainRegistry(tmp_path / "user-registry")
    try:
        args = (
            "--egress-allow", "127.0.0.1", "--insecure-registries", user.host,
            "--registry-quota-mb", str(QUOTA_MB), "--registry-gc-interval-secs", "1",
            "--registry-gc-grace-secs", "3",
        )  # fmt: skip
        with temporary_platform(gateway_port=None, server_args=args) as platform:
            _exercise(platform, user.host, tmp_path)
    finally:
        user.close()


def _exercise(platform, user: str, tmp_path: Path) -> None:
    stub = stub_for(platform.grpc_target)
    state = platform.state_dir
    a, b = unique_name("org"), unique_name("org")
    refs = {name: f"{user}/shared/{name}:1" for name in ("tiny", "big", "bigger")}
    digests = {
        name: push_tiny_image(ref, tmp_path / name, name if name == "tiny" else os.urandom(BIG))
        for name, ref in refs.items()
    }
    _deploy(stub, a, "tiny", refs["tiny"])
    _deploy(stub, a, "big", refs["big"])
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as refused:
        _deploy(stub, a, "bigger", refs["bigger"])
    info = error_info(refused.value)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info is not None and info.reason == "REGISTRY_QUOTA_EXCEEDED"
    assert int(info.metadata["used_bytes"]) > QUOTA_MB * 1024 * 1024
    print(f"over-quota import refused in {time.monotonic() - started:.2f}s")
    # The refused image did not stay.
    assert not _manifest_stored(state, f"ignite/{a}/bigger", digests["bigger"])

    # The other organization has a quota of its own.
    _deploy(stub, b, "bigger", refs["bigger"])

    # A deleted app's image is collected, its blobs too; the rest stays.
    before = _blobs_size(state)
    stub.DeleteApp(compute.DeleteAppRequest(organization_name=a, app_name="big"))
    deadline = time.monotonic() + 60
    while _manifest_stored(state, f"ignite/{a}/big", digests["big"]) or (
        _blobs_size(state) > before - BIG
    ):
        assert time.monotonic() < deadline, "the deleted app's image was never collected"
        time.sleep(0.5)
    print(f"collected {(before - _blobs_size(state)) / 1024:.0f} KiB of blobs")
    # a's space is free again.
    _deploy(stub, a, "later", refs["bigger"])

    tokens = RegistryTokens(state / "registry" / "auth")
    for org, app, image in ((a, "tiny", "tiny"), (a, "later", "bigger"), (b, "bigger", "bigger")):
        creds = tokens.pull_credentials(org)
        done = subprocess.run(
            [
                "skopeo", "--insecure-policy", "copy", "--src-tls-verify=false",
                f"--src-creds={creds.username}:{creds.password}",
                f"docker://{platform.registry}/ignite/{org}/{app}@{digests[image]}",
                f"oci:{tmp_path / f'pulled-{org}-{app}'}",
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
