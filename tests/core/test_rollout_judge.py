"""Judging a rollout's step (core/rollout_judge.py) and checking policies
(core/gradual_rollouts.py), without a platform."""

from __future__ import annotations

import pytest

from ignite_server.core.gradual_rollouts import check_policy
from ignite_server.core.rollout_judge import MAX_SAMPLES, StepWindow, judge
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import RolloutPolicy

POLICY = check_policy(RolloutPolicy((10, 50), 0, 0, 0, 0))


def _window(new: list[tuple[bool, float]], old: list[tuple[bool, float]]) -> StepWindow:
    window = StepWindow(step=0, from_version=1, to_version=2)
    for failed, seconds in new:
        window.add(2, failed, seconds)
    for failed, seconds in old:
        window.add(1, failed, seconds)
    window.add(9, True, 5.0)  # another version's request counts for neither
    return window


def test_policy_defaults_and_a_final_100():
    assert RolloutPolicy((10, 50, 100), 60, 5, 50, 10) == POLICY
    for steps, reason in (((), "ROLLOUT_STEPS_REQUIRED"), ((100,), "ROLLOUT_STEPS_REQUIRED"),
                          ((50, 10), "INVALID_ROLLOUT_STEPS"), ((0, 50), "INVALID_ROLLOUT_STEPS"),
                          (tuple(range(1, 12)), "TOO_MANY_STEPS")):  # fmt: skip
        with pytest.raises(InvalidArgument) as err:
            check_policy(RolloutPolicy(steps, 0, 0, 0, 0))
        assert err.value.reason == reason
    with pytest.raises(InvalidArgument):
        check_policy(RolloutPolicy((10,), 90_000, 0, 0, 0))


def test_a_version_failing_half_its_requests_is_rolled_back():
    verdict = judge(_window([(n % 2 == 1, 0.01) for n in range(40)], [(False, 0.01)] * 400), POLICY)
    assert not verdict.passed
    assert "v2 20/40 failed (50.0%)" in verdict.summary
    assert "v1 0/400 failed (0.0%)" in verdict.summary
    assert "error rate is 50.0 points above" in verdict.summary


def test_errors_the_old_version_has_too_are_not_the_new_ones_fault():
    both = [(n % 10 == 0, 0.01) for n in range(100)]
    assert judge(_window(both, both), POLICY).passed


def test_a_slower_p95_rolls_back_only_past_the_bound_and_the_slack():
    fast = [(False, 0.010)] * 100
    assert not judge(_window([(False, 0.200)] * 100, fast), POLICY).passed
    # 3 ms against 1 ms is +200 % but within the 20 ms slack: noise.
    assert judge(_window([(False, 0.003)] * 100, [(False, 0.001)] * 100), POLICY).passed
    # +40 % is within the 50 % bound.
    assert judge(_window([(False, 0.140)] * 100, [(False, 0.100)] * 100), POLICY).passed


def test_too_few_requests_pass_and_say_so():
    verdict = judge(_window([(True, 0.01)] * 3, [(False, 0.01)] * 100), POLICY)
    assert verdict.passed and "too few requests to judge" in verdict.summary


def test_a_busy_step_keeps_a_bounded_sample():
    window = _window([(False, 0.001)] * (MAX_SAMPLES + 5_000), [])
    assert window.new.requests == MAX_SAMPLES + 5_000
    assert len(window.new.latencies_ms) == MAX_SAMPLES
