"""Hosts as image references and git URLs name them, and as secrets and the
egress allow-list record them: ``host`` or ``host:port``, lower-case, an
IPv6 address in brackets.

One spelling everywhere is what makes "is this secret for that host?" an
exact comparison: ``ghcr.io`` is not ``ghcr.io:443``, and a reference with
no registry is Docker Hub's, ``docker.io``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: The registry of image references that name none.
DOCKER_HUB = "docker.io"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?")
#: The longest host accepted (a DNS name is at most 253 characters).
MAX_HOST = 260
#: The port a URL scheme means when it names none.
DEFAULT_PORTS = {"https": 443, "http": 80, "git": 9418}


def normalized(text: str) -> str | None:
    """``text`` as a host (``host`` or ``host:port``), lower-case; None when
    it is not one."""
    host = text.strip().lower()
    found = _HOST.fullmatch(host)
    if len(host) > MAX_HOST or found is None:
        return None
    port = found.group("port")
    if port is not None and not 0 < int(port) < 65536:
        return None
    return host


def split_registry(name: str) -> tuple[str, str]:
    """(registry as written or "", the rest) of a reference's name: its first
    component is a registry when it has a ``.`` or a ``:`` or is
    ``localhost`` (distribution's rule)."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", name


def registry_host(reference: str) -> str:
    """The registry an image reference names, lower-case; Docker Hub's when
    it names none."""
    host, _ = split_registry(reference.strip().removeprefix("docker://"))
    return host.lower() or DOCKER_HUB


def url_host(url: str) -> str:
    """``host[:port]`` of a URL, without user information."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


def split(host: str, default_port: int) -> tuple[str, int]:
    """(name or address without brackets, port) of ``host[:port]``."""
    if host.startswith("["):
        address, _, rest = host[1:].partition("]")
        return address, int(rest[1:]) if rest.startswith(":") else default_port
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        return name, int(port)
    return host, default_port
