"""Tag URLs (``<tag>---<app>-<org>.<domain>``) as the gateway reads them."""

from __future__ import annotations

from ignite_gateway.app_urls import AppRef, app_label, candidates


def test_a_tag_url_names_the_tag_first_then_the_plain_splits():
    label = app_label("canary---greet-acme-corp.ignite.localhost:8080", "ignite.localhost")
    assert label == "canary---greet-acme-corp"
    assert candidates(label) == [
        AppRef("acme-corp", "greet", "canary"),
        AppRef("corp", "greet-acme", "canary"),
        # Only names made before "---" was kept for tags could be these.
        AppRef("acme-corp", "canary---greet"),
        AppRef("corp", "canary---greet-acme"),
    ]


def test_a_tag_holds_no_double_dash_so_the_first_triple_one_ends_it():
    assert candidates("blue-2---app-org")[0] == AppRef("org", "app", "blue-2")
    # "a--" is no tag: the label is read as a plain host only.
    assert all(not ref.tag for ref in candidates("a-----app-org"))


def test_plain_hosts_have_no_tag():
    assert all(not ref.tag for ref in candidates("greet-acme-corp"))
