"""Which version a request runs (core/routing.py), without a platform."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from ignite_server.core.routing import pick_version
from ignite_server.domain.models import TrafficTarget
from tests.core.conftest import make_target


def _app(active: int, *split: tuple[int, int]):
    app = make_target(__import__("pathlib").Path("/nonexistent")).app
    return replace(app, active_version=active, traffic=tuple(TrafficTarget(*s) for s in split))


def test_without_a_split_every_request_runs_the_active_version():
    app = _app(4)
    assert {pick_version(app, key) for key in ("", "a", "b")} == {4}


def test_a_split_is_drawn_by_weight():
    app = _app(3, (3, 90), (4, 10))
    rng = random.Random(7)
    drawn = Counter(pick_version(app, rng=rng) for _ in range(20_000))
    assert set(drawn) == {3, 4}
    assert 0.09 <= drawn[4] / 20_000 <= 0.11


def test_a_sticky_key_always_reaches_one_version_and_keys_spread_by_weight():
    app = _app(1, (1, 50), (2, 30), (5, 20))
    for key in ("alice", "bob", "carol"):
        assert len({pick_version(app, key) for _ in range(50)}) == 1
    spread = Counter(pick_version(app, f"user-{n}") for n in range(10_000))
    assert abs(spread[1] / 10_000 - 0.5) < 0.03
    assert abs(spread[2] / 10_000 - 0.3) < 0.03
    assert abs(spread[5] / 10_000 - 0.2) < 0.03


def test_one_key_lands_differently_in_another_app():
    first = _app(1, (1, 50), (2, 50))
    other = replace(first, name="other")
    keys = [f"k{n}" for n in range(200)]
    assert [pick_version(first, k) for k in keys] != [pick_version(other, k) for k in keys]
