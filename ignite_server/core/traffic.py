"""Changes of an app's traffic split and tags (docs/rollouts.md); which
version one request runs is routing.py.

A new split is checked (1 to
``MAX_SPLIT_VERSIONS`` versions, shares of 1-100 % summing to 100), every
version that gains traffic is made ready first (the readiness gate), and the
version with the largest share becomes the active one (ties keep the
current one, else the newest), so ``active_version`` always names what
serves most. A split of one version is no split. Tags name versions for
their own URL and ``Invoke`` by tag; tagging makes nothing start (a tag's
first request starts its pod, as any cold request does).
"""

from __future__ import annotations

import re
import time

import structlog

from ignite_server.core import defaults
from ignite_server.core.app_locks import AppLocks
from ignite_server.core.app_views import AppViews
from ignite_server.core.gradual_rollouts import GradualRollouts
from ignite_server.core.readiness import ReadinessGate
from ignite_server.core.rollout import Rollout
from ignite_server.core.run_targets import RunTargets, check_servable
from ignite_server.core.validation import TAG_URL_SEPARATOR, check_app_ref, check_version
from ignite_server.domain.errors import FailedPrecondition, InvalidArgument
from ignite_server.domain.models import AppView, TrafficTarget
from ignite_server.ports.app_store import AppStore

log = structlog.get_logger(__name__)

#: Versions one split may hold: a canary and a few pinned ones; more is a
#: configuration nobody can reason about, and each keeps pods warm.
MAX_SPLIT_VERSIONS = 10
#: A tag: lower-case letters, digits and single dashes, starting with a
#: letter. No "--": the first "---" of a tag URL's label then always ends
#: the tag (docs/rollouts.md, "Tag URLs").
_TAG = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*")
_HOST_LABEL_MAX = 63


def check_traffic(traffic: list[TrafficTarget]) -> list[TrafficTarget]:
    """A split as given, checked; shares of 0 are dropped, the rest sorted."""
    kept = [t for t in traffic if t.percent]
    if len(kept) > MAX_SPLIT_VERSIONS:
        raise _bad(f"a split holds at most {MAX_SPLIT_VERSIONS} versions", "TOO_MANY_VERSIONS")
    seen: set[int] = set()
    for target in kept:
        check_version(target.version, "traffic.version")
        if target.version == 0:
            raise _bad("the draft (version 0) takes no traffic; publish it", "INVALID_VERSION")
        if target.version in seen:
            raise _bad(f"version {target.version} is given twice", "DUPLICATE_VERSION")
        seen.add(target.version)
        if not 0 < target.percent <= 100:
            raise _bad("traffic.percent must be between 0 and 100", "OUT_OF_RANGE")
    total = sum(t.percent for t in kept)
    if kept and total != 100:
        raise _bad(f"the shares add up to {total}%, not 100%", "TRAFFIC_NOT_100")
    return sorted(kept, key=lambda t: t.version)


def primary_of(traffic: list[TrafficTarget], active: int) -> int:
    """The version a split makes active: the largest share; on a tie the
    current active one if tied, else the newest."""
    top = max(t.percent for t in traffic)
    tied = [t.version for t in traffic if t.percent == top]
    return active if active in tied else max(tied)


def check_tag(tag: str, organization: str, name: str) -> str:
    """A tag: its pattern, and a tag URL label that fits a DNS label."""
    if not tag:
        raise _bad("tag is required", "TAG_REQUIRED", field="tag")
    if not _TAG.fullmatch(tag):
        raise _bad(
            f"tag {tag[:80]!r} must be lower-case letters, digits and single '-',"
            " starting with a letter and ending with a letter or digit",
            "INVALID_TAG",
            field="tag",
        )
    label = f"{tag}{TAG_URL_SEPARATOR}{name}-{organization}"
    if len(label) > _HOST_LABEL_MAX:
        raise _bad(
            f"the tag's URL label {label!r} is longer than {_HOST_LABEL_MAX} characters;"
            " choose a shorter tag",
            "TAG_TOO_LONG_FOR_URL",
            field="tag",
        )
    return tag


def _bad(message: str, reason: str, field: str = "traffic") -> InvalidArgument:
    return InvalidArgument(message, reason=reason, metadata={"field": field})


def _now_ms() -> int:
    return int(time.time() * 1000)


class TrafficSplits:
    """Sets an app's traffic split and tags (see the module docstring)."""

    def __init__(
        self,
        store: AppStore,
        targets: RunTargets,
        gate: ReadinessGate,
        mover: Rollout,
        rollouts: GradualRollouts,
        locks: AppLocks,
        views: AppViews,
    ) -> None:
        self._store = store
        self._targets = targets
        self._gate = gate
        self._mover = mover
        self._rollouts = rollouts
        self._locks = locks
        self._views = views

    async def set_traffic(
        self, organization: str, name: str, traffic: list[TrafficTarget]
    ) -> AppView:
        """Split the app's traffic as given (empty: all to the active version)."""
        check_app_ref(organization, name)
        split = check_traffic(traffic)
        async with self._locks.hold(organization, name):
            app = await self._store.get_app(organization, name)
            if not split:
                if not app.active_version:
                    raise FailedPrecondition(
                        f"app {app.id} has no published version; publish the draft first",
                        reason="NOT_PUBLISHED",
                        metadata={"app_id": app.id},
                    )
                split = [TrafficTarget(app.active_version, 100)]
            for target in split:
                version = await self._store.get_version(organization, name, target.version)
                check_servable(version)
                await self._gate.ready(self._targets.target_of(app, version), app.active_version)
            primary = primary_of(split, app.active_version)
            shares = ", ".join(f"v{t.version} {t.percent}%" for t in split)
            await self._rollouts.cancel(app, f"the traffic was set to {shares}")
            app = await self._store.activate(
                organization, name, primary, _now_ms(), traffic=split if len(split) > 1 else ()
            )
            await self._mover.moved(app)
        log.info("app.traffic_set", app=app.id, traffic=shares, active=primary)
        return await self._rollouts.shown(self._views.view(app))

    async def tag(self, organization: str, name: str, tag: str, version: int) -> AppView:
        check_app_ref(organization, name)
        check_tag(tag, organization, name)
        check_version(version)
        if version == 0:
            raise _bad("a tag names a published version (1 or more)", "INVALID_VERSION", "version")
        app = await self._store.set_tag(
            organization, name, tag, version, defaults.MAX_TAGS, _now_ms()
        )
        self._targets.forget(organization, name)
        log.info("app.tagged", app=app.id, tag=tag, version=version)
        return self._views.view(app)

    async def untag(self, organization: str, name: str, tag: str) -> AppView:
        check_app_ref(organization, name)
        app = await self._store.remove_tag(organization, name, tag, _now_ms())
        self._targets.forget(organization, name)
        log.info("app.untagged", app=app.id, tag=tag)
        return self._views.view(app)
