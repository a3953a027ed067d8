"""App and execution ids as written on the command line."""

from __future__ import annotations

import pytest

from dodil_cli.errors import EXIT_USAGE, UsageError
from dodil_cli.ids import AppRef, parse_app_ref, parse_execution_ref


def test_org_prefix_wins_over_the_default():
    assert parse_app_ref("acme-corp:greet", "other") == AppRef("acme-corp", "greet")


def test_default_org_fills_a_bare_name():
    ref = parse_app_ref("greet", "acme-corp")
    assert str(ref) == "acme-corp:greet"
    assert ref.wire_id == "acme-corp/greet"


def test_wire_form_is_accepted():
    assert parse_app_ref("acme-corp/greet", None) == AppRef("acme-corp", "greet")


def test_bare_name_without_default_org_explains_how_to_set_one():
    with pytest.raises(UsageError) as caught:
        parse_app_ref("greet", None)
    assert "config set organization" in caught.value.message
    assert caught.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    "text",
    [
        "a:b:c",
        ":greet",
        "acme:",
        "Acme:greet",
        "acme:Greet",
        "acme:gr_eet",
        "acme:-greet",
        "acme:greet-",
        "acme:" + "a" * 64,
        "a/b/c",
        "acme:gr/eet",
    ],
)
def test_malformed_app_ids_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_app_ref(text, "default-org")


def test_longest_dns_label_is_accepted():
    assert parse_app_ref("acme:" + "a" * 63, None).name == "a" * 63


def test_execution_ids():
    ref = parse_execution_ref("01JABCDEF", "acme")
    assert (ref.organization, ref.execution_id) == ("acme", "01JABCDEF")
    assert parse_execution_ref("other:01JX", "acme").organization == "other"
    with pytest.raises(UsageError):
        parse_execution_ref("acme:../etc", None)
