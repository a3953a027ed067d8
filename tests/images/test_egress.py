"""The egress policy on its own (a resolver given by the test where a name
must resolve to chosen addresses): which destinations the server refuses to
reach on a user's behalf, and what the operator's allow-list lets through."""

from __future__ import annotations

import ipaddress

import pytest

from ignite_server.domain.errors import FailedPrecondition, InvalidArgument
from ignite_server.images.egress import Address, EgressPolicy, parse_allow_list


def resolver(table: dict[str, list[str]]):
    async def resolve(name: str, port: int) -> list[Address]:
        return [ipaddress.ip_address(a) for a in table.get(name, [])]

    return resolve


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1:50051", "loopback"),
        ("127.9.9.9", "loopback"),
        ("[::1]:8080", "loopback"),
        ("[::ffff:127.0.0.1]:80", "loopback"),
        ("169.254.169.254", "link-local"),
        ("[fe80::1]", "link-local"),
        ("10.1.2.3:5000", "private"),
        ("192.168.1.1", "private"),
        ("172.16.0.9", "private"),
        ("[fd00::1]", "private"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
async def test_non_public_addresses_are_refused(host: str, kind: str) -> None:
    with pytest.raises(FailedPrecondition) as refused:
        await EgressPolicy().check(host, 443, "--image")
    assert refused.value.reason == "DESTINATION_NOT_ALLOWED"
    assert refused.value.metadata["address_kind"] == kind


async def test_every_address_of_a_name_is_checked() -> None:
    """A name with one public and one loopback address is refused: the tool
    connecting later could pick either."""
    policy = EgressPolicy(
        resolve=resolver(
            {
                "mixed.example": ["93.184.216.34", "127.0.0.1"],
                "public.example": ["93.184.216.34", "2606:2800:220:1::1"],
                "metadata.example": ["169.254.169.254"],
            }
        )
    )
    with pytest.raises(FailedPrecondition) as mixed:
        await policy.check("mixed.example", 443, "--image")
    assert mixed.value.metadata["address_kind"] == "loopback"
    with pytest.raises(FailedPrecondition):
        await policy.check("metadata.example:80", 443, "--git-url")
    checked = await policy.check("public.example", 443, "--image")
    assert (checked.host, checked.port) == ("public.example", 443)
    assert checked.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    with pytest.raises(FailedPrecondition) as unresolved:
        await policy.check("nowhere.example", 443, "--image")
    assert unresolved.value.reason == "HOST_UNRESOLVED"


async def test_the_allow_list_admits_exactly_what_it_names() -> None:
    allow = parse_allow_list(
        ["127.0.0.1:5000", "registry.internal", "10.0.0.0/8", "[::1]:8080", " "]
    )
    policy = EgressPolicy(
        allow,
        resolve=resolver({"registry.internal": ["10.9.9.9"], "other.internal": ["10.1.1.1"]}),
    )
    await policy.check("127.0.0.1:5000", 443, "--image")
    await policy.check("registry.internal", 443, "--image")
    await policy.check("other.internal:7000", 443, "--image")  # in 10.0.0.0/8
    await policy.check("[::1]:8080", 443, "--image")
    for refused in ("127.0.0.1:5001", "127.0.0.1", "[::1]:8081", "192.168.0.1"):
        with pytest.raises(FailedPrecondition):
            await policy.check(refused, 443, "--image")


def test_bad_allow_list_entries_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        parse_allow_list(["http://registry.internal/"])
