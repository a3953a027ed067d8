"""The caller's identity: where the bearer token comes from and where it is kept.

``dodil login`` stores credentials in ``credentials.yaml`` beside the config
(mode 0600, written atomically). A token in ``DODIL_TOKEN`` wins over the
stored one, so CI jobs need no file. Every API call then carries
``authorization: Bearer <token>``.

Stored credentials name their ``kind``:

- ``token``: an access token given to ``dodil login --token``, sent as is
  until it expires;
- ``client_credentials``: an OAuth 2.0 client id and secret (a service
  account), and optionally the token endpoint to use. ``login`` exchanges
  them for an access token at once, which checks them; the token is cached
  in the file with its expiry and exchanged again shortly before it runs
  out, so long-lived scripts keep working.

Stored credentials also name the ``endpoint`` they were issued by (the API
endpoint ``login`` used): they are sent to that endpoint only, and when no
endpoint is configured it is the one commands use (session.py). A token in
``DODIL_TOKEN`` names none and goes wherever the command is pointed.
Credentials stored by an older dodil name none either; ``dodil login``
again binds them.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from dodil_cli.config import config_dir, write_private_file, yaml_problem
from dodil_cli.errors import CliError

TOKEN_ENV = "DODIL_TOKEN"
KIND_TOKEN = "token"
KIND_CLIENT = "client_credentials"
#: A cached token this close to its expiry is renewed first: a call that
#: starts with a token about to expire may well arrive with an expired one.
RENEW_MARGIN_MS = 60_000


def credentials_path() -> Path:
    """The path of credentials.yaml."""
    return config_dir() / "credentials.yaml"


@dataclass(frozen=True)
class Credentials:
    """Credentials of one kind and where they came from (``env`` or a path).

    For ``client_credentials`` the token is the cached access token and
    ``expires_at_ms`` its expiry (0 = unknown).
    """

    kind: str
    token: str
    source: str
    client_id: str = ""
    client_secret: str = ""
    expires_at_ms: int = 0
    #: An OAuth 2.0 token endpoint; empty = IssueToken on the API endpoint.
    token_url: str = ""
    #: The API endpoint (``host:port``) the credentials are for; empty:
    #: unbound (DODIL_TOKEN, or a file from an older dodil).
    endpoint: str = ""

    def needs_renewal(self, now_ms: int | None = None) -> bool:
        """Whether the cached token must be exchanged again before use."""
        if self.kind != KIND_CLIENT:
            return False
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        return not self.token or now_ms + RENEW_MARGIN_MS >= self.expires_at_ms

    def renewed(self, token: str, expires_in_seconds: int) -> Credentials:
        """These credentials with a freshly issued token."""
        expires_at = int(time.time() * 1000) + expires_in_seconds * 1000
        return replace(self, token=token, expires_at_ms=expires_at)

    def describe(self) -> dict[str, Any]:
        """What ``whoami`` shows: never a secret or a token itself."""
        info: dict[str, Any] = {"kind": self.kind, "source": self.source}
        if self.endpoint:
            info["endpoint"] = self.endpoint
        if self.client_id:
            info["client_id"] = self.client_id
        if self.token_url:
            info["token_url"] = self.token_url
        claims = jwt_claims(self.token)
        if claims:
            # A JWT's payload is readable by anyone holding it; showing the
            # subject and expiry helps tell tokens apart without a server call.
            for name in ("sub", "iss", "aud", "exp", "org", "organization"):
                if name in claims:
                    info[name] = claims[name]
        elif self.kind == KIND_TOKEN:
            info["token"] = redact(self.token)
        return info


def redact(token: str) -> str:
    """A token shortened so it can be recognised but not used."""
    return token[:4] + "…" if len(token) > 12 else "…"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The (unverified) payload of a JWT, or None when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def load_credentials() -> Credentials | None:
    """The credentials in force: DODIL_TOKEN, else the stored file, else None."""
    from_env = os.environ.get(TOKEN_ENV, "").strip()
    if from_env:
        return Credentials(KIND_TOKEN, from_env, f"env {TOKEN_ENV}")
    path = credentials_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        problem = yaml_problem(exc)
        raise CliError(f"{path} is damaged ({problem}): run 'dodil login' again") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} is damaged: run 'dodil login' again")
    kind = str(data.get("kind", KIND_TOKEN))
    endpoint = str(data.get("endpoint") or "")
    if kind == KIND_TOKEN:
        token = str(data.get("token") or "")
        return Credentials(kind, token, str(path), endpoint=endpoint) if token else None
    if kind == KIND_CLIENT:
        client_id, secret = str(data.get("client_id") or ""), str(data.get("client_secret") or "")
        if not client_id or not secret:
            raise CliError(f"{path} is damaged: run 'dodil login' again")
        return Credentials(
            kind,
            str(data.get("access_token") or ""),
            str(path),
            client_id=client_id,
            client_secret=secret,
            expires_at_ms=int(data.get("expires_at_ms") or 0),
            token_url=str(data.get("token_url") or ""),
            endpoint=endpoint,
        )
    raise CliError(f"{path} holds credentials of kind {kind!r}, unknown to this dodil")


def store(credentials: Credentials) -> Path:
    """Store credentials for later runs; returns the file written."""
    data: dict[str, Any] = {"kind": credentials.kind}
    if credentials.kind == KIND_CLIENT:
        data.update(
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            access_token=credentials.token,
            expires_at_ms=credentials.expires_at_ms,
        )
        if credentials.token_url:
            data["token_url"] = credentials.token_url
    else:
        data["token"] = credentials.token
    if credentials.endpoint:
        data["endpoint"] = credentials.endpoint
    path = credentials_path()
    write_private_file(path, yaml.safe_dump(data, sort_keys=False))
    return path


def store_token(token: str, endpoint: str) -> Path:
    """Store a bearer token for later runs against ``endpoint``; returns the
    file written."""
    return store(Credentials(KIND_TOKEN, token, "", endpoint=endpoint))


def forget() -> bool:
    """Delete stored credentials; returns whether there were any."""
    try:
        credentials_path().unlink()
    except FileNotFoundError:
        return False
    return True
