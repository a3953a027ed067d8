"""How the operator sets builds up (docs/builds.md): the values the server's
flags read, with their defaults, handed to the build space and pipelines.

Each value is the operator's, never a tenant's: which host uids Ignite may
reserve a block of, how large each
organization's build volume (its build-cache quota) is, how many builds run
at once, and which package index Python builds install from.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The host uids Ignite may use: above every range distributions and
#: container engines hand out (/etc/subuid ranges start at 100,000 and
#: rarely reach 2^24), and below the 2^31 some tools mishandle. A block
#: (containment/identities.py) is 2^24 of them.
DEFAULT_UID_RANGE = (1 << 24, (1 << 31) - (1 << 24))
#: Uids one server's block holds: at least this many must be in the range.
BLOCK_SIZE = 1 << 24
#: Default size of an organization's build volume, in MiB.
DEFAULT_CACHE_QUOTA_MB = 10 * 1024
#: Builds that run at once by default: compilers use every core they get.
DEFAULT_SLOTS = 2
#: Where pip finds packages unless the operator names another index.
DEFAULT_PIP_INDEX_URL = "https://pypi.org/simple"


@dataclass(frozen=True)
class BuildSettings:
    """The operator's build settings (see the module docstring)."""

    uid_range: tuple[int, int] = DEFAULT_UID_RANGE
    cache_quota_mb: int = DEFAULT_CACHE_QUOTA_MB
    slots: int = DEFAULT_SLOTS
    pip_index_url: str = DEFAULT_PIP_INDEX_URL
    #: Whether pip may build source distributions (their build code runs in
    #: the build's jail).
    pip_allow_sdists: bool = False


def parse_uid_range(text: str) -> tuple[int, int]:
    """``FIRST:COUNT`` (``--uid-range``) as numbers; ValueError when it
    cannot hold one block or reaches root's or the 2^31 limit."""
    first_text, _, count_text = text.partition(":")
    first, count = int(first_text), int(count_text)
    if first < 65_536 or count < BLOCK_SIZE or first + count > 1 << 31:
        raise ValueError(
            f"uid range {text!r}: needs FIRST >= 65536, COUNT >= {BLOCK_SIZE} "
            "(one block) and FIRST + COUNT <= 2^31"
        )
    return first, count
