"""Which version a request runs when it names no version or tag
(docs/rollouts.md): the active version, or with a traffic split, a version
drawn by weight. Each request is drawn on its own; a request with a sticky
key takes the bucket ``sha256(app id, key) mod 100`` and walks the split in
version order, so one key reaches the same version for as long as the split
stays the same.
"""

from __future__ import annotations

import hashlib
import random

from ignite_server.domain.models import App


def pick_version(app: App, sticky_key: str = "", rng: random.Random | None = None) -> int:
    """The version a request without a version or tag runs (module doc)."""
    if not app.traffic:
        return app.active_version
    split = sorted(app.traffic, key=lambda t: t.version)
    if sticky_key:
        digest = hashlib.sha256(f"{app.id}\0{sticky_key}".encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") % 100
    else:
        bucket = (rng or random).randrange(100)
    for target in split:
        if bucket < target.percent:
            return target.version
        bucket -= target.percent
    return split[-1].version
