"""Access tokens from an external OpenID Connect issuer.

With ``--oidc-issuer URL`` the server also accepts tokens whose ``iss`` is
that URL. Its keys come from the issuer's discovery document
(``/.well-known/openid-configuration`` → ``jwks_uri``), fetched at start and
every REFRESH_SECS, and cached. A token signed with a key id the cache does
not know triggers a refetch, at most once per REFETCH_INTERVAL_SECS, so a
flood of made-up key ids costs one request to the issuer per interval.

The accepted algorithms are fixed by configuration (never read from the
token), as are the audience and the claims that carry the caller's
organization and roles. External callers are never platform administrators.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import jwt
import structlog

from ignite_common.task_supervisor import TaskSupervisor
from ignite_server.core.tokens import LEEWAY_SECS
from ignite_server.domain.errors import Unauthenticated
from ignite_server.domain.principal import Principal, Role

log = structlog.get_logger(__name__)

#: Keys are reloaded this often even if nothing asks.
REFRESH_SECS = 600.0
#: An unknown key id refetches the key set at most this often.
REFETCH_INTERVAL_SECS = 60.0
FETCH_TIMEOUT_SECS = 10.0
#: Access-token types accepted from an external issuer: RFC 9068's, and the
#: plain JWT type most identity providers put on their access tokens.
TOKEN_TYPES = ("at+jwt", "jwt", "application/at+jwt")


def _roles(value: Any) -> frozenset[Role]:
    """Role names ("developer", "ROLE_DEVELOPER") or numbers from a claim."""
    items = value if isinstance(value, list) else [value] if value else []
    roles = set()
    for item in items:
        name = str(item).upper().removeprefix("ROLE_")
        if name in Role.__members__ and name != "UNSPECIFIED":
            roles.add(Role[name])
        elif isinstance(item, int) and item in Role._value2member_map_ and item:
            roles.add(Role(item))
    return frozenset(roles)


class ExternalIssuer:
    def __init__(
        self,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        organization_claim: str = "org",
        roles_claim: str = "roles",
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.algorithms = list(algorithms)
        self.organization_claim = organization_claim
        self.roles_claim = roles_claim
        self._keys: dict[str, jwt.PyJWK] = {}
        # When an unknown key id last caused a fetch (scheduled loads aside).
        self._last_refetch = float("-inf")
        self._lock = asyncio.Lock()
        self._tasks = TaskSupervisor("oidc")

    def owns(self, unverified_issuer: object) -> bool:
        return isinstance(unverified_issuer, str) and unverified_issuer.rstrip("/") == self.issuer

    async def start(self) -> None:
        with contextlib.suppress(Exception):
            await self._fetch()
        # A failed fetch is logged; the keys already fetched stay in use.
        self._tasks.every(REFRESH_SECS, self._fetch, name="refresh")

    async def close(self) -> None:
        await self._tasks.close()

    async def _fetch(self) -> None:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECS)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.get(f"{self.issuer}/.well-known/openid-configuration") as resp:
                    resp.raise_for_status()
                    discovery = json.loads(await resp.read())
                if str(discovery.get("issuer", "")).rstrip("/") != self.issuer:
                    raise ValueError("the discovery document names another issuer")
                async with http.get(discovery["jwks_uri"]) as resp:
                    resp.raise_for_status()
                    document = json.loads(await resp.read())
            keys = jwt.PyJWKSet.from_dict(document).keys
        except Exception as err:
            log.warning("oidc.fetch_failed", issuer=self.issuer, error=str(err))
            raise
        self._keys = {k.key_id: k for k in keys if k.key_id}
        log.info("oidc.keys_loaded", issuer=self.issuer, keys=len(self._keys))

    async def _key(self, kid: str) -> jwt.PyJWK | None:
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            if kid not in self._keys and (
                time.monotonic() - self._last_refetch >= REFETCH_INTERVAL_SECS
            ):
                self._last_refetch = time.monotonic()
                with contextlib.suppress(Exception):
                    await self._fetch()
        return self._keys.get(kid)

    async def verify(self, token: str, header: dict[str, Any]) -> Principal:
        if str(header.get("typ", "jwt")).lower() not in TOKEN_TYPES:
            raise Unauthenticated("the token is not an access token", reason="INVALID_TOKEN")
        if header.get("alg") not in self.algorithms:
            raise Unauthenticated(
                "the token's signature algorithm is not accepted", reason="BAD_ALGORITHM"
            )
        key = await self._key(str(header.get("kid", "")))
        if key is None:
            raise Unauthenticated("the token was signed by an unknown key", reason="UNKNOWN_KEY")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the access token has expired", reason="TOKEN_EXPIRED") from None
        except jwt.PyJWTError as err:
            raise Unauthenticated(
                f"the access token is invalid: {err}", reason="INVALID_TOKEN"
            ) from None
        organization = claims.get(self.organization_claim)
        if not isinstance(organization, str) or not organization:
            raise Unauthenticated(
                f"the token has no '{self.organization_claim}' claim", reason="NO_ORGANIZATION"
            )
        return Principal(
            subject=f"{claims['sub']}@{self.issuer}",
            organization=organization,
            roles=_roles(claims.get(self.roles_claim)),
            expires_at_ms=int(claims["exp"]) * 1000,
        )
