"""Admission of pods against the memory there is (Kubernetes' scheduler and
ResourceQuota, for one machine).

Every pod is started with a memory limit; the sum of the limits of the pods
that run is what the platform has promised. ``PodCapacity`` keeps that sum,
in all and per organization, and admits a pod start only if its limit still
fits both:

- the machine's pod capacity (``total_mb``: the local backend's parent
  cgroup limit, the host's memory less a reserve), else RESOURCE_EXHAUSTED
  ``CAPACITY``: no quota change would help, the machine is full;
- the organization's ``max_pod_memory_mb`` quota, else ``QUOTA_EXCEEDED``
  (quota ``pod_memory_mb``): one tenant's pods cannot take the memory every
  other tenant's next pod needs.

A grant is given back when its pod has exited (a draining pod still holds
its memory). Idle pods are a cache, not a promise: when a pod does not fit
the machine, ``admit_reclaiming`` first has the activator stop pods that
run nothing beyond their revision's reserved ones (those idle longest
first, of any organization) and admits the pod once their memory is back;
only what is busy or reserved makes a start fail with CAPACITY.

Admission counts limits, not use: a pod may use up to its limit, and the
kernel enforces the parent limit on the sum of their use, so admitted pods
can never push the host into its global OOM killer.

Publishing (and changing the settings of) an app with ``reserved_capacity``
checks the same two bounds against every reservation already made
(``check_reservation``): the version's warm pods must fit next to every
other app's, and within the organization's ``max_reserved_memory_mb``; a
version whose reserved pods cannot all run is refused before it takes
traffic rather than left half-started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from ignite_server.core.settings import resources_of
from ignite_server.domain.errors import ResourceExhausted
from ignite_server.domain.models import App
from ignite_server.domain.quotas import Quotas, quota_exceeded
from ignite_server.ports.app_store import AppStore

log = structlog.get_logger(__name__)

#: ErrorInfo reason of a refusal because the machine has no room.
CAPACITY = "CAPACITY"
#: Stops idle pods until at least the given MiB are being freed; returns
#: once they have exited (their grants given back).
Reclaimer = Callable[[int], Awaitable[None]]


@dataclass(eq=False)
class PodGrant:
    """The memory one pod was admitted with; given back once."""

    organization: str
    memory_mb: int
    released: bool = False


def capacity_exhausted(what: str, wanted_mb: int, free_mb: int, total_mb: int) -> ResourceExhausted:
    """The refusal of ``what`` for want of memory on the machine."""
    return ResourceExhausted(
        f"no room for {what}: it wants {wanted_mb} MiB of pod memory and the platform has "
        f"{free_mb} of {total_mb} MiB left; use less memory or fewer pods, or retry when "
        "others stop",
        reason=CAPACITY,
        metadata={
            "wanted_mb": str(wanted_mb),
            "free_mb": str(free_mb),
            "total_mb": str(total_mb),
        },
    )


class PodCapacity:
    """Memory promised to running pods, in all and per organization."""

    def __init__(self, total_mb: int | None, quotas: Quotas) -> None:
        #: The machine's pod memory; None where the backend's own scheduler
        #: decides (Kubernetes): then only the quotas apply.
        self.total_mb = total_mb
        self.quotas = quotas
        self.used_mb = 0
        self._by_org: dict[str, int] = {}
        self._reclaimer: Reclaimer | None = None

    def reclaim_with(self, reclaimer: Reclaimer) -> None:
        """What stops idle pods when a start needs their memory."""
        self._reclaimer = reclaimer

    def used_by(self, organization: str) -> int:
        return self._by_org.get(organization, 0)

    def admit(self, organization: str, memory_mb: int, what: str = "a pod") -> PodGrant:
        """Admit a pod of ``memory_mb`` for ``organization``, or raise."""
        if self.total_mb is not None and self.used_mb + memory_mb > self.total_mb:
            raise capacity_exhausted(
                what, memory_mb, max(0, self.total_mb - self.used_mb), self.total_mb
            )
        used = self.used_by(organization)
        if used + memory_mb > self.quotas.max_pod_memory_mb:
            raise quota_exceeded(
                organization,
                "pod_memory_mb",
                self.quotas.max_pod_memory_mb,
                used,
                "MiB",
                f"{what} of {memory_mb} MiB",
            )
        self.used_mb += memory_mb
        self._by_org[organization] = used + memory_mb
        return PodGrant(organization, memory_mb)

    async def admit_reclaiming(
        self, organization: str, memory_mb: int, what: str = "a pod"
    ) -> PodGrant:
        """``admit``, after stopping idle pods when the machine is short of
        memory; CAPACITY only when busy and reserved pods hold it."""
        short = (
            self.used_mb + memory_mb - self.total_mb
            if self.total_mb is not None and memory_mb <= self.total_mb
            else 0
        )
        if short > 0 and self._reclaimer is not None:
            log.info("capacity.reclaiming", wanted_mb=memory_mb, short_mb=short)
            await self._reclaimer(short)
        return self.admit(organization, memory_mb, what)

    def release(self, grant: PodGrant) -> None:
        """Give back what ``grant`` holds (once, however often called)."""
        if grant.released:
            return
        grant.released = True
        self.used_mb -= grant.memory_mb
        left = self._by_org.get(grant.organization, 0) - grant.memory_mb
        if left > 0:
            self._by_org[grant.organization] = left
        else:
            self._by_org.pop(grant.organization, None)

    def check_reservation(self, app: App, reserved: Iterable[App]) -> None:
        """Raise unless ``app``'s pods fit at all, and its reserved pods fit
        beside the reservations of ``reserved`` (every app with reserved
        capacity that serves; ``app`` itself among them is ignored)."""
        memory = resources_of(app).memory_mb
        wanted = app.scaling.reserved_capacity * memory
        what = f"app {app.id}"
        if self.total_mb is not None and memory > self.total_mb:
            raise capacity_exhausted(f"a pod of {what}", memory, self.total_mb, self.total_mb)
        if memory > self.quotas.max_pod_memory_mb:
            raise quota_exceeded(
                app.organization,
                "pod_memory_mb",
                self.quotas.max_pod_memory_mb,
                0,
                "MiB",
                f"a pod of {what} ({memory} MiB)",
            )
        if not wanted:
            return
        total = org = 0
        for other in reserved:
            if other.id == app.id:
                continue
            taken = other.scaling.reserved_capacity * resources_of(other).memory_mb
            total += taken
            if other.organization == app.organization:
                org += taken
        if self.total_mb is not None and total + wanted > self.total_mb:
            raise capacity_exhausted(
                f"{what}'s {app.scaling.reserved_capacity} reserved pods",
                wanted,
                max(0, self.total_mb - total),
                self.total_mb,
            )
        if org + wanted > self.quotas.max_reserved_memory_mb:
            raise quota_exceeded(
                app.organization,
                "reserved_memory_mb",
                self.quotas.max_reserved_memory_mb,
                org,
                "MiB",
                f"{what}'s {app.scaling.reserved_capacity} reserved pods of {memory} MiB",
            )


async def check_app_fits(capacity: PodCapacity | None, store: AppStore, app: App) -> None:
    """Raise unless ``app`` (as it is about to serve) fits: its pods at all,
    its reserved pods beside every other reservation (CAPACITY, or the
    organization's QUOTA_EXCEEDED)."""
    if capacity is None:
        return
    others = await store.reserved_apps() if app.scaling.reserved_capacity else []
    capacity.check_reservation(app, others)
