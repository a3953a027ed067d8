"""Page tokens (core/paging.py) and the resources an app's settings give its
pods (core/settings.py, core/defaults.py)."""

from __future__ import annotations

import pytest

from ignite_server.core import defaults
from ignite_server.core.paging import decode_token, encode_token
from ignite_server.core.settings import POD_FIELDS, UPDATABLE_FIELDS, resources_of, settings_of
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import Limits, ResourceTier
from tests.core.conftest import make_target


@pytest.mark.parametrize("key", ["", "greet", "01JAAAAAAAAAAAAAAAAAAAAAAA", "ünïcode/and?symbols"])
def test_a_page_token_gives_back_its_key(key: str) -> None:
    assert decode_token(encode_token(key)) == key


@pytest.mark.parametrize("token", ["a", "abcde", "__4="])
def test_a_token_this_server_did_not_issue_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        decode_token(token)
    assert refused.value.reason == "INVALID_PAGE_TOKEN"


@pytest.mark.parametrize("tier", [t for t in ResourceTier if t != ResourceTier.UNSPECIFIED])
def test_a_tier_gives_its_memory_and_cpu_and_the_default_timeout(tmp_path, tier) -> None:  # type: ignore[no-untyped-def]
    app = make_target(tmp_path).app
    app = app.__class__(**{**app.__dict__, "tier": tier, "limits": Limits()})
    memory, cpu = defaults.TIERS[tier]
    resources = resources_of(app)
    assert (resources.memory_mb, resources.cpu_millicores) == (memory, cpu)
    assert resources.timeout_secs == defaults.DEFAULT_TIMEOUT_SECS


def test_explicit_limits_win_over_the_tier(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_target(tmp_path).app
    limited = Limits(memory_mb=2048, cpu_millicores=1500, timeout_secs=120)
    app = app.__class__(**{**app.__dict__, "tier": ResourceTier.SMALL, "limits": limited})
    resources = resources_of(app)
    assert (resources.memory_mb, resources.cpu_millicores, resources.timeout_secs) == (
        2048,
        1500,
        120,
    )


def test_what_pods_start_with_is_updatable_and_settings_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert POD_FIELDS <= UPDATABLE_FIELDS
    app = make_target(tmp_path, env={"K": "V"}, max_concurrency=4).app
    settings = settings_of(app)
    assert (settings.env, settings.max_concurrency, settings.tier) == (
        {"K": "V"},
        4,
        app.tier,
    )
