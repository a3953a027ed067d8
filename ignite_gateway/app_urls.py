"""Direct app URLs: ``http://<app>-<org>.<apps domain>/...``.

A request whose ``Host`` is one DNS label under the apps domain is a plain
HTTP request for that app (the version its traffic split picks). It becomes
an ``Invoke`` call whose envelope is the request itself (method, path,
query, headers, body), and the pod's response is relayed as is.

**Tag URLs**: ``<tag>---<app>-<org>.<apps domain>`` reaches the version the
tag names (``Invoke`` with ``tag``). Tags hold no ``--`` and no new app or
organization name holds ``---``, so the first ``---`` of such a label ends
the tag and the label is never an app's own host; for names made before that
rule, the label's plain splits are tried after the tag's.

**Which app?** Org and app names are DNS labels and may contain ``-``, so
``a-b-c`` could be app ``a`` of org ``b-c`` or app ``a-b`` of org ``c``.
:class:`AppHostResolver` lists the split points *longest org first*; the
gateway invokes the first candidate, and moves to the next only when the
server answers ``NOT_FOUND`` with the reason ``APP_NOT_FOUND`` before any
response frame (no app by that name, so nothing ran), or, for a caller
without a token, ``UNAUTHENTICATED`` with ``TOKEN_REQUIRED`` (the server tells
an anonymous caller nothing about a missing or private app, so a later split
may still be a public app). When no split answers, the caller gets
``TOKEN_REQUIRED`` if any split said so, else ``APP_NOT_FOUND``. The first
candidate that answers wins and is
remembered for a short while, so a warm host costs one call. Invoking rather
than looking the app up first keeps the answer the server's own, for callers
with or without a token. The server keeps every label one app's (app ``a``
of ``b-c`` cannot be created while app ``a-b`` of ``c`` exists: URL_TAKEN),
so at most one split names an app; a label two apps held before that rule
came in is answered HOST_DISPUTED by the server (for either split) and
serves neither.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from multidict import CIMultiDictProxy

from ignite_gateway.headers import HOP_BY_HOP

# A DNS label as Ignite names are: lower-case letters, digits, inner dashes.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

# What of a request the app never sees: the hop-by-hop headers; Authorization,
# since the caller's platform credential is for the platform (passed as call
# metadata), never handed to the app's code; and Content-Length, which the
# server sets again on its own hop to the pod.
_NOT_FORWARDED = HOP_BY_HOP | {"authorization", "content-length"}


#: What separates a tag from the app's label in a tag URL.
TAG_SEPARATOR = "---"
# A tag (docs/rollouts.md): lower-case letters, digits and single dashes,
# starting with a letter.
_TAG = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*")


@dataclass(frozen=True)
class AppRef:
    """One app, by organization and name; with ``tag``, the version it names."""

    org: str
    app: str
    tag: str = ""


def app_label(host: str, apps_domain: str) -> str | None:
    """The ``<app>-<org>`` label of a Host header under ``apps_domain``.

    None when the host is not one label under the domain (the API itself,
    or something else entirely).
    """
    name = host.strip().lower()
    if name.startswith("["):
        return None  # an IPv6 literal
    name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.rstrip(".")
    suffix = "." + apps_domain.lower().strip(".")
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    if not _LABEL.fullmatch(label):
        return None
    return label


def candidates(label: str) -> list[AppRef]:
    """Every (app, org) split of ``label``, longest org first; for a tag URL
    label, the tag's splits first (see the module docstring)."""
    tag, separator, rest = label.partition(TAG_SEPARATOR)
    tagged: list[AppRef] = []
    if separator and _TAG.fullmatch(tag):
        tagged = [AppRef(ref.org, ref.app, tag) for ref in _splits(rest)]
    return tagged + _splits(label)


def _splits(label: str) -> list[AppRef]:
    refs = []
    for index, char in enumerate(label):
        if char != "-":
            continue
        app, org = label[:index], label[index + 1 :]
        if _LABEL.fullmatch(app) and _LABEL.fullmatch(org):
            refs.append(AppRef(org=org, app=app))
    return refs


class AppHostResolver:
    """Remembers which split of a label named an existing app.

    Entries expire after ``ttl_s`` so a deleted app and a newly created one
    with a colliding name are noticed; a remembered split that the server no
    longer knows is forgotten at once by :meth:`forget`.
    """

    def __init__(self, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._known: dict[str, tuple[AppRef, float]] = {}

    def order(self, label: str) -> list[AppRef]:
        """Candidates to try: the remembered one first, then the rest."""
        options = candidates(label)
        entry = self._known.get(label)
        if entry is not None:
            ref, expires = entry
            if expires > time.monotonic() and ref in options:
                return [ref] + [option for option in options if option != ref]
            del self._known[label]
        return options

    def remember(self, label: str, ref: AppRef) -> None:
        """Record that ``ref`` exists."""
        if len(self._known) >= self._max_entries:
            # Bounded memory against hosts made up by the caller: drop the
            # oldest half rather than track recency on every hit.
            for key in list(self._known)[: self._max_entries // 2]:
                del self._known[key]
        self._known[label] = (ref, time.monotonic() + self._ttl_s)

    def forget(self, label: str) -> None:
        """Drop what is remembered for ``label``."""
        self._known.pop(label, None)


def forwarded_headers(headers: CIMultiDictProxy[str], extra: Mapping[str, str]) -> dict[str, str]:
    """The request headers the app sees, repeated ones joined by ``", "``."""
    joined: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _NOT_FORWARDED:
            continue
        if lowered in joined:
            separator = "; " if lowered == "cookie" else ", "
            joined[lowered] = joined[lowered] + separator + value
        else:
            joined[lowered] = value
    joined.update({name.lower(): value for name, value in extra.items()})
    return joined
