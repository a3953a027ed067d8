"""The HTTP side of the registry token service (registry_tokens.py): the
realm the embedded registry sends clients to, on loopback beside it.

Both ways clients ask are served at ``/token``:

- ``GET`` with HTTP Basic credentials and ``service``/``scope`` query
  parameters (the Docker token spec; skopeo, buildah);
- ``POST`` with a form ``grant_type=password&username&password&scope``
  (the OAuth 2 form of the spec, which containerd tries first when it has
  credentials). Other grants answer 400, which makes containerd fall back
  to ``GET``.

Requests without valid credentials get 401: the registry is not readable
anonymously. A token never grants more than the account may (it may grant
nothing, which the registry then refuses).
"""

from __future__ import annotations

import base64
import binascii
import datetime

import structlog
from aiohttp import web

from ignite_server.images.registry_tokens import (
    SERVICE,
    TOKEN_TTL_SECS,
    Account,
    RegistryTokens,
    Scope,
)

log = structlog.get_logger(__name__)

#: The path of the realm.
TOKEN_PATH = "/token"
LOOPBACK = "127.0.0.1"


class TokenEndpoint:
    """Serves tokens on a loopback port of its own from ``start()`` to
    ``close()``."""

    def __init__(self, tokens: RegistryTokens) -> None:
        self._tokens = tokens
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def realm(self) -> str:
        """The realm URL the registry sends clients to."""
        return f"http://{LOOPBACK}:{self.port}{TOKEN_PATH}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_get(TOKEN_PATH, self._get)
        app.router.add_post(TOKEN_PATH, self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, LOOPBACK, 0).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("registry.tokens.serving", realm=self.realm)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _get(self, request: web.Request) -> web.Response:
        account = self._basic(request.headers.get("Authorization", ""))
        if account is None:
            return _unauthorized()
        scopes = [scope for value in request.query.getall("scope", []) for scope in _scopes(value)]
        return self._answer(account, scopes, "token")

    async def _post(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "password":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        account = self._tokens.authenticate(
            str(form.get("username", "")), str(form.get("password", ""))
        )
        if account is None:
            return _unauthorized()
        return self._answer(account, _scopes(str(form.get("scope", ""))), "access_token")

    def _basic(self, header: str) -> Account | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, colon, password = decoded.partition(":")
        return self._tokens.authenticate(username, password) if colon else None

    def _answer(self, account: Account, scopes: list[Scope], field: str) -> web.Response:
        access = self._tokens.grant(account, scopes)
        token = self._tokens.token(account, access)
        issued = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        body: dict[str, object] = {field: token, "expires_in": TOKEN_TTL_SECS, "issued_at": issued}
        if field == "token":
            body["access_token"] = token
        return web.json_response(body)


def _scopes(value: str) -> list[Scope]:
    """The scopes of one ``scope`` value (several may be space-separated)."""
    parsed = (Scope.parse(part) for part in value.split())
    return [scope for scope in parsed if scope is not None]


def _unauthorized() -> web.Response:
    return web.json_response(
        {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]},
        status=401,
        headers={"WWW-Authenticate": f'Basic realm="{SERVICE}"'},
    )
