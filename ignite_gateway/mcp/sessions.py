"""MCP sessions: what ``initialize`` settles, remembered per ``Mcp-Session-Id``.

A session holds the negotiated protocol revision and the token subject that
opened it. Every later request must present the session id *and* a token of
the same subject: a leaked session id alone gets nobody anywhere, and each
request is still authenticated on its own (nothing is cached from the
token). The tool list is never stored: it is read from the server for every
``tools/list``, so publishing, deleting or disabling an app shows at once.

Sessions live in the memory of one gateway process: behind several gateway
replicas, route a client to one replica (or it re-initializes when it gets
the 404 an unknown session earns, as the spec prescribes). The store is
bounded: the least recently used session goes first when it is full, and a
session idle for ``idle_ttl_s`` is gone.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Sessions one gateway keeps; beyond that the least recently used is
#: dropped (its client re-initializes on the 404).
MAX_SESSIONS = 10_000

#: A session unused this long is forgotten.
IDLE_TTL_S = 3600.0


@dataclass
class Session:
    """One client's session."""

    session_id: str
    protocol_version: str
    subject: str
    last_used: float


class SessionStore:
    """Sessions by id, bounded in number and idle time."""

    def __init__(
        self,
        *,
        max_sessions: int = MAX_SESSIONS,
        idle_ttl_s: float = IDLE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._max = max_sessions
        self._ttl = idle_ttl_s
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, protocol_version: str, subject: str) -> Session:
        """A new session with an unguessable id (visible ASCII, as required)."""
        now = self._clock()
        session = Session(secrets.token_urlsafe(24), protocol_version, subject, now)
        self._sessions[session.session_id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str, subject: str) -> Session | None:
        """The live session ``session_id`` opened by ``subject``, or None."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_used > self._ttl:
            del self._sessions[session_id]
            return None
        if not secrets.compare_digest(session.subject, subject):
            # Someone else's session: answered like an unknown one.
            return None
        session.last_used = now
        self._sessions.move_to_end(session_id)
        return session

    def end(self, session_id: str, subject: str) -> bool:
        """End a session (DELETE); False when there was none to end."""
        if self.get(session_id, subject) is None:
            return False
        del self._sessions[session_id]
        return True
