"""Which organizations exist: asked on every RPC that names one, so that an
unknown organization is NOT_FOUND everywhere, for the platform
administrator too (the boundary asks, api/authorization.py).

The names are held in memory (loaded at start and with every identity
refresh, changed at once by creations and deletions made through this
server); a name not in memory is looked up in the database before it is
called unknown, so an organization another server just created is found
at once. One deleted through another server is known here until the next
refresh (core/identity.py, REFRESH_SECS): its accounts, and with them its
members' calls, stop at the same moment as everywhere.

With ``--auth off`` (local development: one user, who is the platform
administrator) there is no tenant to keep apart: the server does not ask
(server.py), and any name is an organization, as it always was.
"""

from __future__ import annotations

from ignite_server.ports.identity_store import IdentityStore


class Organizations:
    """The set of organization names, cached."""

    def __init__(self, store: IdentityStore) -> None:
        self._store = store
        self._known: set[str] = set()

    async def refresh(self) -> None:
        """Reload every name (identity's refresh loop)."""
        self._known = {record.name for record in await self._store.list_organizations()}

    def created(self, name: str) -> None:
        self._known.add(name)

    def deleted(self, name: str) -> None:
        self._known.discard(name)

    async def exists(self, name: str) -> bool:
        """Whether ``name`` is an organization (the database decides a miss)."""
        if name in self._known:
            return True
        if await self._store.has_organization(name):
            self._known.add(name)
            return True
        return False
