"""Organizations, service accounts and signing keys on PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg

from ignite_server.domain.errors import AlreadyExists, NotFound
from ignite_server.domain.identity import AccountRecord, KeyRecord, OrganizationRecord
from ignite_server.store.database import connection


def _account(row: Any) -> AccountRecord:
    return AccountRecord(
        organization=row["organization"],
        name=row["name"],
        client_id=row["client_id"],
        secret_hash=row["secret_hash"],
        roles=tuple(row["roles"]),
        description=row["description"],
        platform_admin=row["platform_admin"],
        created_at_ms=row["created_at_ms"],
    )


def _org_not_found(name: str) -> NotFound:
    return NotFound(
        f"organization {name} not found",
        reason="ORGANIZATION_NOT_FOUND",
        metadata={"organization": name},
    )


class PostgresIdentityStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- organizations --------------------------------------------------

    async def create_organization(
        self, name: str, display_name: str, now_ms: int
    ) -> OrganizationRecord:
        async with connection(self._pool) as conn:
            try:
                await conn.execute(
                    "INSERT INTO organizations (name, display_name, created_at_ms)"
                    " VALUES ($1, $2, $3)",
                    name,
                    display_name,
                    now_ms,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(
                    f"organization {name} already exists",
                    reason="ORGANIZATION_ALREADY_EXISTS",
                    metadata={"organization": name},
                ) from None
        return OrganizationRecord(name, display_name, now_ms)

    async def ensure_organization(self, name: str, now_ms: int) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(
                "INSERT INTO organizations (name, created_at_ms) VALUES ($1, $2)"
                " ON CONFLICT (name) DO NOTHING",
                name,
                now_ms,
            )

    async def has_organization(self, name: str) -> bool:
        async with connection(self._pool) as conn:
            return bool(await conn.fetchval("SELECT 1 FROM organizations WHERE name = $1", name))

    async def list_organizations(self) -> list[OrganizationRecord]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch("SELECT * FROM organizations ORDER BY name")
        return [OrganizationRecord(r["name"], r["display_name"], r["created_at_ms"]) for r in rows]

    async def delete_organization(self, name: str) -> None:
        async with connection(self._pool) as conn, conn.transaction():
            deleted = await conn.fetchval(
                "DELETE FROM organizations WHERE name = $1 RETURNING name", name
            )
            if deleted is None:
                raise _org_not_found(name)
            # Apps are keyed by organization name, not by a foreign key (an
            # organization can exist implicitly when auth is off).
            await conn.execute("DELETE FROM apps WHERE organization = $1", name)

    # --- service accounts -----------------------------------------------

    async def create_account(self, account: AccountRecord) -> AccountRecord:
        async with connection(self._pool) as conn:
            try:
                row = await conn.fetchrow(
                    """
                    INSERT INTO service_accounts (organization, name, client_id, secret_hash,
                        roles, description, platform_admin, created_at_ms)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *
                    """,
                    account.organization,
                    account.name,
                    account.client_id,
                    account.secret_hash,
                    list(account.roles),
                    account.description,
                    account.platform_admin,
                    account.created_at_ms,
                )
            except asyncpg.ForeignKeyViolationError:
                raise _org_not_found(account.organization) from None
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(
                    f"service account {account.client_id} already exists",
                    reason="SERVICE_ACCOUNT_ALREADY_EXISTS",
                    metadata={"client_id": account.client_id},
                ) from None
        return _account(row)

    async def all_accounts(self) -> list[AccountRecord]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch("SELECT * FROM service_accounts ORDER BY organization, name")
        return [_account(r) for r in rows]

    async def account_by_client_id(self, client_id: str) -> AccountRecord | None:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                "SELECT * FROM service_accounts WHERE client_id = $1", client_id
            )
        return _account(row) if row else None

    async def delete_account(self, organization: str, name: str) -> AccountRecord:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                "DELETE FROM service_accounts WHERE organization = $1 AND name = $2 RETURNING *",
                organization,
                name,
            )
        if row is None:
            raise _account_not_found(organization, name)
        return _account(row)

    async def set_roles(self, organization: str, name: str, roles: list[int]) -> AccountRecord:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                "UPDATE service_accounts SET roles = $3 WHERE organization = $1 AND name = $2"
                " RETURNING *",
                organization,
                name,
                roles,
            )
        if row is None:
            raise _account_not_found(organization, name)
        return _account(row)

    # --- signing keys ---------------------------------------------------

    async def keys(self) -> list[KeyRecord]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch("SELECT * FROM signing_keys ORDER BY created_at_ms")
        return [
            KeyRecord(r["kid"], r["private_pem"], r["created_at_ms"], r["retired_at_ms"])
            for r in rows
        ]

    async def add_key(self, key: KeyRecord, retire_others_at_ms: int | None) -> None:
        async with connection(self._pool) as conn, conn.transaction():
            if retire_others_at_ms is not None:
                await conn.execute(
                    "UPDATE signing_keys SET retired_at_ms = $1 WHERE retired_at_ms IS NULL",
                    retire_others_at_ms,
                )
            await conn.execute(
                "INSERT INTO signing_keys (kid, private_pem, created_at_ms) VALUES ($1, $2, $3)",
                key.kid,
                key.private_pem,
                key.created_at_ms,
            )


def _account_not_found(organization: str, name: str) -> NotFound:
    return NotFound(
        f"service account {name}@{organization} not found",
        reason="SERVICE_ACCOUNT_NOT_FOUND",
        metadata={"client_id": f"{name}@{organization}"},
    )
