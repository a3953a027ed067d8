"""Fetching an access token from an OAuth 2.0 token endpoint (RFC 6749 §4.4).

Used when ``dodil login --client-id`` is given a ``--token-url``: the client
authenticates with HTTP Basic (``client_secret_basic``, the method every
authorization server must support) and asks for ``grant_type=client_credentials``.
Without a token URL the same exchange runs over gRPC
(``IdentityService.IssueToken`` on the API endpoint).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import grpc

from dodil_cli import __version__
from dodil_cli.errors import ApiError, CliError

#: Seconds to wait for the token endpoint.
TIMEOUT_SECONDS = 30.0

# OAuth error codes (§5.2) and the status whose exit code fits each.
_STATUS_BY_ERROR = {
    "invalid_client": grpc.StatusCode.UNAUTHENTICATED,
    "unauthorized_client": grpc.StatusCode.PERMISSION_DENIED,
    "invalid_request": grpc.StatusCode.INVALID_ARGUMENT,
    "invalid_scope": grpc.StatusCode.INVALID_ARGUMENT,
    "unsupported_grant_type": grpc.StatusCode.INVALID_ARGUMENT,
}


@dataclass(frozen=True)
class IssuedToken:
    """An access token and its lifetime in seconds."""

    access_token: str
    expires_in: int


def request_token(token_url: str, client_id: str, client_secret: str) -> IssuedToken:
    """Exchange client credentials for an access token at ``token_url``."""
    if urllib.parse.urlsplit(token_url).scheme not in ("https", "http"):
        raise CliError(f"invalid token URL {token_url!r}: expected https://...", exit_code=2)
    # §2.3.1: id and secret are form-encoded before they are joined for Basic.
    pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
    request = urllib.request.Request(
        token_url,
        data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": f"dodil-cli/{__version__}",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            document = _json(response.read())
    except urllib.error.HTTPError as exc:
        raise _oauth_error(exc) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(
            grpc.StatusCode.UNAVAILABLE, f"cannot reach the token endpoint {token_url}: {reason}"
        ) from None
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise CliError(f"the token endpoint {token_url} answered without an access_token")
    expires_in = document.get("expires_in")
    return IssuedToken(token, int(expires_in) if isinstance(expires_in, int | float) else 0)


def _json(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise CliError("the token endpoint did not answer with a JSON object")
    return document


def _oauth_error(exc: urllib.error.HTTPError) -> CliError:
    try:
        document = json.loads(exc.read())
    except ValueError:
        document = {}
    error = str(document.get("error", "")) if isinstance(document, dict) else ""
    description = str(document.get("error_description", "")) if isinstance(document, dict) else ""
    status = _STATUS_BY_ERROR.get(
        error, grpc.StatusCode.UNAUTHENTICATED if exc.code == 401 else grpc.StatusCode.UNKNOWN
    )
    return ApiError(status, description or f"HTTP {exc.code}", reason=error)
