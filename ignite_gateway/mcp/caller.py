"""Who is calling ``/mcp``: the server's answer to ``WhoAmI`` for the token.

The gateway never reads tokens itself; it forwards ``Authorization`` and lets
the server validate it, exactly as for every other API call. A token of an
organization sees that organization's tools. A token without one (the
platform admin, or anyone when the server runs with authentication off)
names the organization with ``/mcp?organization=<org>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one MCP request."""

    #: The token's subject (its client id); sessions are bound to it.
    subject: str
    #: The caller's own organization, "" for a platform admin.
    organization: str
    #: True for the platform administrator.
    platform_admin: bool


async def who_am_i(
    channel: grpc.aio.Channel, metadata: Sequence[tuple[str, str]], timeout_s: float
) -> Caller:
    """Ask the server who the request's token belongs to.

    Raises ``grpc.aio.AioRpcError`` (UNAUTHENTICATED for a missing or bad
    token) like any call.
    """
    stub = identity_grpc.IdentityServiceStub(channel)
    reply = await stub.WhoAmI(identity.WhoAmIRequest(), metadata=tuple(metadata), timeout=timeout_s)
    return Caller(
        subject=reply.subject,
        organization=reply.organization_name,
        platform_admin=reply.platform_admin,
    )
