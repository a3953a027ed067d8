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

Lines are joined and comments dropped exactly as pip does it
(``pip._internal.req.req_file``): a line ending in a backslash continues
onto the next one, the backslash removed and nothing put in its place,
unless the line is a comment from its start, which never continues; a ``#``
at the start of a line or after whitespace starts a comment. Anything else
is refused with ``INVALID_ARGUMENT`` / ``REQUIREMENT_NOT_ALLOWED`` naming the
line.

And pip never reads the user's file: the build writes a file of its own
(``render``) holding each accepted requirement rendered again from its
parsed form, one per line, so whatever a parser disagreement might let
through, no option reaches pip from the file: the index, wheels-only and
every other option come from the platform's command line.
"""

from __future__ import annotations

import re

from packaging.requirements import InvalidRequirement, Requirement

from ignite_server.domain.errors import InvalidArgument

#: The one per-requirement option a server-side install may use.
HASH_OPTION = re.compile(r"--hash[= ]\S+")
#: File names pip installs from the local disk when they exist.
LOCAL_ARCHIVE = re.compile(r"\.(whl|zip|tar|tgz|tar\.gz|tar\.bz2|tbz|tar\.xz|txz)$", re.I)
#: Where a comment starts: at the line's start or after whitespace (pip's
#: COMMENT_RE; ``match`` finds a line that is a comment from its start).
COMMENT = re.compile(r"(^|\s+)#.*$")
MAX_LINE_CHARS = 4096
#: A requirements file larger than this is not a list of packages.
MAX_FILE_BYTES = 256 * 1024
#: Where pip reads it: the root of the app's code.
FILE_NAME = "requirements.txt"


def check(text: str) -> list[str]:
    """The requirements of ``text`` as pip would read them, each rendered
    again from its parsed form (with its ``--hash`` options); raises
    InvalidArgument for the first line that is not allowed."""
    accepted: list[str] = []
    for number, line in _logical_lines(text):
        stripped = COMMENT.sub("", line).strip()
        if not stripped:
            continue
        if len(stripped) > MAX_LINE_CHARS:
            raise _refuse(number, stripped, "the line is too long")
        hashes = [match.replace(" ", "=", 1) for match in HASH_OPTION.findall(stripped)]
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
        accepted.append(" ".join([str(parsed), *hashes]))
    return accepted


def render(accepted: list[str]) -> str:
    """The requirements file pip reads: ``check``'s lines, one per line."""
    return "".join(f"{line}\n" for line in accepted)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines joined across backslash continuations, with their first line's
    number (1-based), as pip's ``join_lines`` does it."""
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        comment = COMMENT.match(line) is not None
        if not line.endswith("\\") or comment:
            if comment:
                # pip's own trick: the line still reads as a comment later.
                line = " " + line
            if pending:
                joined.append((start, "".join([*pending, line])))
                pending = []
            else:
                joined.append((number, line))
        else:
            if not pending:
                start = number
            pending.append(line.strip("\\"))
    if pending:
        joined.append((start, "".join(pending)))
    return joined


def _refuse(number: int, line: str, why: str) -> InvalidArgument:
    shown = line if len(line) <= 120 else line[:117] + "..."
    return InvalidArgument(
        f"requirements.txt line {number} ({shown!r}): {why}; a requirements file may hold "
        "package names, version specifiers, markers and --hash options only",
        reason="REQUIREMENT_NOT_ALLOWED",
        metadata={"field": "requirements.txt", "line": str(number)},
    )
