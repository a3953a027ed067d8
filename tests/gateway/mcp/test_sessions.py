"""MCP sessions: bound to a subject, bounded in number and idle time."""

from __future__ import annotations

from ignite_gateway.mcp.sessions import SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_session_answers_only_its_subject() -> None:
    store = SessionStore()
    session = store.create("2025-11-25", "alice")
    assert store.get(session.session_id, "alice") is session
    assert store.get(session.session_id, "mallory") is None
    assert not store.end(session.session_id, "mallory")
    assert store.end(session.session_id, "alice")
    assert store.get(session.session_id, "alice") is None


def test_idle_sessions_expire() -> None:
    clock = Clock()
    store = SessionStore(idle_ttl_s=10, clock=clock)
    session = store.create("2025-11-25", "alice")
    clock.now = 9
    assert store.get(session.session_id, "alice") is not None  # use renews it
    clock.now = 18
    assert store.get(session.session_id, "alice") is not None
    clock.now = 29
    assert store.get(session.session_id, "alice") is None


def test_the_least_recently_used_session_goes_first() -> None:
    store = SessionStore(max_sessions=2)
    first = store.create("2025-11-25", "a")
    second = store.create("2025-11-25", "b")
    store.get(first.session_id, "a")
    store.create("2025-11-25", "c")
    assert len(store) == 2
    assert store.get(second.session_id, "b") is None
    assert store.get(first.session_id, "a") is not None
