"""Defaults and limits of app settings; docs/limits.md documents each."""

from __future__ import annotations

from ignite_server.domain.models import ResourceTier

#: Memory (MB) and CPU (millicores) of each tier, as seed 001 defines them.
TIERS: dict[ResourceTier, tuple[int, int]] = {
    ResourceTier.SMALL: (256, 250),
    ResourceTier.MEDIUM: (512, 500),
    ResourceTier.LARGE: (1024, 1000),
    ResourceTier.XLARGE: (2048, 2000),
}
DEFAULT_TIER = ResourceTier.SMALL
#: Per-invocation wall-clock limit when the app sets none (Cloud Run: 300 s;
#: one minute keeps runaway handlers cheap and is easy to raise).
DEFAULT_TIMEOUT_SECS = 60

MEMORY_MB_RANGE = (64, 8192)
CPU_MILLICORES_RANGE = (50, 8000)
TIMEOUT_SECS_RANGE = (1, 900)

DEFAULT_MAX_REPLICAS = 10  # seed 001
MAX_REPLICAS_LIMIT = 100
DEFAULT_SCALEDOWN_PERIOD_SECS = 300  # seed 001
SCALEDOWN_PERIOD_RANGE = (1, 86_400)
SCALE_THRESHOLD_LIMIT = 10_000
MAX_CONCURRENCY_LIMIT = 1000

TTL_SECONDS_RANGE = (1, 30 * 86_400)

#: Env: how many variables, how many bytes of names + values in all.
ENV_MAX_ENTRIES = 128
ENV_MAX_TOTAL_BYTES = 32 * 1024
#: Names the platform or the runtimes own; an app may not set them.
ENV_RESERVED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "SHELL", "PWD", "TMPDIR", "HOSTNAME",
        "LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT",
        "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH",
        "GODEBUG", "GOMAXPROCS", "DENO_DIR", "RUST_BACKTRACE",
    }
)  # fmt: skip
#: Prefixes reserved for the platform's own variables.
ENV_RESERVED_PREFIXES = ("IGNITE_",)

#: Tags one app may have (each is a URL the gateway answers).
MAX_TAGS = 20

DESCRIPTION_MAX_CHARS = 4096
SCHEMA_MAX_BYTES = 64 * 1024

#: Code uploads (the source file or the compressed archive).
MAX_CODE_BYTES = 32 * 1024 * 1024
#: The body of an asynchronous invocation, stored with its execution until
#: a worker runs it: the same 32 MiB a synchronous invocation may send.
MAX_ASYNC_BODY_BYTES = 32 * 1024 * 1024
#: Unpacked archives: domain/archives.py (UPLOADS).

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 500
