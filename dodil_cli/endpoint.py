"""Where the API is and whether to speak TLS to it.

An endpoint is ``host:port``; ``https://`` and ``http://`` prefixes are
accepted and decide TLS themselves. Without a prefix TLS is on, as for the
hosted API (``rpc.dodil.io:443``), except for loopback hosts (``localhost``,
``*.localhost``, ``127.0.0.0/8``, ``::1``), where a locally started platform
serves plaintext gRPC; ``--plaintext`` forces plaintext anywhere.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dodil_cli.errors import UsageError

_TLS_PORT = 443
#: The local platform's gRPC port, used when a loopback endpoint names none.
_LOCAL_PORT = 50051


@dataclass(frozen=True)
class Endpoint:
    """A parsed API endpoint."""

    host: str
    port: int
    #: True when the scheme said so (http://); None when left to the host.
    plaintext: bool | None = None

    @property
    def target(self) -> str:
        """The gRPC target string, with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def use_tls(self, force_plaintext: bool = False) -> bool:
        """Whether to connect with TLS."""
        if force_plaintext:
            return False
        if self.plaintext is not None:
            return not self.plaintext
        return not is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine: localhost, 127.x, ::1."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``[scheme://]host[:port]``; raise UsageError when malformed."""
    raw = text.strip()
    plaintext: bool | None = None
    lowered = raw.lower()
    for scheme, is_plain in (
        ("https://", False),
        ("http://", True),
        ("grpcs://", False),
        ("grpc://", True),
    ):
        if lowered.startswith(scheme):
            raw, plaintext = raw[len(scheme) :], is_plain
            break
    raw = raw.rstrip("/")
    if not raw or "/" in raw or " " in raw:
        raise UsageError(f"invalid endpoint {text!r}: expected host:port, e.g. rpc.dodil.io:443")
    host, port_text = _split_host_port(raw, text)
    if port_text is None:
        tls = (not plaintext) if plaintext is not None else not is_loopback(host)
        port = _TLS_PORT if tls else _LOCAL_PORT
    else:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"invalid port in endpoint {text!r}")
        port = int(port_text)
    return Endpoint(host, port, plaintext)


def _split_host_port(raw: str, original: str) -> tuple[str, str | None]:
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not host:
            raise UsageError(f"invalid endpoint {original!r}")
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise UsageError(f"invalid endpoint {original!r}")
        return host, rest[1:]
    if raw.count(":") > 1:
        # A bare IPv6 address without a port.
        return raw, None
    host, sep, port = raw.partition(":")
    if not host:
        raise UsageError(f"invalid endpoint {original!r}: no host")
    return host, (port if sep else None)
