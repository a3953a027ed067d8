"""Blocks of host uids, one per state folder: two servers on one host never
hand out the same uid, and a state folder keeps its block across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ignite_server.containment import identities
from ignite_server.containment.identities import BLOCK_SIZE, StateInUse, UidsExhausted

pytestmark = pytest.mark.skipif(
    not identities.privileged(), reason="only a root server reserves uids"
)
#: Three blocks' worth of uids, away from the default range.
RANGE = (1 << 28, 3 * BLOCK_SIZE)


def _reserve(state: Path, registry: Path) -> identities.UidBlock:
    return identities.reserve(state, RANGE, registry)


def test_two_state_folders_get_disjoint_blocks(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    first = _reserve(tmp_path / "a", registry)
    second = _reserve(tmp_path / "b", registry)
    try:
        assert first.first != second.first
        spans = sorted(
            [(first.first, first.first + BLOCK_SIZE), (second.first, second.first + BLOCK_SIZE)]
        )
        assert spans[0][1] <= spans[1][0]
        # Everything a block hands out stays inside it.
        for block in (first, second):
            pod, build = block.pods.take(), block.builds.take()
            image = block.image_range_base(block.image_ranges.take())
            assert all(block.owns(uid) for uid in (pod, build, image, image + 65_535))
            assert len({block.cache_owner, pod, build, image}) == 4
    finally:
        first.release()
        second.release()


def test_a_state_folder_keeps_its_block_and_a_second_server_is_refused(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    held = _reserve(tmp_path / "a", registry)
    with pytest.raises(StateInUse):
        _reserve(tmp_path / "a", registry)
    first = held.first
    held.release()
    again = _reserve(tmp_path / "a", registry)
    assert again.first == first and not again.moved
    assert identities.block_of(tmp_path / "a", RANGE).first == first  # type: ignore[union-attr]
    again.release()


def test_blocks_of_stopped_servers_are_taken_over_when_none_is_free(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    stopped = [_reserve(tmp_path / name, registry) for name in ("a", "b", "c")]
    for block in stopped:
        block.release()
    newcomer = _reserve(tmp_path / "d", registry)
    assert newcomer.moved
    # The block taken over was the one least recently taken.
    assert newcomer.first == stopped[0].first
    # Its previous folder gets another block when it starts again, and knows.
    back = _reserve(tmp_path / "a", registry)
    assert back.moved and back.first != newcomer.first
    newcomer.release()
    back.release()


def test_when_every_block_runs_a_server_there_is_none(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    running = [_reserve(tmp_path / name, registry) for name in ("a", "b", "c")]
    with pytest.raises(UidsExhausted):
        _reserve(tmp_path / "d", registry)
    for block in running:
        block.release()
