"""Archive checks that need limits too large to build in a test, exercised
with those limits lowered; the end-to-end cases are in tests/api."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from ignite_server.domain import archives
from ignite_server.domain.errors import InvalidArgument
from tests.support import tar_gz


def test_unpacked_size_is_counted_from_real_bytes():
    limits = archives.ArchiveLimits(max_entries=10, max_unpacked_bytes=100_000)
    data = tar_gz({"a.bin": os.urandom(60_000), "b.bin": os.urandom(60_000)})
    with pytest.raises(InvalidArgument) as caught:
        archives.check(data, limits)
    assert caught.value.reason == "ARCHIVE_TOO_LARGE"


def test_extract_writes_only_under_the_destination(tmp_path):
    data = tar_gz({"handler.py": b"x = 1\n", "pkg/mod.py": b"y = 2\n"})
    dest = tmp_path / "dest"
    dest.mkdir()
    summary = archives.extract(data, dest)
    assert summary.entries == 2
    assert (dest / "pkg" / "mod.py").read_bytes() == b"y = 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dest"]


def test_symlinked_directory_cannot_redirect_later_entries(tmp_path):
    # "d" → "." is inside the root, but "d/../../x" style tricks must not
    # get through a directory link either.
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        link = tarfile.TarInfo("d")
        link.type, link.linkname = tarfile.SYMTYPE, "sub"
        tar.addfile(link)
        inner = tarfile.TarInfo("d/../escape")
        inner.size = 1
        tar.addfile(inner, io.BytesIO(b"x"))
    with pytest.raises(InvalidArgument) as caught:
        archives.extract(out.getvalue(), tmp_path)
    assert caught.value.reason == "ARCHIVE_UNSAFE_PATH"
    assert not (tmp_path.parent / "escape").exists()
