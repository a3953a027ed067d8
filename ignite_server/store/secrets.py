"""Secrets on PostgreSQL, their passwords encrypted with a key kept in the
server's state folder.

The key (Fernet: AES-128-CBC with an HMAC-SHA256, from ``cryptography``) is
made on first use as ``<state_dir>/secrets.key``, mode 0600: a database
dump or backup alone reveals no password. Losing the key loses the stored
passwords (they must be created again); the names and user names remain.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet, InvalidToken

from ignite_server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from ignite_server.domain.models import Secret
from ignite_server.store.database import connection

KEY_FILE = "secrets.key"


def load_key(state_dir: Path) -> bytes:
    """The secrets key, made (0600, root's) when there is none yet."""
    path = state_dir / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    key = Fernet.generate_key()
    # O_EXCL: two servers starting on one state folder keep the first key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


def _secret(row: Any) -> Secret:
    return Secret(
        organization=row["organization"],
        name=row["name"],
        username=row["username"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        hosts=tuple(row["hosts"]),
    )


def _not_found(organization: str, name: str) -> NotFound:
    return NotFound(
        f"secret {name} not found in organization {organization}",
        reason="SECRET_NOT_FOUND",
        metadata={"organization": organization, "secret": name},
    )


class PostgresSecretStore:
    def __init__(self, pool: asyncpg.Pool, key: bytes) -> None:
        self._pool = pool
        self._fernet = Fernet(key)

    async def put(self, secret: Secret, password: str, *, replace: bool) -> Secret:
        sealed = self._fernet.encrypt(password.encode())
        conflict = (
            "DO UPDATE SET username = EXCLUDED.username,"
            " password_encrypted = EXCLUDED.password_encrypted,"
            " hosts = EXCLUDED.hosts, updated_at_ms = EXCLUDED.updated_at_ms"
            if replace
            else "DO NOTHING"
        )
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                "INSERT INTO secrets (organization, name, username, password_encrypted,"
                " hosts, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)"
                f" ON CONFLICT (organization, name) {conflict} RETURNING *",
                secret.organization,
                secret.name,
                secret.username,
                sealed,
                list(secret.hosts),
                secret.updated_at_ms,
            )
        if row is None:
            raise AlreadyExists(
                f"secret {secret.name} already exists; pass replace to change it",
                reason="SECRET_ALREADY_EXISTS",
                metadata={"secret": secret.name},
            )
        return _secret(row)

    async def list(self, organization: str) -> list[Secret]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                "SELECT * FROM secrets WHERE organization = $1 ORDER BY name", organization
            )
        return [_secret(row) for row in rows]

    async def delete(self, organization: str, name: str) -> None:
        async with connection(self._pool) as conn:
            done = await conn.execute(
                "DELETE FROM secrets WHERE organization = $1 AND name = $2", organization, name
            )
        if done.endswith(" 0"):
            raise _not_found(organization, name)

    async def credentials(self, organization: str, name: str) -> tuple[Secret, str]:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                "SELECT * FROM secrets WHERE organization = $1 AND name = $2",
                organization,
                name,
            )
        if row is None:
            raise _not_found(organization, name)
        try:
            password = self._fernet.decrypt(bytes(row["password_encrypted"])).decode()
        except InvalidToken:
            raise FailedPrecondition(
                f"secret {name} was stored under another secrets key; create it again",
                reason="SECRET_UNREADABLE",
                metadata={"secret": name},
            ) from None
        return _secret(row), password
