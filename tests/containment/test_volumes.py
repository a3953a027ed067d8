"""Build volumes: one file system per organization, its size the quota."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from ignite_server.containment import identities, mounts
from ignite_server.containment.volumes import BuildVolumes

pytestmark = pytest.mark.skipif(not identities.privileged(), reason="mounting needs root")
CACHE_OWNER = 3_300_000


async def test_each_organization_gets_a_capped_volume_of_its_own(tmp_path: Path) -> None:
    volumes = BuildVolumes(tmp_path / "volumes", quota_mb=256, cache_owner=CACHE_OWNER)
    try:
        async with volumes.use("acme") as acme, volumes.use("globex") as globex:
            assert acme.path != globex.path
            assert acme.path in mounts.mounts_under(tmp_path)
            assert acme.cache.stat().st_uid == CACHE_OWNER
            assert acme.builds.stat().st_uid == 0
            assert oct(acme.path.stat().st_mode & 0o777) == "0o711"
            _, total = acme.usage()
            assert 200 * 2**20 < total <= 256 * 2**20
            # Filling it fails there, not on the host's disk.
            filled = await asyncio.to_thread(
                subprocess.run,
                ["dd", "if=/dev/zero", f"of={acme.cache / 'big'}", "bs=1M", "count=400"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert filled.returncode != 0 and "No space left" in filled.stderr
            assert globex.usage()[0] < 16 * 2**20
        # Fuller than the threshold and idle: the next build gets it made anew.
        async with volumes.use("acme") as again:
            assert not (again.cache / "big").exists()
            assert again.cache.stat().st_uid == CACHE_OWNER
    finally:
        volumes.close()
    assert not mounts.mounts_under(tmp_path)
    # The images stay for the next start; forgetting removes them.
    assert sorted(p.name for p in (tmp_path / "volumes").glob("*.img")) == [
        "acme.img",
        "globex.img",
    ]
    volumes.forget_all()
    assert not list((tmp_path / "volumes").glob("*.img"))
    assert os.stat(tmp_path / "volumes").st_uid == 0
