"""Following a cluster pod's output into the app's logs.

The kubelet keeps each container's output; the backend follows the app
container's (``GET .../pods/<name>/log?follow=true``) from when it runs and
feeds each line to the same demultiplexer as the local backend's pipes
(tagged records carry their execution and stream; the kubelet merges
stdout and stderr, so an untagged line counts as stdout). A container that
restarts is followed again from its new start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from kubernetes_asyncio import client

from ignite_server.backends.kubernetes.objects import APP_CONTAINER
from ignite_server.backends.pod_logs import MAX_LOG_LINE_BYTES, PodLogDemux
from ignite_server.domain.models import LogStream

log = structlog.get_logger(__name__)

#: A pod whose container restarts more often than this is crash-looping;
#: its logs are no longer followed (its start failure is reported instead).
MAX_FOLLOWS = 5


async def follow(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    demux: PodLogDemux,
    restarts: Callable[[], int | None],
) -> None:
    """Emit the pod's lines until the pod is gone (``restarts`` → None) or
    its container ended without a restart."""
    for _ in range(MAX_FOLLOWS):
        seen = restarts()
        if seen is None:
            return
        try:
            response: Any = await core.read_namespaced_pod_log(
                name, namespace, container=APP_CONTAINER, follow=True, _preload_content=False
            )
            async with response:
                while True:
                    try:
                        raw = await response.content.readline()
                    except ValueError:
                        raw = await response.content.read(MAX_LOG_LINE_BYTES)
                    if not raw:
                        break
                    demux.emit(raw.rstrip(b"\n"), LogStream.STDOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("kubernetes.logs.follow_failed", pod=name, error=str(exc))
        # The stream ends when the container does: wait for a restart.
        for _ in range(20):
            await asyncio.sleep(0.5)
            now = restarts()
            if now is None:
                return
            if now != seen:
                break
        else:
            return
