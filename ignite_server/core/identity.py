"""Identity: organizations, service accounts, roles and access tokens.

Authentication happens on every RPC and must be cheap and safe against
floods, so it never reads the database: keys and the table of live accounts
(client_id → organization, roles) are held in memory, loaded at start,
refreshed every REFRESH_SECS, and updated at once by changes made through
this server. Roles are taken from that table rather than from the token, so
a revoked role or a deleted account stops working immediately on this
server and within REFRESH_SECS on the others.

Secrets are 256-bit random strings shown once; only a salted SHA-256 hash is
stored, and comparisons run in constant time (also for unknown client ids).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.core.oidc import ExternalIssuer
from ignite_server.core.organizations import Organizations
from ignite_server.core.tokens import LEEWAY_SECS, SigningKey, TokenAuthority
from ignite_server.core.validation import check_name, check_new_organization_name
from ignite_server.domain.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unauthenticated,
)
from ignite_server.domain.identity import AccountRecord, KeyRecord, OrganizationRecord
from ignite_server.domain.principal import ANONYMOUS, Principal, Role
from ignite_server.observability import metrics
from ignite_server.ports.identity_store import IdentityStore

log = structlog.get_logger(__name__)

#: How often keys and accounts are reloaded (changes made by other servers).
REFRESH_SECS = 30.0
#: The organization that holds the platform administrator's account.
SYSTEM_ORGANIZATION = "system"
ADMIN_ACCOUNT = "admin"
#: A hash compared against when the client id is unknown, so that a wrong
#: client id takes as long as a wrong secret.
_DUMMY_HASH = "00" * 16 + "$" + "00" * 32


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    return salt.hex() + "$" + hashlib.sha256(salt + secret.encode()).hexdigest()


def secret_matches(secret: str, stored: str) -> bool:
    salt_hex, _, digest = stored.partition("$")
    candidate = hashlib.sha256(bytes.fromhex(salt_hex) + secret.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def new_secret() -> str:
    return "ign_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class _Live:
    organization: str
    roles: frozenset[Role]
    platform_admin: bool


class Identity:
    def __init__(
        self,
        store: IdentityStore,
        authority: TokenAuthority,
        external: ExternalIssuer | None = None,
    ) -> None:
        self._store = store
        self.authority = authority
        self.external = external
        self._accounts: dict[str, _Live] = {}
        self._tasks = TaskSupervisor("identity")
        #: Which organizations exist (asked by the RPC boundary).
        self.organizations = Organizations(store)

    # --- lifecycle ------------------------------------------------------

    async def start(self) -> None:
        if not await self._store.keys():
            key = SigningKey.generate()
            await self._store.add_key(
                KeyRecord(key.kid, key.private_pem(), _now_ms(), None), retire_others_at_ms=None
            )
        await self.refresh()
        if self.external is not None:
            await self.external.start()
        self._tasks.every(REFRESH_SECS, self.refresh, name="refresh")

    async def close(self) -> None:
        if self.external is not None:
            await self.external.close()
        await self._tasks.close()

    async def refresh(self) -> None:
        records = await self._store.keys()
        live = [r for r in records if r.retired_at_ms is None]
        horizon = _now_ms() - (self.authority.ttl_secs + LEEWAY_SECS) * 1000
        verifying = [
            SigningKey.from_pem(r.kid, r.private_pem)
            for r in records
            if r.retired_at_ms is None or r.retired_at_ms > horizon
        ]
        signing = SigningKey.from_pem(live[-1].kid, live[-1].private_pem)
        self.authority.use_keys(signing, verifying)
        self._accounts = {a.client_id: _live(a) for a in await self._store.all_accounts()}
        await self.organizations.refresh()

    async def bootstrap_admin(self, credentials_file: Path) -> None:
        """Create the platform administrator on a first start and write its
        credentials (0600) where the operator, and `make run`, find them."""
        client_id = f"{ADMIN_ACCOUNT}@{SYSTEM_ORGANIZATION}"
        if await self._store.account_by_client_id(client_id) is not None:
            return
        await self._store.ensure_organization(SYSTEM_ORGANIZATION, _now_ms())
        secret = new_secret()
        await self._store.create_account(
            AccountRecord(
                organization=SYSTEM_ORGANIZATION,
                name=ADMIN_ACCOUNT,
                client_id=client_id,
                secret_hash=hash_secret(secret),
                roles=(int(Role.ADMIN),),
                description="platform administrator",
                platform_admin=True,
                created_at_ms=_now_ms(),
            )
        )
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"client_id": client_id, "client_secret": secret}, out)
        await self.refresh()
        log.info("identity.admin_created", client_id=client_id, credentials=str(credentials_file))

    # --- authentication (no I/O) ------------------------------------------

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by an ``authorization`` header value; a refusal
        is counted by its reason (a stable constant of ours, never the token)."""
        try:
            return await self._authenticate(authorization)
        except Unauthenticated as err:
            metrics.count(metrics.TOKEN_FAILURES, err.reason)
            raise

    async def _authenticate(self, authorization: str | None) -> Principal:
        if authorization is None:
            return ANONYMOUS
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(
                "the authorization header must be 'Bearer <token>'", reason="MALFORMED_TOKEN"
            )
        if self.external is not None:
            try:
                header = jwt.get_unverified_header(token)
                issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
            except jwt.PyJWTError:
                raise Unauthenticated(
                    "the access token is not a JWT", reason="MALFORMED_TOKEN"
                ) from None
            if self.external.owns(issuer):
                return await self.external.verify(token, header)
        claims = self.authority.verify(token)
        subject = str(claims["sub"])
        live = self._accounts.get(subject)
        if live is None:
            raise Unauthenticated("the token's account no longer exists", reason="UNKNOWN_ACCOUNT")
        return Principal(
            subject=subject,
            organization=live.organization,
            roles=live.roles,
            platform_admin=live.platform_admin,
            expires_at_ms=int(claims["exp"]) * 1000,  # type: ignore[call-overload]
        )

    # --- tokens ---------------------------------------------------------

    async def issue_token(self, client_id: str, client_secret: str) -> tuple[str, int]:
        account = await self._store.account_by_client_id(client_id) if client_id else None
        stored = account.secret_hash if account else _DUMMY_HASH
        if not secret_matches(client_secret, stored) or account is None:
            raise Unauthenticated("invalid client credentials", reason="INVALID_CLIENT")
        return self.authority.issue(
            account.client_id, account.organization, list(account.roles), account.platform_admin
        )

    async def rotate_key(self) -> str:
        key = SigningKey.generate()
        now = _now_ms()
        await self._store.add_key(
            KeyRecord(key.kid, key.private_pem(), now, None), retire_others_at_ms=now
        )
        await self.refresh()
        log.info("identity.key_rotated", kid=key.kid)
        return key.kid

    # --- organizations and accounts ---------------------------------------

    async def create_organization(self, name: str, display_name: str) -> OrganizationRecord:
        check_new_organization_name(name)
        if name == SYSTEM_ORGANIZATION:
            raise InvalidArgument(
                f"'{name}' is reserved", reason="RESERVED_NAME", metadata={"field": "name"}
            )
        record = await self._store.create_organization(name, display_name, _now_ms())
        self.organizations.created(name)
        return record

    async def list_organizations(self, principal: Principal) -> list[OrganizationRecord]:
        orgs = await self._store.list_organizations()
        return [o for o in orgs if principal.sees(o.name) and o.name != SYSTEM_ORGANIZATION]

    async def delete_organization(self, name: str) -> None:
        check_name(name, "organization_name")
        if name == SYSTEM_ORGANIZATION:
            raise FailedPrecondition(
                "the system organization cannot be deleted", reason="RESERVED_NAME"
            )
        await self._store.delete_organization(name)
        self.organizations.deleted(name)
        await self.refresh()

    async def create_account(
        self, organization: str, name: str, roles: list[int], description: str
    ) -> tuple[AccountRecord, str]:
        check_name(organization, "organization_name")
        check_name(name, "name")
        granted = _check_roles(roles)
        secret = new_secret()
        account = await self._store.create_account(
            AccountRecord(
                organization=organization,
                name=name,
                client_id=f"{name}@{organization}",
                secret_hash=hash_secret(secret),
                roles=tuple(sorted(granted)),
                description=description[:1024],
                platform_admin=False,
                created_at_ms=_now_ms(),
            )
        )
        self._accounts[account.client_id] = _live(account)
        return account, secret

    async def list_accounts(self, organization: str) -> list[AccountRecord]:
        check_name(organization, "organization_name")
        if not await self.organizations.exists(organization):
            raise NotFound(
                f"organization {organization} not found",
                reason="ORGANIZATION_NOT_FOUND",
                metadata={"organization": organization},
            )
        return [a for a in await self._store.all_accounts() if a.organization == organization]

    async def delete_account(self, organization: str, name: str) -> AccountRecord:
        account = await self._store.delete_account(organization, name)
        self._accounts.pop(account.client_id, None)
        return account

    async def change_role(
        self, organization: str, name: str, role: int, grant: bool
    ) -> AccountRecord:
        (wanted,) = _check_roles([role])
        current = {a.name: a for a in await self.list_accounts(organization)}.get(name)
        roles = set(current.roles) if current else set()
        roles = roles | {wanted} if grant else roles - {wanted}
        account = await self._store.set_roles(organization, name, sorted(roles))
        self._accounts[account.client_id] = _live(account)
        return account


def _check_roles(roles: list[int]) -> set[int]:
    valid = {int(r) for r in Role if r != Role.UNSPECIFIED}
    bad = [r for r in roles if r not in valid]
    if bad:
        raise InvalidArgument(
            f"unknown role {bad[0]}", reason="INVALID_ROLE", metadata={"field": "roles"}
        )
    return set(roles)


def _live(account: AccountRecord) -> _Live:
    return _Live(
        account.organization, frozenset(Role(r) for r in account.roles), account.platform_admin
    )


def _now_ms() -> int:
    return int(time.time() * 1000)
