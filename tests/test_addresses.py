"""ignite_common.addresses: which addresses are this machine's loopback."""

from __future__ import annotations

import pytest

from ignite_common.addresses import is_loopback


@pytest.mark.parametrize(
    "address",
    ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:50051", "127.8.0.2:80",
     "[::1]:443", "::1", "[::1]"],
)  # fmt: skip
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0:443", "10.0.0.1:5000", "ghcr.io", "ghcr.io:443", "[2001:db8::1]:5000",
     "localhost.example.com:5000", "127.0.0.1.nip.io", ""],
)  # fmt: skip
def test_other_addresses(address: str) -> None:
    assert not is_loopback(address)
