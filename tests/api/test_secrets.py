"""Secrets over gRPC: stored once, named by image sources, never shown."""

from __future__ import annotations

import uuid

import grpc
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.support import expect_error


def _canary() -> str:
    # Matched by the session's no-secret-in-any-log check (tests/conftest.py).
    return f"canary-secret-{uuid.uuid4().hex}"


def _create(stub, org: str, name: str, password: str, **fields) -> compute.CreateSecretResponse:
    fields.setdefault("hosts", ["registry.example.com"])
    return stub.CreateSecret(
        compute.CreateSecretRequest(
            organization_name=org, name=name, username="robot", password=password, **fields
        )
    )


def test_secrets_are_stored_listed_replaced_and_deleted_without_their_password(stub, org):
    password = _canary()
    created = _create(stub, org, "registry-a", password)
    assert created.secret.name == "registry-a"
    assert created.secret.username == "robot"
    assert list(created.secret.hosts) == ["registry.example.com"]
    assert password not in str(created)

    listed = stub.ListSecrets(compute.ListSecretsRequest(organization_name=org))
    assert [s.name for s in listed.secrets] == ["registry-a"]
    assert password not in listed.SerializeToString().decode("latin-1")

    code, reason = expect_error(
        stub.CreateSecret,
        compute.CreateSecretRequest(
            organization_name=org,
            name="registry-a",
            username="x",
            password=_canary(),
            hosts=["registry.example.com"],
        ),
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "SECRET_ALREADY_EXISTS")
    replaced = _create(
        stub, org, "registry-a", _canary(), replace=True, hosts=["GHCR.io", "ghcr.io", "[::1]:5000"]
    )
    assert replaced.secret.updated_at_ms >= created.secret.updated_at_ms
    assert list(replaced.secret.hosts) == ["ghcr.io", "[::1]:5000"]

    stub.DeleteSecret(compute.DeleteSecretRequest(organization_name=org, name="registry-a"))
    assert not stub.ListSecrets(compute.ListSecretsRequest(organization_name=org)).secrets
    code, reason = expect_error(
        stub.DeleteSecret, compute.DeleteSecretRequest(organization_name=org, name="registry-a")
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "SECRET_NOT_FOUND")


def test_bad_secrets_are_refused_with_the_field(stub, org):
    cases = [
        ({"name": "Bad_Name", "password": "p"}, "INVALID_NAME"),
        ({"name": "ok", "password": ""}, "SECRET_PASSWORD_INVALID"),
        ({"name": "ok", "password": "a\nb"}, "SECRET_PASSWORD_INVALID"),
        ({"name": "ok", "password": "p", "username": "a:b"}, "SECRET_USERNAME_INVALID"),
        ({"name": "ok", "password": "p", "hosts": []}, "SECRET_HOSTS_REQUIRED"),
        ({"name": "ok", "password": "p", "hosts": ["https://ghcr.io"]}, "SECRET_HOSTS_INVALID"),
        ({"name": "ok", "password": "p", "hosts": ["ghcr.io/acme"]}, "SECRET_HOSTS_INVALID"),
        ({"name": "ok", "password": "p", "hosts": ["h:99999"]}, "SECRET_HOSTS_INVALID"),
        ({"name": "ok", "password": "p", "hosts": [f"h{n}.io" for n in range(17)]},
         "SECRET_HOSTS_INVALID"),
    ]  # fmt: skip
    for fields, reason in cases:
        fields = {"hosts": ["registry.example.com"], **fields}
        request = compute.CreateSecretRequest(organization_name=org, **fields)
        assert expect_error(stub.CreateSecret, request) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
        ), fields


def test_secrets_are_encrypted_at_rest(platform, stub, org):
    password = _canary()
    _create(stub, org, "at-rest", password)
    key = platform.state_dir / "secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600
    # The cluster's files hold the row; the password must not be in them.
    data_dir = platform.state_dir / "postgres"
    needle = password.encode()
    for path in data_dir.rglob("*"):
        if path.is_file() and path.stat().st_size < 64 * 1024 * 1024:
            assert needle not in path.read_bytes(), path


def _save(stub, org: str, name: str, image: compute.ImageSource) -> None:
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name=name, code=compute.CodeSource(image=image)
        )
    )


def test_bad_image_sources_are_refused_at_save(stub, org):
    stub.CreateApp(compute.CreateAppRequest(organization_name=org, name="img"))
    cases = [
        (compute.ImageSource(prebuilt={"image_ref": ""}), "IMAGE_REF_REQUIRED"),
        (compute.ImageSource(prebuilt={"image_ref": "Not An Image"}), "IMAGE_REF_INVALID"),
        (
            compute.ImageSource(prebuilt={"image_ref": "r/x:1", "registry_secret_ref": "No"}),
            "INVALID_NAME",
        ),
        (compute.ImageSource(from_git={"repo_url": "file:///etc"}), "GIT_URL_NOT_ALLOWED"),
        (compute.ImageSource(from_git={"repo_url": "/srv/repo"}), "GIT_URL_NOT_ALLOWED"),
        (
            compute.ImageSource(from_git={"repo_url": "https://u:p@git.example/r.git"}),
            "GIT_URL_HAS_CREDENTIALS",
        ),
        (
            compute.ImageSource(from_git={"repo_url": "https://git.example/r.git", "ref": "-x"}),
            "GIT_REF_INVALID",
        ),
        (
            compute.ImageSource(
                from_git={"repo_url": "https://git.example/r.git", "context_dir": "../up"}
            ),
            "PATH_OUTSIDE_CONTEXT",
        ),
        (
            compute.ImageSource(prebuilt={"image_ref": "r/x:1"}, health_path="healthz"),
            "HEALTH_PATH_INVALID",
        ),
        (compute.ImageSource(from_code={"archive": b""}), "CODE_EMPTY"),
    ]
    for image, reason in cases:
        request = compute.SaveDraftRequest(
            organization_name=org, app_name="img", code=compute.CodeSource(image=image)
        )
        code, got = expect_error(stub.SaveDraft, request)
        assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, reason), image
