"""Who may call what: one policy entry per RPC, checked at the boundary
before any handler runs.

Every method of every service must appear in POLICY (a test walks the
descriptors, so a new RPC without a rule fails the suite). Organization
scoping is uniform: a request's ``organization_name`` must be the caller's
own organization, and a foreign one is answered exactly like a missing
thing (NOT_FOUND with the same reason and message), so a token of one
tenant learns nothing about another. An organization that does not exist
is NOT_FOUND (ORGANIZATION_NOT_FOUND) for every caller who may look, the
platform administrator included (``require_organization``), before any
handler runs: nothing is created in, or listed from, a tenant that is not
there.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from google.protobuf import message

from ignite_server.core.validation import is_name
from ignite_server.domain.errors import NotFound, PermissionDenied, Unauthenticated
from ignite_server.domain.principal import Permission, Principal


class Access(enum.Enum):
    PUBLIC = "public"  # no token needed (token issuance, public keys)
    AUTHENTICATED = "authenticated"  # any valid token
    PLATFORM_ADMIN = "platform_admin"
    # Anonymous callers may Invoke apps marked allow_unauthenticated; the
    # servicer checks the app, everything else here needs apps.invoke.
    INVOKE = "invoke"


@dataclass(frozen=True)
class Rule:
    access: Access | Permission


POLICY: dict[str, Rule] = {
    # ComputeService
    "/dodil.ignite.v1.ComputeService/CreateApp": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/GetApp": Rule(Permission.APPS_READ),
    "/dodil.ignite.v1.ComputeService/ListApps": Rule(Permission.APPS_READ),
    "/dodil.ignite.v1.ComputeService/UpdateApp": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/DeleteApp": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/SaveDraft": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/GetDraft": Rule(Permission.APPS_READ),
    "/dodil.ignite.v1.ComputeService/CompileDraft": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/PublishDraft": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/ListVersions": Rule(Permission.APPS_READ),
    "/dodil.ignite.v1.ComputeService/GetVersion": Rule(Permission.APPS_READ),
    "/dodil.ignite.v1.ComputeService/RollbackApp": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/SetTraffic": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/TagVersion": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/UntagVersion": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/Invoke": Rule(Access.INVOKE),
    "/dodil.ignite.v1.ComputeService/InvokeAsync": Rule(Permission.APPS_INVOKE),
    # Says only what a tokenless caller may do, the same for a missing app
    # and a private one.
    "/dodil.ignite.v1.ComputeService/GetAnonymousAccess": Rule(Access.PUBLIC),
    "/dodil.ignite.v1.ComputeService/GetExecution": Rule(Permission.EXECUTIONS_READ),
    "/dodil.ignite.v1.ComputeService/ListExecutions": Rule(Permission.EXECUTIONS_READ),
    "/dodil.ignite.v1.ComputeService/CancelExecution": Rule(Permission.EXECUTIONS_CANCEL),
    "/dodil.ignite.v1.ComputeService/ReadLogs": Rule(Permission.EXECUTIONS_READ),
    # Secrets are part of deploying: whoever may deploy apps manages them.
    "/dodil.ignite.v1.ComputeService/CreateSecret": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/ListSecrets": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/DeleteSecret": Rule(Permission.APPS_WRITE),
    "/dodil.ignite.v1.ComputeService/ListHostConflicts": Rule(Access.PLATFORM_ADMIN),
    # IdentityService
    "/dodil.ignite.v1.IdentityService/IssueToken": Rule(Access.PUBLIC),
    "/dodil.ignite.v1.IdentityService/GetJwks": Rule(Access.PUBLIC),
    "/dodil.ignite.v1.IdentityService/WhoAmI": Rule(Access.AUTHENTICATED),
    "/dodil.ignite.v1.IdentityService/CreateOrganization": Rule(Access.PLATFORM_ADMIN),
    "/dodil.ignite.v1.IdentityService/ListOrganizations": Rule(Access.AUTHENTICATED),
    "/dodil.ignite.v1.IdentityService/DeleteOrganization": Rule(Access.PLATFORM_ADMIN),
    "/dodil.ignite.v1.IdentityService/CreateServiceAccount": Rule(Permission.ACCOUNTS_MANAGE),
    "/dodil.ignite.v1.IdentityService/ListServiceAccounts": Rule(Permission.ACCOUNTS_MANAGE),
    "/dodil.ignite.v1.IdentityService/DeleteServiceAccount": Rule(Permission.ACCOUNTS_MANAGE),
    "/dodil.ignite.v1.IdentityService/GrantRole": Rule(Permission.ACCOUNTS_MANAGE),
    "/dodil.ignite.v1.IdentityService/RevokeRole": Rule(Permission.ACCOUNTS_MANAGE),
    "/dodil.ignite.v1.IdentityService/RotateSigningKey": Rule(Access.PLATFORM_ADMIN),
}


def _field(request: message.Message, name: str) -> str:
    if name in request.DESCRIPTOR.fields_by_name:
        return str(getattr(request, name))
    return ""


def hidden(request: message.Message) -> NotFound:
    """The NOT_FOUND a missing thing would get, for a thing the caller may
    not know about."""
    org = _field(request, "organization_name")
    app = _field(request, "app_name")
    execution = _field(request, "execution_id")
    if app:
        return NotFound(
            f"app {org}/{app} not found",
            reason="APP_NOT_FOUND",
            metadata={"app_id": f"{org}/{app}"},
        )
    if execution:
        return NotFound(
            f"execution {execution} not found",
            reason="EXECUTION_NOT_FOUND",
            metadata={"execution_id": execution[:64]},
        )
    return NotFound(
        f"organization {org} not found",
        reason="ORGANIZATION_NOT_FOUND",
        metadata={"organization": org},
    )


def authorize(method: str, principal: Principal, request: message.Message) -> None:
    """Raise unless ``principal`` may call ``method`` with ``request``."""
    rule = POLICY.get(method)
    if rule is None:
        # Fail closed: an RPC nobody wrote a rule for is nobody's.
        raise PermissionDenied("this method has no access rule", reason="NO_ACCESS_RULE")
    if rule.access == Access.PUBLIC:
        return
    if principal.anonymous:
        if rule.access == Access.INVOKE:
            return  # the servicer admits only apps marked allow_unauthenticated
        raise Unauthenticated(
            "this call needs 'Authorization: Bearer <token>'", reason="TOKEN_REQUIRED"
        )
    if rule.access == Access.AUTHENTICATED or principal.platform_admin:
        return
    if rule.access == Access.PLATFORM_ADMIN:
        raise PermissionDenied(
            "only the platform administrator may do this", reason="PLATFORM_ADMIN_REQUIRED"
        )
    permission = Permission.APPS_INVOKE if rule.access == Access.INVOKE else rule.access
    assert isinstance(permission, Permission)
    organization = _field(request, "organization_name")
    if not principal.sees(organization):
        raise hidden(request)
    if not principal.can(permission, organization):
        raise PermissionDenied(
            f"the caller's roles do not grant {permission.value}",
            reason="PERMISSION_DENIED",
            metadata={"permission": permission.value},
        )


#: Whether an organization exists (core/organizations.py).
OrganizationExists = Callable[[str], Awaitable[bool]]


async def require_organization(
    method: str, principal: Principal, request: message.Message, exists: OrganizationExists
) -> None:
    """NOT_FOUND when the organization an organization-scoped call names does
    not exist. Names that are no DNS label are left to the handler's
    validation (INVALID_ARGUMENT); anonymous callers learn nothing here
    (Invoke answers them as for any app they may not call)."""
    rule = POLICY.get(method)
    if rule is None or (isinstance(rule.access, Access) and rule.access != Access.INVOKE):
        return
    if principal.anonymous:
        return
    organization = _field(request, "organization_name")
    if not is_name(organization) or await exists(organization):
        return
    raise NotFound(
        f"organization {organization} not found",
        reason="ORGANIZATION_NOT_FOUND",
        metadata={"organization": organization},
    )
