"""Dockerfile builds: pushed by digest with the image's config, RUN steps on
a base image from the registry, and one-line reasons for what fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ignite_server.images.builder import ContainerImageBuilder
from ignite_server.ports.build_pipeline import BuildFailed
from ignite_server.ports.image_builder import BuiltImage, DockerfileBuild
from tests.images.conftest import ORG, skopeo

HELLO = Path(__file__).parent / "hello"


def request(context: Path, repository: str, log: list[str], **kwargs: object) -> DockerfileBuild:
    options: dict[str, object] = {"dockerfile": "Dockerfile", "build_args": {}}
    options.update(kwargs)
    return DockerfileBuild(
        organization=ORG,
        upload_dir=context,
        repository=repository,
        log=log.append,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def hello_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello/main.go, built static."""
    out = tmp_path_factory.mktemp("hello") / "server"
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"}
    subprocess.run(
        ["go", "build", "-trimpath", "-o", str(out), "main.go"],
        cwd=HELLO,
        env=env,
        check=True,
        timeout=300,
    )
    return out


async def test_a_scratch_image_is_pushed_by_digest_with_its_config(
    builder: ContainerImageBuilder, hello_binary: Path, tmp_path: Path
) -> None:
    (tmp_path / "bin").mkdir()
    shutil.copy(hello_binary, tmp_path / "bin" / "server")
    (tmp_path / "build" / "web").mkdir(parents=True)
    (tmp_path / "build" / "web" / "Dockerfile").write_text(
        "FROM scratch\n"
        "ARG GREETING=nobody\n"
        "ENV GREETING=$GREETING\n"
        "COPY bin/server /server\n"
        "WORKDIR /srv\n"
        "EXPOSE 8081 9090/udp\n"
        "USER 65532:65532\n"
        'ENTRYPOINT ["/server"]\n'
        'CMD ["--verbose"]\n'
    )
    log: list[str] = []
    built = await builder.build(
        request(
            tmp_path,
            "ignite/acme/web",
            log,
            dockerfile="build/web/Dockerfile",
            build_args={"GREETING": "ignite"},
        )
    )
    assert built.reference == f"{builder.registry_host}/ignite/acme/web@{built.digest}"
    assert built.digest.startswith("sha256:") and len(built.digest) == 71
    config = built.config
    assert config.entrypoint == ("/server",)
    assert config.cmd == ("--verbose",)
    assert config.exposed_ports == (8081,) and config.port == 8081
    assert config.user == "65532:65532"
    assert config.workdir == "/srv"
    assert config.env["GREETING"] == "ignite"
    assert any("STEP 4/9: COPY bin/server /server" in line for line in log), log
    inspected = json.loads(
        skopeo("inspect", "--no-tags", "--tls-verify=false", f"docker://{built.reference}")
    )
    assert inspected["Digest"] == built.digest
    assert len(inspected["Layers"]) == 1


async def test_run_steps_build_on_a_base_image_from_the_registry(
    builder: ContainerImageBuilder, base_image: BuiltImage, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image.reference}\n"
        "RUN echo built-by-run > /greeting && cat /greeting\n"
        'CMD ["cat", "/greeting"]\n'
    )
    log: list[str] = []
    built = await builder.build(request(tmp_path, "ignite/acme/run", log))
    assert "built-by-run" in log, log
    assert built.config.cmd == ("cat", "/greeting")
    assert built.config.port == 8080
    inspected = json.loads(
        skopeo("inspect", "--no-tags", "--tls-verify=false", f"docker://{built.reference}")
    )
    # The base image's layer and the RUN step's.
    assert len(inspected["Layers"]) == 2


async def test_a_failing_run_step_is_named(
    builder: ContainerImageBuilder, base_image: BuiltImage, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image.reference}\nRUN echo fine\nRUN echo going down && exit 3\n"
    )
    log: list[str] = []
    with pytest.raises(BuildFailed) as failed:
        await builder.build(request(tmp_path, "ignite/acme/broken", log))
    assert failed.value.message == (
        "Dockerfile step RUN echo going down && exit 3 failed: exit status 3"
    )
    assert "going down" in log


async def test_a_dockerfile_syntax_error_is_one_line(
    builder: ContainerImageBuilder, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nFROBNICATE everything\n")
    with pytest.raises(BuildFailed) as failed:
        await builder.build(request(tmp_path, "ignite/acme/typo", []))
    assert "FROBNICATE" in failed.value.message
    assert "\n" not in failed.value.message
    assert len(failed.value.message) < 400


@pytest.mark.parametrize("dockerfile", ["../Dockerfile", "/etc/passwd", "sub/../../Dockerfile"])
async def test_a_dockerfile_outside_the_context_is_refused(
    builder: ContainerImageBuilder, tmp_path: Path, dockerfile: str
) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(BuildFailed, match="must be relative to the build context"):
        await builder.build(request(context, "ignite/acme/out", [], dockerfile=dockerfile))


async def test_a_symlinked_dockerfile_may_not_lead_outside(
    builder: ContainerImageBuilder, tmp_path: Path
) -> None:
    # The Dockerfile is read inside the build's jail, where the host path
    # the link names does not exist.
    (tmp_path / "context").mkdir()
    (tmp_path / "Dockerfile").write_text("FROM scratch\nLABEL host=leaked\n")
    (tmp_path / "context" / "Dockerfile").symlink_to(tmp_path / "Dockerfile")
    with pytest.raises(BuildFailed, match="no Dockerfile in the build context"):
        await builder.build(request(tmp_path / "context", "ignite/acme/out", []))


async def test_a_build_past_its_deadline_is_killed(
    builder: ContainerImageBuilder, base_image: BuiltImage, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image.reference}\nRUN sleep 120\n")
    started = time.monotonic()
    with pytest.raises(BuildFailed, match="did not finish within 4 s"):
        await builder.build(request(tmp_path, "ignite/acme/slow", [], timeout_secs=4))
    assert time.monotonic() - started < 30
