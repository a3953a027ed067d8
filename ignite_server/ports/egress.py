"""The port for the server's own outbound connections on a user's behalf:
the registries ``--image`` names and the repositories ``--git-url``
names. Before any such connection the destination is checked, so a user
cannot make the server (or its git sandbox) reach this machine's loopback
services, the link-local metadata service or a private network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Destination:
    """A checked destination: the host as named, its port, and the addresses
    it resolved to when checked (what a connection may be pinned to)."""

    host: str
    port: int
    addresses: tuple[str, ...]


class Egress(Protocol):
    async def check(self, host: str, default_port: int, what: str) -> Destination:
        """``host`` (``name[:port]``) resolved and allowed; FailedPrecondition
        (DESTINATION_NOT_ALLOWED, HOST_UNRESOLVED) when it is not. ``what``
        names the field for the message (``--image``, ``--git-url``)."""
        ...
