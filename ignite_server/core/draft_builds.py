"""Building an app's draft: once per change of its code, the outcome
recorded on the draft (version 0) and the output in the app's logs (stream
BUILD).

``current`` is the one gate every path that runs or publishes a draft goes
through: the draft as it stands, built now if its artifact is not current,
or the reason it cannot be (not compiled yet for runtimes with an explicit
compile step, such as Rust; its build failed).
"""

from __future__ import annotations

import time

from ignite_server.core.artifacts import Artifacts
from ignite_server.core.logs import LogService
from ignite_server.domain.errors import FailedPrecondition
from ignite_server.domain.models import LogEntry, LogStream, Version, VersionStatus
from ignite_server.observability import metrics, tracing
from ignite_server.ports.app_store import AppStore, BuildOutcome


class DraftBuilds:
    """Builds drafts and remembers which apps are compiling right now."""

    def __init__(self, store: AppStore, artifacts: Artifacts, logs: LogService | None) -> None:
        self._store = store
        self._artifacts = artifacts
        self._logs = logs
        #: App ids with a build under way (their state reads COMPILING).
        self.compiling: set[str] = set()

    async def build(self, draft: Version) -> Version:
        """Build the draft and record the outcome; return the draft after it."""
        app_id = f"{draft.organization}/{draft.app}"
        self._artifacts.require_runnable(draft)
        self.compiling.add(app_id)
        runtime = draft.runtime.kind if draft.runtime else "unknown"
        started = time.monotonic()
        verdict = "failed"
        try:
            with tracing.span("ignite.build", {tracing.APP: app_id, "ignite.runtime": runtime}):
                result = await self._artifacts.build(draft)
                if not result.ok:
                    tracing.mark_error("the build failed")
            verdict = "succeeded" if result.ok else "failed"
        finally:
            self.compiling.discard(app_id)
            metrics.count(metrics.BUILDS, runtime, verdict)
            metrics.observe(metrics.BUILD_DURATION, time.monotonic() - started, runtime)
        self._log_build(draft, result.log, result.error)
        outcome = BuildOutcome(
            code_hash=draft.code_hash,
            status=VersionStatus.DRAFT if result.ok else VersionStatus.FAILED,
            artifact_digest=result.digest if result.ok else "",
            error=result.error,
            build_log=result.log,
            image_ref=result.image_ref,
        )
        recorded = await self._store.record_build(draft.organization, draft.app, 0, outcome)
        if recorded is None:
            raise FailedPrecondition(
                "the draft changed while it was being built; compile again",
                reason="DRAFT_CHANGED",
                metadata={"app_id": app_id},
            )
        return recorded

    async def current(self, draft: Version, *, publishing: bool = False) -> Version:
        """The draft with a current artifact (built now when it has none and
        its runtime builds on demand); FAILED_PRECONDITION when it must be
        compiled first or its build failed. ``publishing``: a prebuilt
        image's reference is resolved again (its tag may have moved)."""
        app_id = f"{draft.organization}/{draft.app}"
        self._artifacts.require_runnable(draft)
        refresh = publishing and self._artifacts.resolves_at_publish(draft)
        if refresh or not self._artifacts.is_current(draft):
            if self._artifacts.needs_explicit_compile(draft):
                kind = draft.runtime.kind if draft.runtime else ""
                raise FailedPrecondition(
                    f"the {kind} draft must be compiled first: run CompileDraft"
                    " (dodil ignite draft compile)",
                    reason="DRAFT_NOT_COMPILED",
                    metadata={"app_id": app_id},
                )
            draft = await self.build(draft)
        if draft.status == VersionStatus.FAILED:
            raise FailedPrecondition(
                f"the draft failed to build: {draft.error}",
                reason="BUILD_FAILED",
                metadata={"app_id": app_id},
            )
        return draft

    def _log_build(self, draft: Version, output: str, error: str) -> None:
        """The build's output joins the app's logs (stream BUILD, version 0)."""
        if self._logs is None:
            return
        now = int(time.time() * 1000)
        lines = output.splitlines() + ([f"build failed: {error}"] if error else [])
        for line in lines:
            self._logs.emit(
                LogEntry(now, draft.organization, draft.app, 0, "", LogStream.BUILD, line)
            )
