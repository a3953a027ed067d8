"""Tool names of apps, and resolving them back within an organization."""

from __future__ import annotations

import pytest

from ignite_gateway.mcp.naming import app_for_tool, tool_name


def test_hyphens_become_underscores() -> None:
    assert tool_name("acme-corp", "greet") == "ignite_acme_corp_greet"
    assert tool_name("acme-corp", "hello-world") == "ignite_acme_corp_hello_world"


@pytest.mark.parametrize(
    ("org", "app"), [("acme-corp", "hello-world"), ("a", "b-c"), ("a-b", "c"), ("x1", "9-9-9")]
)
def test_round_trip_within_the_organization(org: str, app: str) -> None:
    assert app_for_tool(org, tool_name(org, app)) == app


def test_ambiguous_names_resolve_by_the_callers_organization() -> None:
    # Both apps map to the same string; the caller's organization decides.
    assert tool_name("a", "b-c") == tool_name("a-b", "c") == "ignite_a_b_c"
    assert app_for_tool("a", "ignite_a_b_c") == "b-c"
    assert app_for_tool("a-b", "ignite_a_b_c") == "c"


@pytest.mark.parametrize(
    "name",
    [
        "ignite_other_greet",  # another organization
        "ignite_acme_corp_",  # no app
        "ignite_acme_corp_Greet",  # not a DNS label
        "ignite_acme_corp__greet",  # would be "-greet"
        "acme_corp_greet",  # no prefix
        "ignite_acme_corp_" + "a" * 64,  # too long for a label
    ],
)
def test_names_that_are_no_tool_of_the_organization(name: str) -> None:
    assert app_for_tool("acme-corp", name) is None
