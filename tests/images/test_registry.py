"""The embedded registry: answers on loopback, comes back after a crash, and
can demand credentials."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ignite_server.images.registry import EmbeddedRegistry
from ignite_server.ports.image_builder import RegistryCredentials
from tests.eventually import eventually_async


def status(url: str, credentials: RegistryCredentials | None = None) -> int:
    request = urllib.request.Request(url)
    if credentials is not None:
        token = f"{credentials.username}:{credentials.password}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


async def test_the_registry_answers_on_loopback_with_its_data_in_the_state(
    registry: EmbeddedRegistry,
) -> None:
    assert registry.host.startswith("127.0.0.1:")
    assert registry.url == f"http://{registry.host}"
    assert await asyncio.to_thread(status, f"{registry.url}/v2/") == 200
    assert (registry.root / "data").is_dir()


async def test_a_registry_that_dies_is_restarted_on_the_same_port(tmp_path: Path) -> None:
    running = EmbeddedRegistry(tmp_path)
    await running.start()
    try:
        host, first = running.host, running.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await eventually_async(lambda: running.restarts == 1, what="the registry restarted")
        assert running.host == host and running.pid != first
        assert await asyncio.to_thread(status, f"{running.url}/v2/") == 200
    finally:
        await running.close()
    with pytest.raises(OSError):
        await asyncio.to_thread(urllib.request.urlopen, f"{running.url}/v2/", timeout=2)


async def test_a_registry_with_htpasswd_demands_credentials(
    auth_registry: EmbeddedRegistry, auth_credentials: RegistryCredentials
) -> None:
    url = f"{auth_registry.url}/v2/"
    assert await asyncio.to_thread(status, url) == 401
    wrong = RegistryCredentials(auth_credentials.username, "nope")
    assert await asyncio.to_thread(status, url, wrong) == 401
    assert await asyncio.to_thread(status, url, auth_credentials) == 200
