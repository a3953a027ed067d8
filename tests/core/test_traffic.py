"""Checking traffic splits and tags (core/traffic.py), without a platform."""

from __future__ import annotations

import pytest

from ignite_server.core.traffic import check_tag, check_traffic, primary_of
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import TrafficTarget as T


def _reason(call, *args) -> str:
    with pytest.raises(InvalidArgument) as err:
        call(*args)
    return err.value.reason


def test_a_split_adds_up_to_100_without_repeats_or_the_draft():
    assert check_traffic([T(4, 10), T(3, 90), T(5, 0)]) == [T(3, 90), T(4, 10)]
    assert check_traffic([]) == []
    assert _reason(check_traffic, [T(3, 90), T(4, 20)]) == "TRAFFIC_NOT_100"
    assert _reason(check_traffic, [T(3, 50), T(3, 50)]) == "DUPLICATE_VERSION"
    assert _reason(check_traffic, [T(0, 100)]) == "INVALID_VERSION"
    assert _reason(check_traffic, [T(3, 150)]) == "OUT_OF_RANGE"
    eleven = [T(n, 9) for n in range(1, 12)]
    assert _reason(check_traffic, eleven) == "TOO_MANY_VERSIONS"


def test_the_largest_share_is_active_and_a_tie_keeps_the_current_one():
    assert primary_of([T(3, 90), T(4, 10)], active=4) == 3
    assert primary_of([T(3, 50), T(4, 50)], active=3) == 3
    assert primary_of([T(3, 50), T(4, 50)], active=7) == 4


def test_tags_are_dns_safe_and_their_url_fits_a_label():
    assert check_tag("canary", "acme", "greet") == "canary"
    assert check_tag("blue-2", "acme", "greet") == "blue-2"
    for bad in ("", "Canary", "2nd", "a--b", "a-", "a_b"):
        assert _reason(check_tag, bad, "acme", "greet") in ("INVALID_TAG", "TAG_REQUIRED")
    assert _reason(check_tag, "t" * 40, "acme-corporation", "greeting") == "TAG_TOO_LONG_FOR_URL"
