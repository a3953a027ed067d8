"""Session fixtures for the image tests: an embedded registry (and one that
demands credentials), one builder pushing to it, and a busybox base image
every Dockerfile with a RUN step starts from."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest

from ignite_server.builds.jail import BuildSpace
from ignite_server.images.builder import ContainerImageBuilder
from ignite_server.images.registry import EmbeddedRegistry
from ignite_server.ports.image_builder import BuiltImage, DockerfileBuild, RegistryCredentials
from tests.support import bcrypt

#: The account of the registry that demands credentials.
AUTH_USER = "alice"
BUSYBOX = shutil.which("busybox")


@pytest.fixture(scope="session")
async def registry(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[EmbeddedRegistry]:
    """The platform's registry, as the server runs it."""
    running = EmbeddedRegistry(tmp_path_factory.mktemp("state"))
    await running.start()
    yield running
    await running.close()


@pytest.fixture(scope="session")
def auth_credentials() -> RegistryCredentials:
    return RegistryCredentials(AUTH_USER, secrets.token_urlsafe(12))


@pytest.fixture(scope="session")
async def auth_registry(
    tmp_path_factory: pytest.TempPathFactory, auth_credentials: RegistryCredentials
) -> AsyncIterator[EmbeddedRegistry]:
    """A registry that answers only to ``auth_credentials``."""
    state = tmp_path_factory.mktemp("auth-state")
    htpasswd = state / "htpasswd"
    htpasswd.write_text(f"{AUTH_USER}:{bcrypt(auth_credentials.password)}\n")
    running = EmbeddedRegistry(state, htpasswd=htpasswd)
    await running.start()
    yield running
    await running.close()


#: The organization the image tests build as: their images live in the
#: registry under ignite/test/.
ORG = "test"


@pytest.fixture(scope="session")
def builder(
    registry: EmbeddedRegistry, build_space: BuildSpace, tmp_path_factory: pytest.TempPathFactory
) -> ContainerImageBuilder:
    return ContainerImageBuilder(
        registry.host, build_space, tmp_path_factory.mktemp("image-cache") / "bases"
    )


@pytest.fixture(scope="session")
async def base_image(
    builder: ContainerImageBuilder, tmp_path_factory: pytest.TempPathFactory
) -> BuiltImage:
    """busybox with its applets linked into /bin: a shell for RUN steps,
    built by the builder itself from the host's static busybox."""
    assert BUSYBOX is not None, "no busybox: tools/sandbox.sh installs busybox-static"
    context = tmp_path_factory.mktemp("base")
    shutil.copy(BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text(
        "FROM scratch\n"
        "COPY busybox /bin/busybox\n"
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        'CMD ["/bin/sh"]\n'
    )
    return await builder.build(
        DockerfileBuild(
            organization=ORG,
            upload_dir=context,
            dockerfile="Dockerfile",
            build_args={},
            repository=f"ignite/{ORG}/base",
            log=lambda _line: None,
        )
    )


def skopeo(*argv: str) -> str:
    """Run skopeo as a user would; its stdout."""
    done = subprocess.run(
        ["skopeo", "--insecure-policy", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"skopeo {argv[:2]} failed: {done.stderr}"
    return done.stdout
