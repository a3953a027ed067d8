"""Which of an app's env values lead to the platform's edge, and the
``/etc/hosts`` an image pod gets for them."""

from __future__ import annotations

from ignite_server.backends.local.edge_forward import EDGE_ADDRESS, hosts_file, routes


def test_only_urls_under_the_apps_domain_are_routed() -> None:
    found = routes(
        {
            "BACKEND_URL": "http://backend-acme.ignite.localhost:8080/api",
            "AUTH": "https://Auth-Acme.Ignite.Localhost",
            "BOTH": "see http://a.ignite.localhost:8080 and http://b.ignite.localhost:9000/x",
            "OUTSIDE": "http://example.com:8080",
            "LOOKALIKE": "http://evil-ignite.localhost:8080",
            "PLAIN": "not a url",
        },
        "ignite.localhost",
    )
    assert found.hosts == (
        "backend-acme.ignite.localhost",
        "auth-acme.ignite.localhost",
        "a.ignite.localhost",
        "b.ignite.localhost",
    )
    assert found.ports == (8080, 443, 9000)


def test_hosts_file_maps_edge_names_to_the_edge_address() -> None:
    text = hosts_file(["backend-acme.ignite.localhost"], "pod")
    assert "127.0.0.1\tlocalhost pod" in text
    assert f"{EDGE_ADDRESS}\tbackend-acme.ignite.localhost" in text
    assert EDGE_ADDRESS not in hosts_file([], "pod")
