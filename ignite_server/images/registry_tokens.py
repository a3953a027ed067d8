"""Who may do what in the embedded registry: the token service of the
Docker registry token specification, which distribution (the registry the
platform runs, registry.py) trusts for authentication.

**Why tokens.** Distribution offers three kinds of authentication: none,
htpasswd (one list of users, each of whom may do anything to any
repository) and tokens. Only tokens carry scopes: a token names the
repositories it is for and the actions allowed on each (``pull``,
``push``, ``delete``), signed by a key the registry was told to trust
(``auth.token.rootcertbundle``). skopeo, buildah and containerd all speak
the protocol: the registry answers 401 with the realm (this service's
URL), the client asks there with its credentials for the scope it needs,
and sends the token back. The alternative, an authorizing proxy in front
of a registry on a private unix socket, would put a second HTTP hop into
every pull and push, and reimplement in Python what the registry already
checks on every request.

**Accounts.** There are two kinds, and no anonymous access at all:

- ``ignite-server``: the server itself, the only one that may push and
  delete (any repository, and the catalog). Its password is random, kept in
  ``<state>/registry/auth/credentials.json`` (0600, root's), and handed only
  to the server's own skopeo, through an auth file.
- ``pull@<org>``: read-only access to ``ignite/<org>/…`` and nothing else,
  for pulling an organization's images: local image pods (the server pulls
  on their behalf), Kubernetes nodes (an ``imagePullSecret`` per
  organization). Its password is an HMAC of the organization's name under
  a key in the same file, so it needs no storage and every organization's
  differs; another organization's repositories are refused to it by the
  registry itself.

Build steps get no credentials at all: nothing of this reaches a
Dockerfile's ``RUN`` (buildah runs without an auth file, and pushing is
skopeo's job outside the build's namespace).

**Tokens** are ES256 JWTs (P-256; distribution verifies through libtrust,
which has no EdDSA), with the key's self-signed certificate in the ``x5c``
header, valid for TOKEN_TTL_SECS and granting exactly the requested
actions the account may have; what it may not is left out, which the
registry answers with 401/403 like any denial.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ignite_server.ports.image_builder import RegistryCredentials

#: The registry's ``auth.token.service`` and the tokens' audience.
SERVICE = "ignite-registry"
#: The tokens' issuer (``auth.token.issuer``).
ISSUER = "ignite-registry-tokens"
#: The server's own account.
SERVER_ACCOUNT = "ignite-server"
#: Organizations' pull accounts are ``pull@<org>``.
PULL_PREFIX = "pull@"
#: How long a token is good for: a pull or a push asks again after this.
TOKEN_TTL_SECS = 300
#: Clock differences between this server and the registry tolerated.
NOT_BEFORE_LEEWAY_SECS = 10
#: Actions each kind of account may be granted.
SERVER_ACTIONS = frozenset({"pull", "push", "delete", "*"})
PULL_ACTIONS = frozenset({"pull"})


@dataclass(frozen=True)
class Account:
    """Who a token is for: the server, or one organization's puller."""

    name: str
    organization: str = ""

    @property
    def is_server(self) -> bool:
        return self.name == SERVER_ACCOUNT


@dataclass(frozen=True)
class Scope:
    """One ``type:name:actions`` scope of a token request."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Scope | None:
        kind, _, rest = text.partition(":")
        name, _, actions = rest.rpartition(":")
        if not kind or not name:
            return None
        return cls(kind, name, tuple(a for a in actions.split(",") if a))


class RegistryTokens:
    """The token authority: its key and certificate, the accounts' secrets,
    and what each account is granted. Files live in ``folder`` (made on
    first use, kept across restarts)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        self._key = self._load_key()
        self.certificate_path = folder / "certificate.pem"
        certificate = self._load_certificate()
        self._x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
        stored = self._load_secrets()
        self._server_password = stored["server_password"]
        self._pull_key = bytes.fromhex(stored["pull_key"])

    # --- credentials -------------------------------------------------------

    def server_credentials(self) -> RegistryCredentials:
        """The server's own: push, pull and delete anywhere."""
        return RegistryCredentials(SERVER_ACCOUNT, self._server_password)

    def pull_credentials(self, organization: str) -> RegistryCredentials:
        """``organization``'s read-only ones: pull from ``ignite/<org>/…``."""
        return RegistryCredentials(PULL_PREFIX + organization, self._pull_password(organization))

    def _pull_password(self, organization: str) -> str:
        digest = hmac.new(self._pull_key, organization.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def authenticate(self, username: str, password: str) -> Account | None:
        """The account these credentials are, or None (compared in constant
        time, also for unknown user names)."""
        if username == SERVER_ACCOUNT:
            expected, account = self._server_password, Account(SERVER_ACCOUNT)
        elif username.startswith(PULL_PREFIX) and username[len(PULL_PREFIX) :]:
            organization = username[len(PULL_PREFIX) :]
            expected, account = self._pull_password(organization), Account(username, organization)
        else:
            expected, account = secrets.token_urlsafe(32), None
        if hmac.compare_digest(password.encode(), expected.encode()):
            return account
        return None

    # --- tokens --------------------------------------------------------------

    def grant(self, account: Account, scopes: Iterable[Scope]) -> list[dict[str, object]]:
        """The ``access`` claim: of each requested scope, what the account may."""
        access: list[dict[str, object]] = []
        for scope in scopes:
            allowed = self._allowed(account, scope)
            actions = [a for a in scope.actions if a in allowed]
            if actions:
                access.append({"type": scope.type, "name": scope.name, "actions": actions})
        return access

    @staticmethod
    def _allowed(account: Account, scope: Scope) -> frozenset[str]:
        if account.is_server:
            if scope.type == "repository" or (scope.type, scope.name) == ("registry", "catalog"):
                return SERVER_ACTIONS
            return frozenset()
        prefix = f"ignite/{account.organization}/"
        if scope.type == "repository" and scope.name.startswith(prefix):
            return PULL_ACTIONS
        return frozenset()

    def token(self, account: Account, access: list[dict[str, object]]) -> str:
        """A signed token for ``account`` granting ``access``."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": account.name,
            "aud": SERVICE,
            "exp": now + TOKEN_TTL_SECS,
            "nbf": now - NOT_BEFORE_LEEWAY_SECS,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"x5c": [self._x5c]})

    def server_token(self, repository: str, actions: Iterable[str]) -> str:
        """A token for the server's own HTTP calls to the registry (reading
        manifests, deleting them), minted without a round trip."""
        account = Account(SERVER_ACCOUNT)
        scope = Scope("repository", repository, tuple(actions))
        return self.token(account, self.grant(account, [scope]))

    # --- files -----------------------------------------------------------------

    def _load_key(self) -> ec.EllipticCurvePrivateKey:
        path = self.folder / "signing-key.pem"
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except FileNotFoundError:
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(
                path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            return key
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        return loaded

    def _load_certificate(self) -> x509.Certificate:
        """The key's self-signed certificate: the registry's root bundle."""
        path = self.folder / "certificate.pem"
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
            if certificate.public_key() == self._key.public_key():
                return certificate
        except FileNotFoundError:
            pass
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        now = datetime.datetime.now(datetime.UTC)
        usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True,
            crl_sign=False, encipher_only=False, decipher_only=False,
        )  # fmt: skip
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .sign(self._key, hashes.SHA256())
        )
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return certificate

    def _load_secrets(self) -> dict[str, str]:
        path = self.folder / "credentials.json"
        try:
            stored: dict[str, str] = json.loads(path.read_text())
            return stored
        except FileNotFoundError:
            pass
        made = {"server_password": secrets.token_urlsafe(32), "pull_key": secrets.token_hex(32)}
        _write_private(path, json.dumps(made).encode())
        return made


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner may read (0600 from its first byte)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)


class PlatformRegistryAccess:
    """RegistryAccess (ports/image_builder.py) of the platform's registry:
    with ``tokens`` (the embedded registry), each organization pulls with
    its own read-only account; without (an external registry), the nodes'
    own configuration decides."""

    def __init__(self, host: str, tokens: RegistryTokens | None) -> None:
        self.host = host
        self._tokens = tokens

    def pull_credentials(self, organization: str) -> RegistryCredentials | None:
        return self._tokens.pull_credentials(organization) if self._tokens else None
