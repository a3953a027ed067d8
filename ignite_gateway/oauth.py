"""The OAuth 2.0 token endpoint (RFC 6749 §4.4, client credentials) and
the JWKS endpoint (RFC 7517 §5), in the shapes OAuth and JWT libraries read.

An RPC whose response type is ``IssueTokenResponse`` is served the way OAuth
clients expect a token endpoint to behave, not in the proto3 JSON mapping:

* the request is ``application/x-www-form-urlencoded``
  (``grant_type=client_credentials&client_id=...&client_secret=...``) or the
  usual JSON; the client may authenticate with HTTP Basic instead
  (``client_secret_basic``, §2.3.1), whose credentials are consumed here and
  never passed on as a bearer credential;
* the response keeps the OAuth field names and types
  (``{"access_token": ..., "token_type": "Bearer", "expires_in": 3600}``)
  with ``Cache-Control: no-store`` (§5.1);
* errors are ``{"error": "invalid_client", "error_description": ...}``
  (§5.2): 401 for bad client credentials, 400 for a malformed request.

An RPC whose response type is ``GetJwksResponse`` answers with the key set
document itself (``{"keys": [...]}``), not wrapped in a message, so a
verifier can be pointed at its URL.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from ignite_gateway.errors import GatewayError, error_reason
from ignite_gateway.json_body import MalformedJson, parse_json

#: Response type that marks an RPC as the token endpoint.
TOKEN_RESPONSE_TYPE = "dodil.ignite.v1.IssueTokenResponse"

#: Response type that marks an RPC as the JWKS endpoint.
JWKS_RESPONSE_TYPE = "dodil.ignite.v1.GetJwksResponse"

#: How long verifiers may cache the key set: short, since keys rotate (a
#: rotated-out key stays published for a while, so a stale copy still works).
JWKS_MAX_AGE_S = 300

#: The only grant this endpoint issues tokens for.
CLIENT_CREDENTIALS = "client_credentials"

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(GatewayError):
    """An error in the shape RFC 6749 §5.2 prescribes."""

    def __init__(self, http_code: int, error: str, description: str) -> None:
        headers = dict(_NO_STORE)
        if http_code == 401:
            headers["WWW-Authenticate"] = 'Basic realm="ignite"'
        super().__init__(http_code, error, error.upper(), description, headers=headers)
        self.error = error

    def body(self) -> dict[str, Any]:
        """``{"error": ..., "error_description": ...}``."""
        return {"error": self.error, "error_description": self.message}


def is_token_endpoint(method: MethodDescriptor) -> bool:
    """Whether ``method`` issues OAuth access tokens."""
    return bool(method.output_type.full_name == TOKEN_RESPONSE_TYPE)


def is_jwks_endpoint(method: MethodDescriptor) -> bool:
    """Whether ``method`` publishes the token-verification key set."""
    return bool(method.output_type.full_name == JWKS_RESPONSE_TYPE)


def jwks_response(reply: Message) -> tuple[bytes, dict[str, str]]:
    """The key set document carried by a GetJwksResponse, with its headers."""
    document = reply.jwks_json.encode()  # type: ignore[attr-defined]
    return document, {"Cache-Control": f"public, max-age={JWKS_MAX_AGE_S}"}


def token_request(
    request_type: type[Message], content_type: str, body: bytes, authorization: str | None
) -> Message:
    """The request message from a form or JSON body and optional Basic auth."""
    is_form = content_type == "application/x-www-form-urlencoded"
    fields = _form(body) if is_form else _json(body)
    if is_form and "grant_type" not in fields:
        raise OAuthError(400, "invalid_request", "grant_type is required")
    grant = fields.pop("grant_type", CLIENT_CREDENTIALS)
    if grant != CLIENT_CREDENTIALS:
        raise OAuthError(400, "unsupported_grant_type", f"only {CLIENT_CREDENTIALS} is supported")
    if authorization and authorization.lower().startswith("basic "):
        client_id, client_secret = _basic(authorization)
        if fields.get("client_secret") or fields.get("clientSecret"):
            raise OAuthError(
                400, "invalid_request", "send client credentials one way, not two (§2.3)"
            )
        fields["client_id"], fields["client_secret"] = client_id, client_secret
    message = request_type()
    try:
        json_format.ParseDict(fields, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OAuthError(400, "invalid_request", str(exc)) from None
    return message


def token_response(reply: Message) -> tuple[bytes, dict[str, str]]:
    """The OAuth token response body (proto field names, numbers as numbers)."""
    document = json_format.MessageToDict(reply, preserving_proto_field_name=True)
    for name, value in document.items():
        if name == "expires_in":
            document[name] = int(value)
    return json.dumps(document, separators=(",", ":")).encode(), dict(_NO_STORE)


def token_error(error: grpc.aio.AioRpcError) -> OAuthError | None:
    """The OAuth error for a failed IssueToken call, None when it is not one
    of the client's (a server failure keeps the usual error shape)."""
    code = error.code()
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return OAuthError(401, "invalid_client", error.details() or "invalid client credentials")
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return OAuthError(400, "invalid_request", error.details() or error_reason(error))
    if code is grpc.StatusCode.PERMISSION_DENIED:
        return OAuthError(400, "unauthorized_client", error.details() or "")
    return None


def _form(body: bytes) -> dict[str, Any]:
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise OAuthError(400, "invalid_request", "the form body is not ASCII") from None
    fields: dict[str, Any] = {}
    for name, value in pairs:
        if name in fields:
            # §3.2: parameters must not be included more than once.
            raise OAuthError(400, "invalid_request", f"{name} is given more than once")
        fields[name] = value
    return fields


def _json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        document = parse_json(body)
    except MalformedJson as exc:
        message = f"the body is neither a form nor JSON: {exc}"
        raise OAuthError(400, "invalid_request", message) from None
    if not isinstance(document, dict):
        raise OAuthError(400, "invalid_request", "the body must be a JSON object")
    return document


def _basic(authorization: str) -> tuple[str, str]:
    # §2.3.1: id and secret are form-urlencoded, joined by ":", base64ed.
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(401, "invalid_client", "malformed Basic credentials") from None
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        raise OAuthError(401, "invalid_client", "malformed Basic credentials")
    return unquote_plus(client_id), unquote_plus(client_secret)
