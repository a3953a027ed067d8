"""Importing a prebuilt image: resolved to a digest, copied into the
platform's registry with that digest, and each way it can fail told apart."""

from __future__ import annotations

import time

import pytest

from ignite_server.images.builder import ContainerImageBuilder
from ignite_server.images.registry import EmbeddedRegistry
from ignite_server.ports.image_builder import BuiltImage, ImageUnavailable, RegistryCredentials
from tests.images.conftest import skopeo

MISSING_DIGEST = "sha256:" + "0" * 64


@pytest.fixture(scope="module")
def tagged(registry: EmbeddedRegistry, base_image: BuiltImage) -> str:
    """The base image under a tag of a user's repository."""
    ref = f"{registry.host}/someone/busybox:1.0"
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{base_image.reference}", f"docker://{ref}")  # fmt: skip
    return ref


@pytest.fixture(scope="module")
def private(
    auth_registry: EmbeddedRegistry, auth_credentials: RegistryCredentials, base_image: BuiltImage
) -> str:
    """The base image in the registry that demands credentials."""
    ref = f"{auth_registry.host}/private/busybox:1.0"
    creds = f"{auth_credentials.username}:{auth_credentials.password}"
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", creds,
           f"docker://{base_image.reference}", f"docker://{ref}")  # fmt: skip
    return ref


async def test_a_tag_is_resolved_and_copied_with_its_digest(
    builder: ContainerImageBuilder, base_image: BuiltImage, tagged: str
) -> None:
    imported = await builder.import_image(tagged, None, "ignite/acme/imported")
    assert imported.digest == base_image.digest
    assert imported.reference == f"{builder.registry_host}/ignite/acme/imported@{base_image.digest}"
    assert imported.config == base_image.config
    skopeo("inspect", "--no-tags", "--tls-verify=false", f"docker://{imported.reference}")


async def test_a_digest_is_copied_as_is(
    builder: ContainerImageBuilder, base_image: BuiltImage, tagged: str
) -> None:
    by_digest = tagged.rsplit(":", 1)[0] + "@" + base_image.digest
    imported = await builder.import_image(by_digest, None, "ignite/acme/pinned")
    assert imported.digest == base_image.digest
    assert imported.config.cmd == ("/bin/sh",)


@pytest.mark.parametrize("suffix", [f"@{MISSING_DIGEST}", ":no-such-tag"])
async def test_an_image_that_is_not_there_is_not_found(
    builder: ContainerImageBuilder, tagged: str, suffix: str
) -> None:
    with pytest.raises(ImageUnavailable) as missing:
        await builder.import_image(tagged.rsplit(":", 1)[0] + suffix, None, "ignite/acme/x")
    assert missing.value.reason == "IMAGE_NOT_FOUND"


async def test_a_repository_that_is_not_there_is_not_found(
    builder: ContainerImageBuilder, registry: EmbeddedRegistry
) -> None:
    with pytest.raises(ImageUnavailable) as missing:
        await builder.import_image(f"{registry.host}/nobody/nothing:1", None, "ignite/acme/x")
    assert missing.value.reason == "IMAGE_NOT_FOUND"


async def test_a_private_image_needs_credentials(
    builder: ContainerImageBuilder, private: str, auth_credentials: RegistryCredentials
) -> None:
    wrong = RegistryCredentials(auth_credentials.username, "not-the-password")
    for credentials in (None, wrong):
        with pytest.raises(ImageUnavailable) as refused:
            await builder.import_image(private, credentials, "ignite/acme/private")
        assert refused.value.reason == "REGISTRY_AUTH_FAILED"
        assert auth_credentials.password not in refused.value.message


async def test_a_private_image_is_imported_with_credentials(
    builder: ContainerImageBuilder,
    private: str,
    auth_credentials: RegistryCredentials,
    base_image: BuiltImage,
) -> None:
    imported = await builder.import_image(private, auth_credentials, "ignite/acme/private")
    assert imported.digest == base_image.digest


async def test_an_unreachable_registry_fails_quickly(builder: ContainerImageBuilder) -> None:
    started = time.monotonic()
    with pytest.raises(ImageUnavailable) as unreachable:
        # Port 9 (discard): nothing listens on it here.
        await builder.import_image("127.0.0.1:9/acme/web:1", None, "ignite/acme/x")
    assert unreachable.value.reason == "REGISTRY_UNREACHABLE"
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("ref", ["", "UPPER/case:1", "acme/web:bad tag", "web@sha256:abc"])
async def test_what_is_no_reference_is_refused(builder: ContainerImageBuilder, ref: str) -> None:
    with pytest.raises(ImageUnavailable) as invalid:
        await builder.import_image(ref, None, "ignite/acme/x")
    assert invalid.value.reason == "IMAGE_REF_INVALID"
