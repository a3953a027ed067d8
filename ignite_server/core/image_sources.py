"""Checking the image branch of SaveDraft (``CodeSource.image``) before
anything is stored: every field that later becomes a build's argument or a
probe's path is checked here, with the field named in the error.

Git URLs are limited to network schemes (https, http, git): a ``file://``
URL or a bare path would name a folder on the server's own machine.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from ignite_server.core.validation import check_name
from ignite_server.domain.errors import InvalidArgument
from ignite_server.domain.models import ImageSpec, UploadKind

#: Schemes an ImageFromGit URL may use.
GIT_SCHEMES = ("https", "http", "git")
#: A docker reference: [host[:port]/]path[:tag][@sha256:hex], loosely; the
#: builder parses it for real and answers IMAGE_REF_INVALID where this
#: lets something through.
_IMAGE_REF = re.compile(
    r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?"
)
_GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
#: Longest path accepted for a Dockerfile, build context or health path.
MAX_PATH = 512


def _invalid(field: str, message: str, reason: str) -> InvalidArgument:
    return InvalidArgument(message, reason=reason, metadata={"field": field})


def check_relative_path(value: str, field: str) -> str:
    """A path inside the build context: relative, no ``..``."""
    path = PurePosixPath(value)
    if len(value) > MAX_PATH or path.is_absolute() or ".." in path.parts or "\0" in value:
        raise _invalid(
            field, f"{field} must be a path inside the build context, not {value[:80]!r}",
            "PATH_OUTSIDE_CONTEXT",
        )  # fmt: skip
    return value


def check_health_path(value: str) -> str:
    field = "code.image.health_path"
    bad = any(c in value for c in " \r\n\0") or len(value) > MAX_PATH
    if value and (bad or not value.startswith("/")):
        raise _invalid(
            field,
            f"{field} must be an absolute URL path such as /healthz, not {value[:80]!r}",
            "HEALTH_PATH_INVALID",
        )
    return value


def check_image(kind: UploadKind, spec: ImageSpec, data: bytes) -> ImageSpec:
    """The checked spec of an image upload; InvalidArgument naming the field."""
    check_health_path(spec.health_path)
    if spec.secret_ref:
        check_name(spec.secret_ref, "code.image.secret_ref")
    if kind == UploadKind.PREBUILT_IMAGE:
        field = "code.image.prebuilt.image_ref"
        if not spec.source:
            raise _invalid(field, f"{field} is required", "IMAGE_REF_REQUIRED")
        if len(spec.source) > 512 or not _IMAGE_REF.fullmatch(spec.source):
            raise _invalid(
                field,
                f"{field} {spec.source[:80]!r} is not an image reference"
                " (registry/name:tag or registry/name@sha256:…)",
                "IMAGE_REF_INVALID",
            )
    elif kind == UploadKind.IMAGE_FROM_CODE:
        if not data:
            raise _invalid(
                "code.image.from_code.archive",
                "image.from_code needs the build context as a ZIP or tar.gz archive",
                "CODE_EMPTY",
            )
        if spec.dockerfile_path:
            check_relative_path(spec.dockerfile_path, "code.image.from_code.dockerfile_path")
    elif kind == UploadKind.IMAGE_FROM_GIT:
        field = "code.image.from_git.repo_url"
        scheme = urlsplit(spec.source).scheme
        if scheme not in GIT_SCHEMES:
            raise _invalid(
                field,
                f"{field} must be an {', '.join(GIT_SCHEMES)} URL, not {spec.source[:80]!r}",
                "GIT_URL_NOT_ALLOWED",
            )
        if urlsplit(spec.source).username is not None:
            raise _invalid(
                field,
                f"{field} must not carry credentials: store them with CreateSecret"
                " (dodil ignite secret create) and name the secret in git_secret_ref",
                "GIT_URL_HAS_CREDENTIALS",
            )
        if spec.git_ref and not _GIT_REF.fullmatch(spec.git_ref):
            raise _invalid(
                "code.image.from_git.ref",
                f"code.image.from_git.ref {spec.git_ref[:80]!r} is not a branch, tag or commit",
                "GIT_REF_INVALID",
            )
        if spec.context_dir:
            check_relative_path(spec.context_dir, "code.image.from_git.context_dir")
    return spec
