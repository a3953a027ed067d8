"""Access tokens: RFC 9068 JWTs signed with Ed25519.

Validation is pure computation over keys held in memory: it pins the
algorithm (the token's own ``alg`` is never trusted: only EdDSA verifies),
requires ``typ: at+jwt``, a known ``kid``, and checks issuer, audience,
expiry and not-before with a small leeway. It never touches the database,
so a flood of bad tokens costs no more than the signature checks.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from ulid import ULID

from ignite_server.domain.errors import Unauthenticated

ALGORITHM = "EdDSA"
TOKEN_TYPE = "at+jwt"
#: Clock skew tolerated between the issuer and this server.
LEEWAY_SECS = 30
#: What every valid access token must carry.
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "nbf", "sub", "client_id", "jti")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def private_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(kid=str(ULID()), private=Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, kid: str, pem: str) -> SigningKey:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return cls(kid=kid, private=key)


def _reject(message: str, reason: str = "INVALID_TOKEN") -> Unauthenticated:
    return Unauthenticated(message, reason=reason)


@dataclass
class TokenAuthority:
    """Signs tokens with the current key; verifies with every live key."""

    issuer: str
    audience: str
    ttl_secs: int
    signing: SigningKey | None = None
    verifying: dict[str, Ed25519PublicKey] | None = None

    def use_keys(self, signing: SigningKey, verifying: list[SigningKey]) -> None:
        self.signing = signing
        self.verifying = {k.kid: k.public for k in verifying}

    def jwks(self) -> str:
        assert self.verifying is not None
        keys = []
        for kid, public in self.verifying.items():
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            keys.append(
                {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}
            )
        return json.dumps({"keys": keys})

    def issue(
        self, subject: str, organization: str, roles: list[int], platform_admin: bool
    ) -> tuple[str, int]:
        """A signed token and its lifetime in seconds."""
        assert self.signing is not None
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "client_id": subject,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_secs,
            "jti": str(ULID()),
            "org": organization,
            "roles": roles,
            "platform_admin": platform_admin,
        }
        token = jwt.encode(
            claims,
            self.signing.private,
            algorithm=ALGORITHM,
            headers={"kid": self.signing.kid, "typ": TOKEN_TYPE},
        )
        return token, self.ttl_secs

    def verify(self, token: str) -> dict[str, object]:
        """The claims of a valid token; Unauthenticated otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _reject("the access token is not a JWT", "MALFORMED_TOKEN") from None
        if str(header.get("typ", "")).lower() != TOKEN_TYPE:
            raise _reject("the token is not an access token (typ at+jwt)")
        if header.get("alg") != ALGORITHM:
            raise _reject("the token's signature algorithm is not accepted", "BAD_ALGORITHM")
        key = (self.verifying or {}).get(str(header.get("kid", "")))
        if key is None:
            raise _reject("the token was signed by an unknown key", "UNKNOWN_KEY")
        try:
            claims: dict[str, object] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError:
            raise _reject("the access token has expired", "TOKEN_EXPIRED") from None
        except jwt.ImmatureSignatureError:
            raise _reject("the access token is not valid yet", "TOKEN_NOT_YET_VALID") from None
        except jwt.InvalidAudienceError:
            raise _reject("the access token is for another audience", "WRONG_AUDIENCE") from None
        except jwt.InvalidIssuerError:
            raise _reject("the access token is from another issuer", "WRONG_ISSUER") from None
        except jwt.InvalidSignatureError:
            raise _reject("the access token's signature is invalid", "BAD_SIGNATURE") from None
        except jwt.PyJWTError as err:
            raise _reject(f"the access token is invalid: {err}") from None
        return claims
