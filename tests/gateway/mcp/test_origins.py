"""The Origin allow-list of /mcp."""

from __future__ import annotations

import pytest

from ignite_gateway.mcp.origins import ALLOWED_ORIGINS_ENV, OriginPolicy


@pytest.mark.parametrize(
    "origin",
    [
        None,  # not a browser
        "http://localhost",
        "http://localhost:6274",
        "https://app.localhost:8443",
        "http://127.0.0.1:3000",
        "http://127.1.2.3",
        "http://[::1]:8080",
    ],
)
def test_loopback_and_absent_origins_pass_by_default(origin: str | None) -> None:
    assert OriginPolicy.from_env({}).allows(origin)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "null",
        "file://",
        "not a url",
    ],
)
def test_other_origins_are_refused_by_default(origin: str) -> None:
    assert not OriginPolicy.from_env({}).allows(origin)


def test_the_list_replaces_the_default() -> None:
    policy = OriginPolicy.from_env({ALLOWED_ORIGINS_ENV: "https://Chat.Example.com/"})
    assert policy.allows("https://chat.example.com")
    assert not policy.allows("http://localhost:3000")
    assert not policy.allows("https://chat.example.com:444")


def test_loopback_can_be_kept_and_star_allows_all() -> None:
    kept = OriginPolicy.from_env({ALLOWED_ORIGINS_ENV: "loopback, https://chat.example.com"})
    assert kept.allows("http://localhost:3000") and kept.allows("https://chat.example.com")
    assert not kept.allows("https://evil.example")
    assert OriginPolicy.from_env({ALLOWED_ORIGINS_ENV: "*"}).allows("https://evil.example")
