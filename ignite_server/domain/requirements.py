"""What a Python app's ``requirements.txt`` may hold.

A requirements file is read by pip, and pip reads far more than package
names: local paths and URLs (whose build backends run at install time),
``-e``, ``-r``/``-c`` pointing at other files, index and find-links options
that send the install elsewhere, ``--no-binary`` (building from source runs
a package's own code). A server-side install needs none of that, so only
what says *which* packages to take from the index is accepted:

- a PEP 508 requirement without a URL: a name, extras, version specifiers
  and environment markers (``requests[socks]>=2.31; python_version >= "3.8"``);
- ``--hash=<algorithm>:<digest>`` options after it;
- comments, blank lines and backslash line continuations.

Anything else is refused with ``INVALID_ARGUMENT`` /
``REQUIREMENT_NOT_ALLOWED`` naming the line. Install steps still run in the
build sandbox, so code that slips through any allowed form (a wheel's
contents never run at install; a package index is trusted no further) is
contained.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement

from ignite_server.domain.errors import InvalidArgument

#: The one per-requirement option a server-side install may use.
HASH_OPTION = re.compile(r"--hash[= ]\S+")
#: File names pip installs from the local disk when they exist.
LOCAL_ARCHIVE = re.compile(r"\.(whl|zip|tar|tgz|tar\.gz|tar\.bz2|tbz|tar\.xz|txz)$", re.I)
#: Where a comment starts: at the line's start or after whitespace.
COMMENT = re.compile(r"(^|\s)#.*$")
MAX_LINE_CHARS = 4096
#: A requirements file larger than this is not a list of packages.
MAX_FILE_BYTES = 256 * 1024
#: Where pip reads it: the root of the app's code.
FILE_NAME = "requirements.txt"


def check(text: str) -> list[str]:
    """The requirement lines of ``text`` (as pip will read them); raises
    InvalidArgument for the first line that is not allowed."""
    accepted: list[str] = []
    for number, line in _logical_lines(text):
        stripped = COMMENT.sub("", line).strip()
        if not stripped:
            continue
        if len(stripped) > MAX_LINE_CHARS:
            raise _refuse(number, stripped, "the line is too long")
        requirement = HASH_OPTION.sub("", stripped).strip()
        if requirement.startswith("-"):
            option = requirement.split()[0].split("=")[0]
            raise _refuse(number, stripped, f"pip option {option} is not allowed")
        try:
            parsed = Requirement(requirement)
        except InvalidRequirement:
            raise _refuse(
                number, stripped, "only package names with versions and markers are allowed"
            ) from None
        if parsed.url:
            raise _refuse(number, stripped, "requirements with a URL are not allowed")
        if LOCAL_ARCHIVE.search(parsed.name):
            raise _refuse(number, stripped, "local archives are not allowed")
        accepted.append(stripped)
    return accepted


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines joined across backslash continuations, with their first line's
    number (1-based)."""
    joined: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append((start, pending + line))
        pending = ""
    if pending:
        joined.append((start, pending))
    return joined


def _refuse(number: int, line: str, why: str) -> InvalidArgument:
    shown = line if len(line) <= 120 else line[:117] + "..."
    return InvalidArgument(
        f"requirements.txt line {number} ({shown!r}): {why}; a requirements file may hold "
        "package names, version specifiers, markers and --hash options only",
        reason="REQUIREMENT_NOT_ALLOWED",
        metadata={"field": "requirements.txt", "line": str(number)},
    )
