"""How a publish goes out, as the user gives it: ``--force``,
``--message``, and a gradual rollout (``--rollout canary:10,50,100 --step
60s``), turned into the fields of PublishDraftRequest.

The rollout form is ``canary:P1,P2,...``: the new version's share after each
step, in percent, increasing; a final 100 is added when missing (the last
step makes the new version the active one). ``--step`` is a duration:
``90``, ``90s``, ``2m`` or ``1h``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from dodil.ignite.v1 import ignite_common_pb2 as common

from dodil_cli.errors import UsageError

_DURATION = re.compile(r"(\d+)\s*(s|m|h)?")
_UNIT_SECS = {"": 1, "s": 1, "m": 60, "h": 3600}
ROLLOUT_STRATEGY = "canary"


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``2m``, ``1h`` as whole seconds (at least 1)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise UsageError(f"--step {text!r} is not a duration like 60s, 2m or 1h")
    seconds = int(match.group(1)) * _UNIT_SECS[match.group(2) or ""]
    if seconds < 1:
        raise UsageError("--step must be at least 1s")
    return seconds


def parse_rollout(text: str) -> list[int]:
    """``canary:10,50,100`` as its steps, checked: increasing percentages."""
    strategy, _, steps = text.partition(":")
    if strategy.strip().lower() != ROLLOUT_STRATEGY or not steps.strip():
        raise UsageError(f"--rollout {text!r}: give it as canary:P1,P2,... (e.g. canary:10,50,100)")
    try:
        percents = [int(part.strip().rstrip("%")) for part in steps.split(",")]
    except ValueError:
        raise UsageError(f"--rollout {text!r}: the steps are whole percentages") from None
    if any(not 0 < p <= 100 for p in percents) or any(
        a >= b for a, b in itertools.pairwise(percents)
    ):
        raise UsageError(f"--rollout {text!r}: steps go up from 1 to 100, e.g. canary:10,50,100")
    if percents[-1] != 100:
        percents.append(100)
    if len(percents) < 2:
        raise UsageError("--rollout needs a step below 100%, e.g. canary:10,100")
    return percents


@dataclass(frozen=True)
class PublishSpec:
    """The publish flags of ``draft publish`` and ``app deploy``."""

    force: bool = False
    message: str = ""
    rollout: list[int] | None = None
    step_secs: int = 0
    max_error_increase: int = 0
    max_p95_increase: int = 0
    min_requests: int = 0
    #: Follow the rollout until it ends; fail when it rolls back.
    wait: bool = False

    def policy(self) -> common.RolloutPolicy | None:
        if self.rollout is None:
            return None
        return common.RolloutPolicy(
            steps=self.rollout,
            step_secs=self.step_secs,
            max_error_rate_increase_pct=self.max_error_increase,
            max_p95_increase_pct=self.max_p95_increase,
            min_requests=self.min_requests,
        )
