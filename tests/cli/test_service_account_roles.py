"""Roles as the CLI takes them: ``developer``, ``ignite.developer``, or the
three-argument ``ID SERVICE ROLE`` form naming the authorization service."""

from __future__ import annotations

import pytest

from dodil_cli.commands.service_account import parse_role, parse_role_arguments
from dodil_cli.errors import UsageError


@pytest.mark.parametrize("text", ["developer", "ignite.developer", "ROLE_DEVELOPER", "Developer"])
def test_role_spellings(text):
    assert parse_role(text) == "developer"


def test_service_and_role():
    assert parse_role_arguments(("ignite-authorization-service", "ignite.invoker")) == "invoker"
    assert parse_role_arguments(("viewer",)) == "viewer"


def test_unknown_role_lists_the_valid_ones():
    with pytest.raises(UsageError) as caught:
        parse_role_arguments(("ignite-authorization-service", "ignite.owner"))
    message = caught.value.message
    assert "\n" not in message
    for role in ("ignite.admin", "ignite.developer", "ignite.invoker", "ignite.viewer"):
        assert role in message


def test_unknown_service_names_the_right_one():
    with pytest.raises(UsageError, match="use ignite-authorization-service"):
        parse_role_arguments(("iam", "ignite.invoker"))
