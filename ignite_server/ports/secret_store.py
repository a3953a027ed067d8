"""The port for stored credentials (``CreateSecret``): what image sources
name as ``registry_secret_ref`` or ``git_secret_ref``.

Implementations keep passwords encrypted at rest and hand them out only
through ``password`` (to a build, never to a caller).
"""

from __future__ import annotations

from typing import Protocol

from ignite_server.domain.models import Secret


class SecretStore(Protocol):
    async def put(self, secret: Secret, password: str, *, replace: bool) -> Secret:
        """Store ``secret``; AlreadyExists unless ``replace``."""
        ...

    async def list(self, organization: str) -> list[Secret]: ...

    async def delete(self, organization: str, name: str) -> None:
        """NotFound when there is no such secret."""
        ...

    async def credentials(self, organization: str, name: str) -> tuple[Secret, str]:
        """(the secret, its password); NotFound when there is no such secret."""
        ...
