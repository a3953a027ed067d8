"""Endpoint parsing and the TLS decision."""

from __future__ import annotations

import pytest

from dodil_cli.endpoint import is_loopback, parse_endpoint
from dodil_cli.errors import UsageError


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "api.localhost", "127.0.0.1", "127.8.9.10", "::1"]
)
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["rpc.dev.dodil.io", "10.0.0.1", "localhost.example.com", "::2"])
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


def test_remote_endpoint_uses_tls_unless_forced():
    endpoint = parse_endpoint("rpc.dev.dodil.io:443")
    assert endpoint.target == "rpc.dev.dodil.io:443"
    assert endpoint.use_tls()
    assert not endpoint.use_tls(force_plaintext=True)


def test_loopback_endpoint_is_plaintext():
    assert not parse_endpoint("127.0.0.1:50051").use_tls()
    assert not parse_endpoint("[::1]:50051").use_tls()
    assert parse_endpoint("[::1]:50051").target == "[::1]:50051"


def test_scheme_decides_tls_and_default_port():
    assert parse_endpoint("https://localhost").use_tls()
    assert parse_endpoint("https://localhost").port == 443
    plain = parse_endpoint("http://rpc.example.com")
    assert not plain.use_tls()
    assert plain.port == 50051


def test_default_ports():
    assert parse_endpoint("rpc.dodil.io").port == 443
    assert parse_endpoint("localhost").port == 50051


@pytest.mark.parametrize(
    "text", ["", "host:port", "host:0", "host:70000", "a b:1", "host/path", ":80"]
)
def test_malformed_endpoints(text):
    with pytest.raises(UsageError):
        parse_endpoint(text)
