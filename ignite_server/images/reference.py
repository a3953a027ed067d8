"""Image references as users write them: ``nginx``, ``nginx:1.27``,
``ghcr.io/acme/web@sha256:…``, ``127.0.0.1:5000/team/app:v2``.

The grammar is distribution's (``reference/regexp.go``): an optional
registry host (the first component when it has a ``.`` or a ``:``, or is
``localhost``), a lower-case repository path, an optional tag and an
optional digest. A reference with no host is Docker Hub's, where a single
component is an official image under ``library/``; one with neither tag nor
digest means ``latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ignite_server.domain import hosts
from ignite_server.ports.image_builder import ImageUnavailable

#: Docker Hub: the registry of references that name none.
DEFAULT_HOST = hosts.DOCKER_HUB
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
#: Longest reference accepted (distribution's NameTotalLengthMax is 255 for
#: the name alone).
MAX_LENGTH = 512


@dataclass(frozen=True)
class ImageReference:
    """A parsed reference: ``host/path`` plus a tag or a digest (or both)."""

    host: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        """``host/path``: the reference without tag or digest."""
        return f"{self.host}/{self.path}"

    @property
    def pinned(self) -> str:
        """The reference by its digest when it has one, else by its tag
        (registries take one or the other, not both)."""
        return self.at(self.digest) if self.digest else f"{self.repository}:{self.tag}"

    def at(self, digest: str) -> str:
        """``host/path@digest``."""
        return f"{self.repository}@{digest}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse(text: str) -> ImageReference:
    """The reference ``text`` names (``docker://`` may precede it); raises
    ImageUnavailable(IMAGE_REF_INVALID) when it is none."""
    raw = text.strip().removeprefix("docker://")
    if not raw or len(raw) > MAX_LENGTH:
        raise _invalid(text, "empty or too long")
    name, _, digest = raw.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise _invalid(text, "a digest is sha256: and 64 lower-case hex digits")
    tag = ""
    last_slash = name.rfind("/")
    if ":" in name[last_slash + 1 :]:
        name, _, tag = name.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise _invalid(text, f"bad tag {tag!r}")
    first, rest = hosts.split_registry(name)
    if first:
        if not _HOST.fullmatch(first):
            raise _invalid(text, f"bad registry host {first!r}")
        host, path = first, rest
    else:
        host, path = DEFAULT_HOST, name
        if "/" not in path:
            path = f"library/{path}"
    if not all(_COMPONENT.fullmatch(part) for part in path.split("/")):
        raise _invalid(text, "a repository is lower-case letters, digits and . _ - separators")
    if not tag and not digest:
        tag = "latest"
    return ImageReference(host=host, path=path, tag=tag, digest=digest)


def _invalid(text: str, why: str) -> ImageUnavailable:
    return ImageUnavailable(f"{text!r} is not an image reference: {why}", "IMAGE_REF_INVALID")
