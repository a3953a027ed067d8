"""The build jail: a uid and folders of the build's own, its organization's
cache shown as its own, one checked stream out, nothing left behind."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ignite_server.builds.jail import CACHE, OUT, WORK, BuildSpace, Step
from ignite_server.containment import identities, idmap
from ignite_server.ports.build_pipeline import BuildFailed

pytestmark = pytest.mark.skipif(not identities.privileged(), reason="jails switch uids as root")


@pytest.fixture
def space(tmp_path: Path) -> Iterator[BuildSpace]:
    with BuildSpace.reserved(tmp_path / "state", quota_mb=256, slots=1) as made:
        yield made


async def _lines(jail, script: str) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    await jail.run("probe", ["/bin/sh", "-c", script], env=jail.env(), log=lines.append)
    return lines


async def test_a_build_has_its_own_uid_folders_and_its_organizations_cache(
    space: BuildSpace,
) -> None:
    async with space.jail("acme", print, 60) as jail:
        uid = jail.uid
        assert uid in space.uids.builds and uid != space.uids.cache_owner
        seen = await _lines(
            jail,
            f"id -u; stat -c %u {WORK} {OUT} {CACHE}; touch {CACHE}/made {WORK}/scratch; "
            f"stat -c %u {CACHE}/made",
        )
        assert seen == [str(uid)] * 5
        volume = space.volumes.root / "acme"
        # On disk the cache is the cache owner's, whoever wrote it.
        assert (volume / "cache" / "made").stat().st_uid == space.uids.cache_owner
    # Afterwards: the uid is free, the build's folders and mounts are gone.
    assert uid not in space.uids.builds._taken
    assert list((volume / "builds").iterdir()) == []
    assert (volume / "cache" / "made").exists()


async def test_another_organizations_cache_is_not_in_the_view(space: BuildSpace) -> None:
    async with space.jail("acme", print, 60) as jail:
        await _lines(jail, f"echo acme > {CACHE}/secret")
    async with space.jail("globex", print, 60) as jail:
        seen = await _lines(jail, f"ls -A {CACHE}; ls /build; cat /proc/self/mountinfo")
    assert "secret" not in seen[0:1]
    assert not any("acme" in line for line in seen)


async def test_links_out_and_special_files_do_not_leave_the_jail(
    space: BuildSpace, tmp_path: Path
) -> None:
    dest = tmp_path / "artifact"
    dest.mkdir()
    async with space.jail("acme", print, 60) as jail:
        await _lines(jail, f"echo hi > {OUT}/ok; ln -s /etc/shadow {OUT}/shadow")
        with pytest.raises(BuildFailed, match="refused: symbolic link 'shadow' points outside"):
            await jail.export(dest)
    assert not (dest / "shadow").exists()
    dest2 = tmp_path / "artifact2"
    dest2.mkdir()
    async with space.jail("acme", print, 60) as jail:
        await _lines(
            jail,
            f"mkdir -p {OUT}/bin && echo x > {OUT}/bin/tool && chmod 4755 {OUT}/bin/tool "
            f"|| chmod 755 {OUT}/bin/tool; ln -s bin/tool {OUT}/inside",
        )
        await jail.export(dest2)
    tool = dest2 / "bin" / "tool"
    assert tool.read_text() == "x\n"
    assert tool.stat().st_mode & 0o7777 == 0o755 and tool.stat().st_uid == 0
    assert os.readlink(dest2 / "inside") == "bin/tool"


async def test_a_batch_of_steps_stops_at_the_first_failure_and_names_it(
    space: BuildSpace,
) -> None:
    lines: list[str] = []
    async with space.jail("acme", lines.append, 60) as jail:
        steps = [
            Step("first", ["/bin/sh", "-c", "echo one > made"], WORK, shown="$ first"),
            Step("second", ["/bin/sh", "-c", "echo error: broke; exit 3"], OUT, shown="$ second"),
            Step("third", ["/bin/sh", "-c", "echo three > made"], WORK),
        ]
        with pytest.raises(BuildFailed) as failed:
            await jail.run_steps(steps, env=jail.env())
        made = await _lines(jail, f"cat {WORK}/made")
        await jail.run_steps(steps[:1], env=jail.env())  # a batch that passes
    assert failed.value.message == "second failed: error: broke"
    assert made == ["one"]  # the third never ran
    assert lines[:3] == ["$ first", "$ second", "error: broke"]
    assert not any("ignite-step" in line for line in lines)


async def test_waiting_for_a_slot_does_not_count_against_the_deadline(
    space: BuildSpace,
) -> None:
    said: list[str] = []
    first_done = asyncio.Event()

    async def first() -> None:
        async with space.jail("acme", print, 60) as jail:
            await _lines(jail, "sleep 4")
        first_done.set()

    async def second() -> float:
        async with space.jail("globex", said.append, 3) as jail:
            started = time.monotonic()
            await _lines(jail, "sleep 1")
            return time.monotonic() - started

    running = asyncio.create_task(first())
    await asyncio.sleep(0.5)
    took = await second()
    await running
    assert first_done.is_set()
    assert "waiting for a build slot" in said
    assert took >= 1


async def test_what_a_dead_server_left_is_swept_as_its_owner(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with BuildSpace.reserved(state, quota_mb=256) as space:
        async with space.jail("acme", print, 60):
            pass
        volume = space.volumes.root / "acme"
        # A build folder and a cache mount as a server killed mid-build
        # leaves them (its volumes stay mounted: kill it, nothing unmounts).
        dead = volume / "builds" / "dead"
        (dead / "work" / "deep").mkdir(parents=True)
        (dead / "out").mkdir()
        owner = space.uids.builds.base + 4242
        (dead / "work" / "deep" / "file").write_text("left")
        for path in (dead / "work", dead / "work" / "deep", dead / "work" / "deep" / "file"):
            os.chown(path, owner, owner)
        os.chown(dead / "out", owner, owner)
        mount = volume / "builds" / "dead.cache"
        mount.mkdir()
        idmap.mount_mapped(volume / "cache", mount, owner=space.uids.cache_owner, shown_as=owner)
        space.uids.release()
        # The next server on the state folder: its first build of the
        # organization sweeps first.
        with BuildSpace.reserved(state, quota_mb=256) as restarted:
            assert not restarted.uids.moved
            async with restarted.jail("acme", print, 60):
                assert not dead.exists() and not mount.exists()
