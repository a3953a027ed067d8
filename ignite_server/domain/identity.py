"""The identity records: organizations (the tenants), service accounts
(who calls), and the keys tokens are signed with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OrganizationRecord:
    """A tenant: every app, execution and account belongs to one."""

    name: str
    display_name: str
    created_at_ms: int


@dataclass(frozen=True)
class AccountRecord:
    """A service account; ``secret_hash`` never leaves the server."""

    organization: str
    name: str
    client_id: str
    secret_hash: str
    roles: tuple[int, ...]
    description: str
    platform_admin: bool
    created_at_ms: int


@dataclass(frozen=True)
class KeyRecord:
    """A token-signing key; retired keys still verify until tokens expire."""

    kid: str
    private_pem: str
    created_at_ms: int
    retired_at_ms: int | None
