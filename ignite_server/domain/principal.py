"""Who is calling, and what each role may do."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.IntEnum):
    """Mirrors dodil.ignite.v1.Role."""

    UNSPECIFIED = 0
    ADMIN = 1
    DEVELOPER = 2
    INVOKER = 3
    VIEWER = 4


class Permission(enum.StrEnum):
    APPS_READ = "apps.read"
    APPS_WRITE = "apps.write"  # includes reading env values
    APPS_INVOKE = "apps.invoke"
    EXECUTIONS_READ = "executions.read"  # executions and logs
    EXECUTIONS_CANCEL = "executions.cancel"
    ACCOUNTS_MANAGE = "accounts.manage"


_VIEW = {Permission.APPS_READ, Permission.EXECUTIONS_READ}
_INVOKE = {Permission.APPS_INVOKE, Permission.EXECUTIONS_CANCEL} | _VIEW
_DEVELOP = {Permission.APPS_WRITE} | _INVOKE

#: What each role grants; roles add up.
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_VIEW),
    Role.INVOKER: frozenset(_INVOKE),
    Role.DEVELOPER: frozenset(_DEVELOP),
    Role.ADMIN: frozenset(_DEVELOP | {Permission.ACCOUNTS_MANAGE}),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (or the anonymous one)."""

    subject: str
    organization: str
    roles: frozenset[Role]
    platform_admin: bool = False
    expires_at_ms: int = 0

    @property
    def anonymous(self) -> bool:
        return not self.subject

    def can(self, permission: Permission, organization: str) -> bool:
        if self.platform_admin:
            return True
        if organization != self.organization:
            return False
        return any(permission in GRANTS.get(role, frozenset()) for role in self.roles)

    def sees(self, organization: str) -> bool:
        """Whether anything of ``organization`` exists for this caller."""
        return self.platform_admin or (bool(self.subject) and organization == self.organization)


ANONYMOUS = Principal(subject="", organization="", roles=frozenset())
#: The caller when the server runs with --auth off (local development).
LOCAL_ADMIN = Principal(subject="local", organization="", roles=frozenset(), platform_admin=True)
