"""Which browser origins may call ``/mcp``.

The MCP transport spec requires servers to validate ``Origin``: without it a
web page could reach an MCP server on the user's machine (DNS rebinding).
Requests without ``Origin`` (command-line and server-side clients, which
browsers cannot impersonate) are let through; the bearer token still
guards them.

Allowed by default: loopback origins (``localhost``, ``*.localhost``,
``127.0.0.0/8``, ``[::1]``) on any scheme and port. ``IGNITE_MCP_ALLOWED_ORIGINS``
replaces that list: comma-separated origins such as
``https://chat.example.com``, ``*`` for any, or ``loopback`` for the default
set (so ``loopback,https://chat.example.com`` adds one).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Environment variable with the allow-list.
ALLOWED_ORIGINS_ENV = "IGNITE_MCP_ALLOWED_ORIGINS"

#: The word in the allow-list that stands for every loopback origin.
LOOPBACK = "loopback"


@dataclass(frozen=True)
class OriginPolicy:
    """An allow-list of origins (normalized ``scheme://host[:port]``)."""

    exact: frozenset[str]
    loopback: bool
    any_origin: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OriginPolicy:
        """The policy ``IGNITE_MCP_ALLOWED_ORIGINS`` describes (loopback when unset)."""
        env = os.environ if env is None else env
        raw = env.get(ALLOWED_ORIGINS_ENV, "").strip()
        if not raw:
            return cls(frozenset(), loopback=True)
        items = [item.strip() for item in raw.split(",") if item.strip()]
        return cls(
            frozenset(_normalize(item) for item in items if item not in (LOOPBACK, "*")),
            loopback=LOOPBACK in items,
            any_origin="*" in items,
        )

    def allows(self, origin: str | None) -> bool:
        """Whether a request with this ``Origin`` header may proceed."""
        if origin is None:
            return True
        if self.any_origin:
            return True
        # "null" (sandboxed frames, file: pages) is never a trusted origin.
        if origin == "null":
            return False
        if _normalize(origin) in self.exact:
            return True
        return self.loopback and _is_loopback(origin)


def _normalize(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def _is_loopback(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
