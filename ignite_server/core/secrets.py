"""Secrets: credentials stored once and named by image sources
(``registry_secret_ref``, ``git_secret_ref``). Their passwords go to builds
and image imports only; no RPC returns them and nothing logs them."""

from __future__ import annotations

import time

import structlog

from ignite_server.core.validation import check_name
from ignite_server.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from ignite_server.domain.models import Secret
from ignite_server.ports.image_builder import RegistryCredentials
from ignite_server.ports.secret_store import SecretStore

log = structlog.get_logger(__name__)

#: Longest user name and password accepted (registry tokens are a few KB).
MAX_USERNAME = 256
MAX_PASSWORD = 16 * 1024


class Secrets:
    def __init__(self, store: SecretStore) -> None:
        self._store = store

    async def create(
        self, organization: str, name: str, username: str, password: str, *, replace: bool
    ) -> Secret:
        check_name(organization, "organization_name")
        check_name(name, "name")
        if len(username) > MAX_USERNAME or any(c in username for c in "\r\n\0:"):
            raise InvalidArgument(
                f"username must be at most {MAX_USERNAME} characters, without ':' or newlines",
                reason="SECRET_USERNAME_INVALID",
                metadata={"field": "username"},
            )
        if not password or len(password) > MAX_PASSWORD or any(c in password for c in "\r\n\0"):
            raise InvalidArgument(
                f"password is required: 1-{MAX_PASSWORD} characters, no newlines",
                reason="SECRET_PASSWORD_INVALID",
                metadata={"field": "password"},
            )
        now = int(time.time() * 1000)
        stored = await self._store.put(
            Secret(organization, name, username, now, now), password, replace=replace
        )
        log.info("secret.stored", organization=organization, secret=name)
        return stored

    async def list(self, organization: str) -> list[Secret]:
        check_name(organization, "organization_name")
        return await self._store.list(organization)

    async def delete(self, organization: str, name: str) -> None:
        check_name(organization, "organization_name")
        check_name(name, "name")
        await self._store.delete(organization, name)
        log.info("secret.deleted", organization=organization, secret=name)

    async def credentials(self, organization: str, name: str) -> RegistryCredentials | None:
        """The credentials a build uses; None when ``name`` is empty.
        FAILED_PRECONDITION when the named secret does not exist."""
        if not name:
            return None
        try:
            username, password = await self._store.credentials(organization, name)
        except NotFound:
            raise FailedPrecondition(
                f"secret {name} does not exist; create it with `dodil ignite secret create {name}`",
                reason="SECRET_NOT_FOUND",
                metadata={"secret": name},
            ) from None
        return RegistryCredentials(username, password)
