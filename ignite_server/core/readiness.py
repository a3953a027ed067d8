"""The readiness gate: a version takes traffic only once it is ready.

Every path that gives a version traffic (PublishDraft, a settings change,
RollbackApp, SetTraffic) first asks the app runner to have one pod of the
version started from its artifact and answering its health check
(``AppRunner.prepare``): for Python that means the handler module imported
with all its imports; for Go and Rust the binary serving; for an image its
health path (or port) answering. The pod is started the way a cold request
starts one, so it serves the first requests afterwards, and the autoscaler
lets it go after the app's scale-down period (an app with no reserved
capacity goes back to zero then).

When the version is not ready within ``timeout_secs``, the change fails
with FAILED_PRECONDITION ``VERSION_NOT_READY`` and the pod's reason (how it
exited, out of memory, the timeout, the health check; for a Python import
error the file:line in the app and the traceback's last frame), and the
caller moves no traffic. When its pod may not even start, because the
machine's pod memory or the organization's quota is used up (capacity.py),
the refusal keeps its own RESOURCE_EXHAUSTED ``CAPACITY`` or
``QUOTA_EXCEEDED``: nothing is wrong with the version, and retrying once
memory is free can succeed. Both outcomes are written to the app's logs.
"""

from __future__ import annotations

import time

import structlog

from ignite_server.core.logs import LogService
from ignite_server.domain.errors import FailedPrecondition, IgniteError, ResourceExhausted
from ignite_server.domain.models import RunTarget
from ignite_server.ports.app_runner import AppRunner

log = structlog.get_logger(__name__)

#: How long a version may take to become ready: a Python import of heavy
#: packages takes seconds, a cluster pod scheduling and fetching its
#: artifact more; an image that never answers its health path should not
#: hold a deploy for minutes.
DEFAULT_READINESS_TIMEOUT_SECS = 60.0
#: What the activator prefixes a failed start with; the gate says it itself.
_STARTED_PREFIX = "the app could not be started: "
#: Admission's refusals (core/capacity.py): the platform's, not the version's.
_NO_ROOM = ("CAPACITY", "QUOTA_EXCEEDED")


class ReadinessGate:
    """Makes versions ready before they take traffic (module docstring)."""

    def __init__(
        self,
        runner: AppRunner | None,
        logs: LogService | None,
        timeout_secs: float = DEFAULT_READINESS_TIMEOUT_SECS,
    ) -> None:
        self._runner = runner
        self._logs = logs
        self.timeout_secs = timeout_secs

    async def ready(self, target: RunTarget, serving: int = 0) -> None:
        """Return once ``target``'s version serves; VERSION_NOT_READY if not
        (saying that version ``serving``, if any, keeps serving)."""
        if self._runner is None:
            return  # a server without pods proves nothing and runs nothing
        app, number = target.app, target.version.version
        started = time.monotonic()
        try:
            await self._runner.prepare(target, self.timeout_secs)
        except IgniteError as err:
            why = self._why(err, target)
            self._note(target, f"version {number} did not become ready: {why}")
            log.info("version.not_ready", app=app.id, version=number, reason=err.reason)
            keeps = f" (version {serving} keeps serving)" if serving and serving != number else ""
            if isinstance(err, ResourceExhausted) and err.reason in _NO_ROOM:
                raise ResourceExhausted(
                    f"version {number} cannot start{keeps}: {why}",
                    reason=err.reason,
                    metadata={**err.metadata, "app_id": app.id, "version": str(number)},
                ) from None
            raise FailedPrecondition(
                f"version {number} did not become ready{keeps}: {why}",
                reason="VERSION_NOT_READY",
                metadata={"app_id": app.id, "version": str(number)},
            ) from None
        took_ms = int((time.monotonic() - started) * 1000)
        self._note(
            target, f"version {number} is ready (a pod answered its health check in {took_ms} ms)"
        )

    def _why(self, err: IgniteError, target: RunTarget) -> str:
        if err.reason in ("ACTIVATION_TIMEOUT", "NO_CAPACITY"):
            image = target.version.image
            probe = (
                f"GET {image.health_path}"
                if image is not None and image.health_path
                else "its health check"
            )
            return f"no pod answered {probe} within {self.timeout_secs:g}s"
        return err.message.removeprefix(_STARTED_PREFIX)

    def _note(self, target: RunTarget, message: str) -> None:
        if self._logs is not None:
            self._logs.platform_event(
                target.app.organization, target.app.name, target.version.version, "", message
            )
