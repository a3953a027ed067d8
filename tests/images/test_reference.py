"""Image references as users write them."""

from __future__ import annotations

import pytest

from ignite_server.images.reference import ImageReference, parse
from ignite_server.ports.image_builder import ImageUnavailable

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ImageReference("docker.io", "library/nginx", "latest")),
        ("nginx:1.27", ImageReference("docker.io", "library/nginx", "1.27")),
        ("acme/web", ImageReference("docker.io", "acme/web", "latest")),
        ("ghcr.io/acme/web:v2", ImageReference("ghcr.io", "acme/web", "v2")),
        (f"ghcr.io/acme/web@{DIGEST}", ImageReference("ghcr.io", "acme/web", "", DIGEST)),
        (f"docker://quay.io/a/b:c@{DIGEST}", ImageReference("quay.io", "a/b", "c", DIGEST)),
        ("127.0.0.1:5000/team/app:v2", ImageReference("127.0.0.1:5000", "team/app", "v2")),
        ("localhost/app", ImageReference("localhost", "app", "latest")),
        ("[::1]:5000/app", ImageReference("[::1]:5000", "app", "latest")),
    ],
)
def test_references_are_parsed(text: str, expected: ImageReference) -> None:
    assert parse(text) == expected


def test_pinned_is_by_digest_when_there_is_one() -> None:
    assert parse(f"quay.io/a/b:c@{DIGEST}").pinned == f"quay.io/a/b@{DIGEST}"
    assert parse("quay.io/a/b").pinned == "quay.io/a/b:latest"


@pytest.mark.parametrize(
    "text", ["", "Nginx", "acme/web:", "acme//web", "web@sha256:12", "a b", "-x", "x" * 600]
)
def test_what_is_no_reference_is_refused(text: str) -> None:
    with pytest.raises(ImageUnavailable) as invalid:
        parse(text)
    assert invalid.value.reason == "IMAGE_REF_INVALID"
