"""The publish flags' forms: --rollout, --step, traffic shares."""

from __future__ import annotations

import pytest

from dodil_cli.commands.traffic import parse_shares
from dodil_cli.errors import UsageError
from dodil_cli.rollout_spec import PublishSpec, parse_duration, parse_rollout


def test_rollout_steps():
    assert parse_rollout("canary:10,50,100") == [10, 50, 100]
    assert parse_rollout("canary:5, 25%") == [5, 25, 100]
    for bad in ("canary:", "linear:10,50", "canary:50,10", "canary:0,50", "canary:x", "canary:100"):
        with pytest.raises(UsageError):
            parse_rollout(bad)


def test_step_durations():
    assert [parse_duration(t) for t in ("90", "90s", "2m", "1h")] == [90, 90, 120, 3600]
    for bad in ("0s", "soon", "-5s", "1d"):
        with pytest.raises(UsageError):
            parse_duration(bad)


def test_traffic_shares():
    assert [(t.version, t.percent) for t in parse_shares(("v3=90", "4=10%"))] == [(3, 90), (4, 10)]
    for bad in (("v3=90",), ("v3:90", "v4=10"), ("vx=100",)):
        with pytest.raises(UsageError):
            parse_shares(bad)


def test_the_policy_sent():
    policy = PublishSpec(rollout=[10, 100], step_secs=30, max_error_increase=2).policy()
    assert policy is not None
    assert list(policy.steps) == [10, 100] and policy.step_secs == 30
    assert policy.max_error_rate_increase_pct == 2 and policy.max_p95_increase_pct == 0
    assert PublishSpec().policy() is None
