"""The local platform's certificate authority, and the edge certificate it
signs for app hosts.

A local platform serves app hosts over TLS as well as plain HTTP, so an
app's ``https://`` URL works from a browser, from curl and from another
app. Nobody hands a laptop a publicly trusted certificate for
``*.ignite.localhost``, so the platform makes its own CA, once per state
folder (``<state>/tls/ca.crt``, its key 0600 beside it): a user trusts it
once (``curl --cacert``, the browser's or the system's store), image pods
trust it through the usual variables (docs/http-api.md). The edge
certificate (``edge.crt``/``edge.key``) is signed anew at every start, for
``*.<apps domain>``, the apps domain itself, ``localhost`` and the loopback
addresses, so a changed apps domain needs nothing but a restart.

Production serves certificates of a public CA instead (an operator's files,
or ACME through whatever terminates TLS in front of the gateway).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: How long the CA lives: a user trusts it once, so for long.
CA_DAYS = 3650
#: How long an edge certificate lives: it is signed again at every start;
#: below the 398 days browsers accept for a server certificate.
EDGE_DAYS = 397


@dataclass(frozen=True)
class EdgeCertificate:
    """The files a TLS edge needs, and the CA users and pods trust."""

    ca_cert: Path
    cert: Path
    key: Path


def ensure(folder: Path, apps_domain: str) -> EdgeCertificate:
    """The CA in ``folder`` (made the first time), and a fresh edge
    certificate for ``apps_domain`` signed by it."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_cert_path, ca_key_path = folder / "ca.crt", folder / "ca.key"
    if ca_cert_path.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca(ca_key)
        _write(ca_key_path, _key_pem(ca_key), 0o600)
        _write(ca_cert_path, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _edge(key, ca_cert, ca_key, apps_domain)
    cert_path, key_path = folder / "edge.crt", folder / "edge.key"
    _write(key_path, _key_pem(key), 0o600)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return EdgeCertificate(ca_cert_path, cert_path, key_path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _ca(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ignite local platform"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Ignite local CA {os.urandom(4).hex()}"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _edge(
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    apps_domain: str,
) -> x509.Certificate:
    domain = apps_domain.strip(".").lower()
    names: list[x509.GeneralName] = [
        x509.DNSName(f"*.{domain}"),
        x509.DNSName(domain),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=EDGE_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write whole or not at all, never readable beyond ``mode``."""
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(partial, mode)
    partial.replace(path)
