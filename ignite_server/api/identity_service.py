"""IdentityService: decode, call core/identity.py, encode."""

from __future__ import annotations

import grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity

from ignite_server.api.rpc_boundary import CALLER
from ignite_server.core.identity import Identity
from ignite_server.domain.identity import AccountRecord, OrganizationRecord

Context = grpc.aio.ServicerContext


def _org(record: OrganizationRecord) -> identity.Organization:
    return identity.Organization(
        name=record.name, display_name=record.display_name, created_at_ms=record.created_at_ms
    )


def _account(record: AccountRecord) -> identity.ServiceAccount:
    return identity.ServiceAccount(
        name=record.name,
        organization_name=record.organization,
        client_id=record.client_id,
        roles=list(record.roles),  # type: ignore[arg-type]
        created_at_ms=record.created_at_ms,
        description=record.description,
    )


class IdentityService:
    """The servicer of dodil.ignite.v1.IdentityService."""

    def __init__(self, identity_core: Identity) -> None:
        self._identity = identity_core

    async def IssueToken(
        self, request: identity.IssueTokenRequest, context: Context
    ) -> identity.IssueTokenResponse:
        token, ttl = await self._identity.issue_token(request.client_id, request.client_secret)
        return identity.IssueTokenResponse(access_token=token, token_type="Bearer", expires_in=ttl)

    async def GetJwks(
        self, request: identity.GetJwksRequest, context: Context
    ) -> identity.GetJwksResponse:
        return identity.GetJwksResponse(jwks_json=self._identity.authority.jwks())

    async def WhoAmI(
        self, request: identity.WhoAmIRequest, context: Context
    ) -> identity.WhoAmIResponse:
        caller = CALLER.get()
        return identity.WhoAmIResponse(
            subject=caller.subject,
            organization_name="" if caller.platform_admin else caller.organization,
            roles=sorted(int(r) for r in caller.roles),  # type: ignore[arg-type,misc]
            platform_admin=caller.platform_admin,
            expires_at_ms=caller.expires_at_ms,
        )

    async def CreateOrganization(
        self, request: identity.CreateOrganizationRequest, context: Context
    ) -> identity.CreateOrganizationResponse:
        record = await self._identity.create_organization(request.name, request.display_name)
        return identity.CreateOrganizationResponse(organization=_org(record))

    async def ListOrganizations(
        self, request: identity.ListOrganizationsRequest, context: Context
    ) -> identity.ListOrganizationsResponse:
        records = await self._identity.list_organizations(CALLER.get())
        return identity.ListOrganizationsResponse(organizations=[_org(r) for r in records])

    async def DeleteOrganization(
        self, request: identity.DeleteOrganizationRequest, context: Context
    ) -> identity.DeleteOrganizationResponse:
        await self._identity.delete_organization(request.organization_name)
        return identity.DeleteOrganizationResponse(organization_name=request.organization_name)

    async def CreateServiceAccount(
        self, request: identity.CreateServiceAccountRequest, context: Context
    ) -> identity.CreateServiceAccountResponse:
        account, secret = await self._identity.create_account(
            request.organization_name, request.name, list(request.roles), request.description
        )
        return identity.CreateServiceAccountResponse(
            service_account=_account(account), client_secret=secret
        )

    async def ListServiceAccounts(
        self, request: identity.ListServiceAccountsRequest, context: Context
    ) -> identity.ListServiceAccountsResponse:
        accounts = await self._identity.list_accounts(request.organization_name)
        return identity.ListServiceAccountsResponse(
            service_accounts=[_account(a) for a in accounts]
        )

    async def DeleteServiceAccount(
        self, request: identity.DeleteServiceAccountRequest, context: Context
    ) -> identity.DeleteServiceAccountResponse:
        account = await self._identity.delete_account(request.organization_name, request.name)
        return identity.DeleteServiceAccountResponse(client_id=account.client_id)

    async def GrantRole(
        self, request: identity.GrantRoleRequest, context: Context
    ) -> identity.GrantRoleResponse:
        account = await self._identity.change_role(
            request.organization_name, request.name, request.role, grant=True
        )
        return identity.GrantRoleResponse(service_account=_account(account))

    async def RevokeRole(
        self, request: identity.RevokeRoleRequest, context: Context
    ) -> identity.RevokeRoleResponse:
        account = await self._identity.change_role(
            request.organization_name, request.name, request.role, grant=False
        )
        return identity.RevokeRoleResponse(service_account=_account(account))

    async def RotateSigningKey(
        self, request: identity.RotateSigningKeyRequest, context: Context
    ) -> identity.RotateSigningKeyResponse:
        return identity.RotateSigningKeyResponse(key_id=await self._identity.rotate_key())
