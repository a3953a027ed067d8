"""Env values at rest: sealed with the server's secrets key.

Env values are secrets (API keys, passwords), so the store keeps an app's
env, and each version's snapshot of it, as ``{"$sealed": <Fernet token of
the JSON object>}`` in their jsonb columns: a database dump or backup alone
reveals no value. ``$`` cannot start an env name, so a sealed object is never
mistaken for a plain one; plain objects (written before sealing, or by a
store without a key) are still read, and sealed on their next write or by
the server's start (``PostgresAppStore.seal_plaintext_env``). The key is the
one secrets use (store/secrets.py ``load_key``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from ignite_server.domain.errors import FailedPrecondition

SEALED_KEY = "$sealed"


class EnvSealer:
    """Seals and opens env objects; ``key`` None keeps them plain (tests of
    the store alone)."""

    def __init__(self, key: bytes | None) -> None:
        self._fernet = Fernet(key) if key else None

    def seal(self, env: Mapping[str, str]) -> dict[str, str]:
        """The JSON object to store for ``env``."""
        if self._fernet is None:
            return dict(env)
        token = self._fernet.encrypt(json.dumps(dict(env), sort_keys=True).encode())
        return {SEALED_KEY: token.decode("ascii")}

    def open(self, stored: Any) -> dict[str, str]:
        """The env a stored object holds (sealed or plain)."""
        if isinstance(stored, str):
            stored = json.loads(stored)
        if not isinstance(stored, dict):
            return {}
        token = stored.get(SEALED_KEY)
        if token is None:
            return {str(k): str(v) for k, v in stored.items()}
        if self._fernet is None:
            raise FailedPrecondition(
                "this app's env is sealed and the server has no key to open it",
                reason="ENV_UNREADABLE",
            )
        try:
            data = json.loads(self._fernet.decrypt(str(token).encode("ascii")))
        except (InvalidToken, ValueError):
            raise FailedPrecondition(
                "this app's env was sealed under another secrets key; set it again",
                reason="ENV_UNREADABLE",
            ) from None
        return {str(k): str(v) for k, v in data.items()}

    @staticmethod
    def is_sealed(stored: Any) -> bool:
        if isinstance(stored, str):
            stored = json.loads(stored)
        return isinstance(stored, dict) and SEALED_KEY in stored
