"""A Dockerfile's RUN steps are user code: they run as an unprivileged host
uid, in a view of the file system without the server's state."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from ignite_server.builds.jail import BuildSpace
from ignite_server.containment.identities import IMAGE_RANGE_SIZE, IMAGE_RANGES_START
from ignite_server.domain.build_settings import DEFAULT_UID_RANGE
from ignite_server.images.builder import ContainerImageBuilder
from ignite_server.ports.image_builder import BuiltImage, DockerfileBuild
from tests.images.conftest import ORG


def _processes_with(marker: bytes, *, exe_only: bool = False) -> dict[int, dict[str, str]]:
    """/proc/<pid>/status of every process whose binary (or command line,
    unless ``exe_only``) has ``marker``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            exe = os.readlink(entry / "exe").encode()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if marker in exe or (not exe_only and marker in cmdline):
            found[int(entry.name)] = dict(
                line.split(":\t", 1) for line in status.splitlines() if ":\t" in line
            )
    return found


async def test_run_steps_are_not_root_and_cannot_reach_the_state(
    builder: ContainerImageBuilder, base_image: BuiltImage, tmp_path: Path, build_space: BuildSpace
) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    canary = f"canary-{secrets.token_hex(8)}"
    (state / "signing.key").write_text(canary)
    (state / "signing.key").chmod(0o644)
    marker = f"marker-{secrets.token_hex(6)}"
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image.reference}\n"
        f"RUN echo {marker} uid_map $(cat /proc/self/uid_map) && "
        f"echo {marker} id $(id -u) && "
        f"(cat {state}/signing.key || echo {marker} state unreadable) && "
        f"(ls /proc/1/root/ || true) && sleep 3\n"
    )
    log: list[str] = []
    seen: dict[int, dict[str, str]] = {}
    buildah: dict[int, dict[str, str]] = {}

    async def watch() -> None:
        while True:
            seen.update(await asyncio.to_thread(_processes_with, marker.encode()))
            buildah.update(
                await asyncio.to_thread(_processes_with, b"/usr/bin/buildah", exe_only=True)
            )
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch())
    try:
        await builder.build(
            DockerfileBuild(
                organization=ORG,
                upload_dir=context,
                dockerfile="Dockerfile",
                build_args={},
                repository=f"ignite/{ORG}/contained",
                log=log.append,
            )
        )
    finally:
        watcher.cancel()
    text = "\n".join(log)
    # Inside, the step is root of its namespace: a range of host uids of the
    # build's own, from the server's block.
    mapped = next(line.split() for line in log if line.startswith(f"{marker} uid_map"))
    first, count = int(mapped[3]), int(mapped[4])
    block = build_space.uids
    assert mapped[2] == "0" and count == IMAGE_RANGE_SIZE
    assert block.first + IMAGE_RANGES_START <= first and block.owns(first + count - 1)
    build_uids = range(first, first + count)
    assert f"{marker} id 0" in text
    assert f"{marker} state unreadable" in text
    assert canary not in text
    # Seen from the host: the RUN step's processes and buildah itself.
    assert seen, "the RUN step was never seen running"
    assert buildah, "buildah was never seen running"
    # Tests running beside this one build with blocks of their own: buildah
    # processes on another block's uids are theirs, not this build's.
    ours = [
        status
        for status in buildah.values()
        if not (
            int(status["Uid"].split()[0]) >= DEFAULT_UID_RANGE[0]
            and not block.owns(int(status["Uid"].split()[0]))
        )
    ]
    assert ours, "this build's buildah was never seen running"
    for status in (*seen.values(), *ours):
        uids = [int(uid) for uid in status["Uid"].split()]
        gids = [int(gid) for gid in status["Gid"].split()]
        assert all(uid in build_uids for uid in uids), status["Uid"]
        assert all(gid in build_uids for gid in gids), status["Gid"]
        assert status["NoNewPrivs"].strip() == "1"
