"""Access tokens (core/tokens.py): RFC 9068 JWTs signed with Ed25519, and
every way a token that should not pass is refused, each with its reason."""

from __future__ import annotations

import json
import time

import jwt
import pytest

from ignite_server.core.tokens import ALGORITHM, LEEWAY_SECS, SigningKey, TokenAuthority
from ignite_server.domain.errors import Unauthenticated


def _authority(ttl_secs: int = 600, **kw: str) -> TokenAuthority:
    authority = TokenAuthority(kw.get("issuer", "ignite"), kw.get("audience", "ignite"), ttl_secs)
    key = SigningKey.generate()
    authority.use_keys(key, [key])
    return authority


def _refused(authority: TokenAuthority, token: str) -> str:
    with pytest.raises(Unauthenticated) as refused:
        authority.verify(token)
    return refused.value.reason


def test_an_issued_token_verifies_with_its_claims() -> None:
    authority = _authority()
    token, ttl = authority.issue("ci@acme-corp", "acme-corp", [2], False)
    claims = authority.verify(token)
    assert ttl == 600
    assert (claims["sub"], claims["org"], claims["roles"]) == ("ci@acme-corp", "acme-corp", [2])
    assert claims["platform_admin"] is False
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


def test_a_key_rotation_keeps_old_tokens_valid_while_the_old_key_is_kept() -> None:
    authority = _authority()
    old_token, _ = authority.issue("a", "acme", [], False)
    old_key, new_key = authority.signing, SigningKey.generate()
    assert old_key is not None
    authority.use_keys(new_key, [new_key, old_key])
    assert authority.verify(old_token)["sub"] == "a"
    authority.use_keys(new_key, [new_key])
    assert _refused(authority, old_token) == "UNKNOWN_KEY"
    assert {k["kid"] for k in json.loads(authority.jwks())["keys"]} == {new_key.kid}


def test_an_expired_token_is_refused_past_the_leeway() -> None:
    within = _authority(ttl_secs=-(LEEWAY_SECS - 5))
    token, _ = within.issue("a", "acme", [], False)
    assert within.verify(token)["sub"] == "a"
    past = _authority(ttl_secs=-(LEEWAY_SECS + 5))
    token, _ = past.issue("a", "acme", [], False)
    assert _refused(past, token) == "TOKEN_EXPIRED"


@pytest.mark.parametrize(
    ("issuer", "audience", "reason"),
    [("someone-else", "ignite", "WRONG_ISSUER"), ("ignite", "another-api", "WRONG_AUDIENCE")],
)
def test_a_token_for_another_issuer_or_audience_is_refused(
    issuer: str, audience: str, reason: str
) -> None:
    theirs = _authority(issuer=issuer, audience=audience)
    ours = _authority()
    assert ours.signing is not None and theirs.signing is not None
    # Same key, so only the claims differ.
    theirs.use_keys(ours.signing, [ours.signing])
    token, _ = theirs.issue("a", "acme", [], False)
    assert _refused(ours, token) == reason


def test_a_forged_signature_or_algorithm_or_type_is_refused() -> None:
    authority = _authority()
    token, _ = authority.issue("a", "acme", [], False)
    assert authority.verify(token)
    # Claims and key id as ours, signed by a key that is not.
    head, payload, _ = token.split(".")
    impostor = SigningKey.generate()
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        impostor.private,
        algorithm=ALGORITHM,
        headers=jwt.get_unverified_header(token),
    )
    assert forged.split(".")[:2] == [head, payload]
    assert _refused(authority, forged) == "BAD_SIGNATURE"
    assert authority.signing is not None
    kid = authority.signing.kid
    hs256 = jwt.encode(
        {"sub": "a"}, "s" * 32, algorithm="HS256", headers={"kid": kid, "typ": "at+jwt"}
    )
    assert _refused(authority, hs256) == "BAD_ALGORITHM"
    id_token = jwt.encode(
        {"sub": "a"}, authority.signing.private, algorithm=ALGORITHM, headers={"kid": kid}
    )
    assert _refused(authority, id_token) == "INVALID_TOKEN"
    assert _refused(authority, "not-a-jwt") == "MALFORMED_TOKEN"


def test_a_token_missing_a_required_claim_is_refused() -> None:
    authority = _authority()
    assert authority.signing is not None
    now = int(time.time())
    claims = {"iss": "ignite", "aud": "ignite", "exp": now + 60, "iat": now, "nbf": now}
    token = jwt.encode(
        claims,
        authority.signing.private,
        algorithm=ALGORITHM,
        headers={"kid": authority.signing.kid, "typ": "at+jwt"},
    )
    assert _refused(authority, token) == "INVALID_TOKEN"
