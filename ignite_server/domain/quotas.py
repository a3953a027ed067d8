"""What one organization may hold of the platform's shared resources.

Every resource a tenant can grow has a cap here; the operator sets them with
the server's ``--quota-*`` flags (``IGNITE_QUOTA_*`` variables), and
docs/limits.md lists each with its default. A request past a cap is refused
with RESOURCE_EXHAUSTED, reason ``QUOTA_EXCEEDED`` and the quota's name,
limit and current use in the ErrorInfo metadata, so a client (or a person
reading the CLI's error) knows which one to ask the operator to raise; a
request the machine itself has no room for is ``CAPACITY`` instead
(ignite_server/core/capacity.py), since no quota change would help.

The defaults are sized so that a handful of organizations share one
2-core, 24 GiB machine without one starving the others, and far above what
a single team's normal use reaches.
"""

from __future__ import annotations

from dataclasses import dataclass

from ignite_server.domain.errors import ResourceExhausted

#: ErrorInfo reason of a refusal by an organization's quota.
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"

#: Apps per organization (Cloud Run allows 1,000 services per region and
#: project; one machine's share is smaller).
DEFAULT_MAX_APPS = 200
#: Memory (MiB) the organization's running pods may hold at once: the sum of
#: their memory limits. Half of the default pod capacity of a 24 GiB host,
#: so two busy tenants cannot both be starved.
DEFAULT_MAX_POD_MEMORY_MB = 8 * 1024
#: Memory (MiB) the organization may keep reserved as warm pods
#: (reserved_capacity times memory of every published app).
DEFAULT_MAX_RESERVED_MEMORY_MB = 4 * 1024
#: Bytes of app log lines stored per organization per UTC day; past it,
#: lines are dropped (with a notice in each app's log) until midnight UTC.
DEFAULT_MAX_LOG_BYTES_PER_DAY = 1024**3
#: Asynchronous executions waiting to run (PENDING) per organization.
DEFAULT_MAX_PENDING_EXECUTIONS = 10_000
#: Executions of one organization running at once, over every server; 0:
#: the server's workers less RUNNING_HEADROOM, so that a few slots are
#: always free for another organization's next execution while one
#: organization alone still gets nearly all of them.
DEFAULT_MAX_RUNNING_EXECUTIONS = 0
RUNNING_HEADROOM = 4


@dataclass(frozen=True)
class Quotas:
    """The per-organization caps in force (one set for every organization)."""

    max_apps: int = DEFAULT_MAX_APPS
    max_pod_memory_mb: int = DEFAULT_MAX_POD_MEMORY_MB
    max_reserved_memory_mb: int = DEFAULT_MAX_RESERVED_MEMORY_MB
    max_log_bytes_per_day: int = DEFAULT_MAX_LOG_BYTES_PER_DAY
    max_pending_executions: int = DEFAULT_MAX_PENDING_EXECUTIONS
    max_running_executions: int = DEFAULT_MAX_RUNNING_EXECUTIONS

    def running_cap(self, workers: int) -> int:
        """The running-executions cap in force on a server with ``workers``
        execution slots."""
        if self.max_running_executions > 0:
            return self.max_running_executions
        # A small pool keeps a quarter of its slots free at most.
        return max(1, workers - min(RUNNING_HEADROOM, workers // 4))


def quota_exceeded(
    organization: str, quota: str, limit: int, used: int, unit: str, what: str
) -> ResourceExhausted:
    """The refusal of a request that would take ``organization`` past ``quota``.

    ``what`` says in words what the request wanted, for the message; the
    metadata carries the quota's name, its limit and the current use."""
    return ResourceExhausted(
        f"{what} would exceed organization {organization}'s quota {quota} "
        f"({used} of {limit} {unit} in use); ask the platform operator to raise it",
        reason=QUOTA_EXCEEDED,
        metadata={
            "quota": quota,
            "limit": str(limit),
            "used": str(used),
            "unit": unit,
            "organization": organization,
        },
    )
