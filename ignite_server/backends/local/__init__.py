"""Pods as sandboxed local processes (see backend.py)."""

from ignite_server.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
