"""Secrets: credentials stored once and named by image sources
(``registry_secret_ref``, ``git_secret_ref``). Their passwords go to builds
and image imports only; no RPC returns them and nothing logs them.

A secret records the hosts it is for when it is made (by someone who may
manage secrets); ``credentials`` hands it out for one of those hosts only.
Otherwise anyone who may deploy could name the organization's registry
secret together with an image or a repository on a host of their own and
receive the password there.
"""

from __future__ import annotations

import time

import structlog

from ignite_server.core.validation import check_name
from ignite_server.domain import hosts
from ignite_server.domain.errors import FailedPrecondition, InvalidArgument, NotFound
from ignite_server.domain.models import Secret
from ignite_server.ports.image_builder import RegistryCredentials
from ignite_server.ports.secret_store import SecretStore

log = structlog.get_logger(__name__)

#: Longest user name and password accepted (registry tokens are a few KB).
MAX_USERNAME = 256
MAX_PASSWORD = 16 * 1024
#: Most hosts one secret is for (a registry with a mirror or two).
MAX_HOSTS = 16


def check_hosts(given: list[str]) -> tuple[str, ...]:
    """The secret's hosts, spelled as image references and git URLs spell
    them; at least one."""
    if not given:
        raise InvalidArgument(
            "hosts is required: the registry or git hosts the secret is for"
            " (--host ghcr.io, --host git.example.com:8443); it is sent to no other host",
            reason="SECRET_HOSTS_REQUIRED",
            metadata={"field": "hosts"},
        )
    if len(given) > MAX_HOSTS:
        raise InvalidArgument(
            f"a secret is for at most {MAX_HOSTS} hosts",
            reason="SECRET_HOSTS_INVALID",
            metadata={"field": "hosts"},
        )
    checked: list[str] = []
    for text in given:
        host = hosts.normalized(text)
        if host is None:
            raise InvalidArgument(
                f"{text[:80]!r} is not a host: name a registry or git host as"
                " 'host' or 'host:port', without scheme or path",
                reason="SECRET_HOSTS_INVALID",
                metadata={"field": "hosts"},
            )
        if host not in checked:
            checked.append(host)
    return tuple(checked)


class Secrets:
    def __init__(self, store: SecretStore) -> None:
        self._store = store

    async def create(
        self,
        organization: str,
        name: str,
        username: str,
        password: str,
        *,
        replace: bool,
        hosts: list[str],
    ) -> Secret:
        check_name(organization, "organization_name")
        check_name(name, "name")
        bound = check_hosts(hosts)
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
            Secret(organization, name, username, now, now, bound), password, replace=replace
        )
        log.info("secret.stored", organization=organization, secret=name, hosts=",".join(bound))
        return stored

    async def list(self, organization: str) -> list[Secret]:
        check_name(organization, "organization_name")
        return await self._store.list(organization)

    async def delete(self, organization: str, name: str) -> None:
        check_name(organization, "organization_name")
        check_name(name, "name")
        await self._store.delete(organization, name)
        log.info("secret.deleted", organization=organization, secret=name)

    async def credentials(
        self, organization: str, name: str, host: str
    ) -> RegistryCredentials | None:
        """The credentials a build or an import sends to ``host``; None when
        ``name`` is empty. FAILED_PRECONDITION when the named secret does
        not exist (SECRET_NOT_FOUND) or is not for ``host``
        (SECRET_HOST_MISMATCH): then nothing is sent anywhere."""
        if not name:
            return None
        try:
            secret, password = await self._store.credentials(organization, name)
        except NotFound:
            raise FailedPrecondition(
                f"secret {name} does not exist; create it with `dodil ignite secret create {name}`",
                reason="SECRET_NOT_FOUND",
                metadata={"secret": name},
            ) from None
        if host not in secret.hosts:
            bound = ", ".join(secret.hosts) or "no host"
            raise FailedPrecondition(
                f"secret {name} is for {bound}, not {host}: a secret is sent only to the hosts"
                f" it was created for (dodil ignite secret create {name} --host {host} --replace"
                " to add it)",
                reason="SECRET_HOST_MISMATCH",
                metadata={"secret": name, "host": host},
            )
        return RegistryCredentials(secret.username, password)
