"""Idmapped mounts: a folder of one uid shown as another's, both ways."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ignite_server.containment import identities, idmap

pytestmark = pytest.mark.skipif(not identities.privileged(), reason="mounting needs root")
OWNER, SHOWN = 3_100_001, 3_200_002


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the shown uid can reach (pytest's own are root's, 0700)."""
    made = Path(tempfile.mkdtemp(prefix="ignite-idmap-"))
    made.chmod(0o755)
    yield made
    shutil.rmtree(made, ignore_errors=True)


def test_the_owners_files_are_the_shown_uids_and_its_new_files_the_owners(folder: Path) -> None:
    source, target = folder / "cache", folder / "view"
    source.mkdir()
    target.mkdir()
    os.chown(source, OWNER, OWNER)
    (source / "old").write_text("cached")
    os.chown(source / "old", OWNER, OWNER)
    (source / "root-only").write_text("no")
    idmap.mount_mapped(source, target, owner=OWNER, shown_as=SHOWN)
    try:
        assert (target / "old").stat().st_uid == SHOWN
        # Another uid's file is nobody's through the mount.
        assert (target / "root-only").stat().st_uid == 65_534
        as_shown = ["setpriv", f"--reuid={SHOWN}", f"--regid={SHOWN}", "--clear-groups"]
        subprocess.run([*as_shown, "touch", str(target / "new")], check=True)
        refused = subprocess.run(
            [*as_shown, "sh", "-c", f"echo x >> {target / 'root-only'}"],
            capture_output=True,
            check=False,
        )
        assert refused.returncode != 0
        assert (source / "new").stat().st_uid == OWNER
        assert (target / "new").stat().st_uid == SHOWN
    finally:
        idmap.unmount(target)
    assert not (target / "old").exists()
