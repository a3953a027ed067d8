"""Plain, immutable domain types: what core works on instead of protobufs.

Enum values mirror the numbers of the proto enums of the same name so the API
layer converts with ``int()``; nothing here imports protobuf or grpc.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class RuntimeKind(enum.StrEnum):
    """The language of a managed-runtime app."""

    PYTHON = "python"
    GO = "go"
    RUST = "rust"
    DENO = "deno"


class RuntimeTarget(enum.IntEnum):
    UNSPECIFIED = 0
    NATIVE = 1
    WASM = 2


class ResourceTier(enum.IntEnum):
    UNSPECIFIED = 0
    SMALL = 1
    MEDIUM = 2
    LARGE = 3
    XLARGE = 4


class ScaleMetric(enum.IntEnum):
    UNSPECIFIED = 0
    REQUEST_RATE = 1
    CONCURRENCY = 2


class DeploymentState(enum.IntEnum):
    UNSPECIFIED = 0
    PROVISIONING = 1
    DEPLOYED = 2
    COLD = 3
    ARCHIVED = 4
    ACTIVATING = 5
    FAILED = 6
    COMPILING = 7
    CREATED = 8


class VersionStatus(enum.IntEnum):
    UNSPECIFIED = 0
    COMPILING = 1
    DRAFT = 2
    ACTIVE = 3
    SUPERSEDED = 4
    FAILED = 5
    STARTING = 6
    READY = 7


#: Versions that may take traffic (the gate has passed, or they served).
SERVABLE_STATUSES = frozenset({VersionStatus.ACTIVE, VersionStatus.SUPERSEDED, VersionStatus.READY})


class RolloutState(enum.IntEnum):
    UNSPECIFIED = 0
    RUNNING = 1
    COMPLETED = 2
    ROLLED_BACK = 3
    CANCELLED = 4


class StorageMode(enum.IntEnum):
    UNSPECIFIED = 0
    PERSISTENT = 1
    EPHEMERAL = 2
    TTL = 3


class CodeKind(enum.IntEnum):
    UNSPECIFIED = 0
    SDK = 1
    UPLOAD_IMAGE = 2
    GIT_IMAGE = 3
    PREBUILT = 4


class DeploymentMode(enum.IntEnum):
    UNSPECIFIED = 0
    COMPILATION = 1
    IMAGE = 2


class ExecutionStatus(enum.IntEnum):
    UNSPECIFIED = 0
    PENDING = 1
    RUNNING = 2
    COMPLETED = 3
    FAILED = 4
    TIMEOUT = 5
    CANCELLED = 6


class LogStream(enum.IntEnum):
    UNSPECIFIED = 0
    STDOUT = 1
    STDERR = 2
    PLATFORM = 3
    BUILD = 4


class UploadKind(enum.StrEnum):
    SOURCE_FILE = "source_file"
    ARCHIVE = "archive"
    PREBUILT_IMAGE = "prebuilt_image"
    IMAGE_FROM_CODE = "image_from_code"
    IMAGE_FROM_GIT = "image_from_git"


@dataclass(frozen=True)
class RuntimeSpec:
    """Which managed runtime builds and runs an app."""

    kind: RuntimeKind
    version: str = ""
    target: RuntimeTarget = RuntimeTarget.UNSPECIFIED
    toolchain: str = ""


@dataclass(frozen=True)
class ImageSpec:
    """The image branch of a version's code, but for the uploaded build
    context (stored as the version's code): see docs/runtimes/images.md."""

    #: PrebuiltImage.image_ref as given (a tag or a digest), or the git
    #: repository's URL for ImageFromGit; "" for ImageFromCode.
    source: str = ""
    #: ImageFromGit: branch, tag or commit ("" = the default branch).
    git_ref: str = ""
    #: ImageFromGit: the build context's folder inside the repository.
    context_dir: str = ""
    #: The Dockerfile inside the build context ("" = "Dockerfile").
    dockerfile_path: str = ""
    #: Name of the secret with registry (prebuilt) or git credentials.
    secret_ref: str = ""
    #: GET path answering once the container is ready ("" = port open).
    health_path: str = ""

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}

    @classmethod
    def from_json(cls, raw: Mapping[str, str]) -> ImageSpec:
        return cls(**{k: str(v) for k, v in raw.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Secret:
    """Stored credentials, referred to by name from image sources."""

    organization: str
    name: str
    username: str
    created_at_ms: int
    updated_at_ms: int
    #: The registry or git hosts it is sent to (domain/hosts.py spelling);
    #: it is sent to no other.
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Limits:
    """Explicit resource overrides; None means "from the tier"."""

    memory_mb: int | None = None
    cpu_millicores: int | None = None
    timeout_secs: int | None = None


@dataclass(frozen=True)
class Resources:
    """The effective per-pod resources after tier and overrides are combined."""

    memory_mb: int
    cpu_millicores: int
    timeout_secs: int


@dataclass(frozen=True)
class Scaling:
    """Autoscaling bounds with defaults applied (see core/defaults.py)."""

    max_replicas: int
    reserved_capacity: int
    scale_threshold: int
    scale_metric: ScaleMetric
    scaledown_period_secs: int


@dataclass(frozen=True)
class VersionSettings:
    """What a version's pods start and scale with, snapshotted at publish
    (docs/rollouts.md says which settings are a version's)."""

    tier: ResourceTier
    limits: Limits
    scaling: Scaling
    env: Mapping[str, str]
    max_concurrency: int


@dataclass(frozen=True)
class TrafficTarget:
    """One version's share of an app's traffic, in percent."""

    version: int
    percent: int


@dataclass(frozen=True)
class App:
    """An app's stored settings (AppMeta without the live deployment state)."""

    organization: str
    name: str
    runtime: RuntimeSpec | None
    tier: ResourceTier
    limits: Limits
    scaling: Scaling
    env: Mapping[str, str]
    storage_mode: StorageMode
    ttl_seconds: int
    description: str
    input_schema: str
    output_schema: str
    mcp_enabled: bool
    max_concurrency: int
    allow_unauthenticated: bool
    active_version: int
    code_kind: CodeKind
    deployment_mode: DeploymentMode
    image_ref: str
    created_at_ms: int
    updated_at_ms: int
    #: How requests without a version or tag are split; empty: all to
    #: active_version.
    traffic: tuple[TrafficTarget, ...] = ()
    #: Tag → the version it names.
    tags: Mapping[str, int] = field(default_factory=dict)
    #: Its host label is also another app's, from before labels were made
    #: unique (store/migrations/0010_app_hosts.sql): its URL serves neither.
    host_disputed: bool = False

    @property
    def id(self) -> str:
        """The wire id, "org/name"."""
        return f"{self.organization}/{self.name}"

    @property
    def version_settings(self) -> VersionSettings:
        """The settings a version published now would snapshot."""
        return VersionSettings(
            tier=self.tier,
            limits=self.limits,
            scaling=self.scaling,
            env=self.env,
            max_concurrency=self.max_concurrency,
        )

    def share_of(self, version: int) -> int:
        """``version``'s share of the traffic in percent."""
        if not self.traffic:
            return 100 if version == self.active_version and version else 0
        return sum(t.percent for t in self.traffic if t.version == version)

    @property
    def serving_versions(self) -> frozenset[int]:
        """Versions with a share of the traffic."""
        if not self.traffic:
            return frozenset({self.active_version} if self.active_version else ())
        return frozenset(t.version for t in self.traffic)

    @property
    def host_label(self) -> str:
        """The one DNS label of its direct URL's host name."""
        return host_label(self.organization, self.name)


def host_label(organization: str, app: str) -> str:
    """``<app>-<org>``: the label of an app's URL host, unique across the
    platform."""
    return f"{app}-{organization}"


@dataclass(frozen=True)
class Version:
    """One version of an app; version 0 is the mutable draft."""

    organization: str
    app: str
    version: int
    status: VersionStatus
    code_hash: str
    code_kind: CodeKind
    runtime: RuntimeSpec | None
    created_at_ms: int
    code_size_bytes: int
    artifact_digest: str = ""
    error: str = ""
    build_log: str = ""
    #: The image the version runs, by digest, once built (image apps).
    image_ref: str = ""
    upload_kind: UploadKind | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    #: Image apps: where the image comes from and how it is probed.
    image: ImageSpec | None = None
    #: What its pods start and scale with; None for the draft (it runs with
    #: the app's settings) and for versions published before versions
    #: carried settings.
    settings: VersionSettings | None = None
    #: Who published it (the caller's subject) and the note they gave.
    published_by: str = ""
    message: str = ""

    @property
    def deployment_mode(self) -> DeploymentMode:
        return deployment_mode_of(self.code_kind)


def deployment_mode_of(kind: CodeKind) -> DeploymentMode:
    """Seed 001: SDK code compiles; every image branch runs an image."""
    if kind == CodeKind.UNSPECIFIED:
        return DeploymentMode.UNSPECIFIED
    return DeploymentMode.COMPILATION if kind == CodeKind.SDK else DeploymentMode.IMAGE


@dataclass(frozen=True)
class CodeUpload:
    """Code as SaveDraft received it, before it is stored."""

    kind: UploadKind
    runtime: RuntimeSpec | None
    data: bytes = b""
    build_args: Mapping[str, str] = field(default_factory=dict)
    image: ImageSpec | None = None

    @property
    def code_kind(self) -> CodeKind:
        return {
            UploadKind.SOURCE_FILE: CodeKind.SDK,
            UploadKind.ARCHIVE: CodeKind.SDK,
            UploadKind.PREBUILT_IMAGE: CodeKind.PREBUILT,
            UploadKind.IMAGE_FROM_CODE: CodeKind.UPLOAD_IMAGE,
            UploadKind.IMAGE_FROM_GIT: CodeKind.GIT_IMAGE,
        }[self.kind]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing."""

    items: list[T]
    next_page_token: str


# --- invocation -------------------------------------------------------------


@dataclass(frozen=True)
class InvocationRequest:
    """The HTTP request an invocation delivers to a pod."""

    method: str  # "GET", "POST", ...
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Submission:
    """An asynchronous invocation as InvokeAsync asks for it."""

    organization: str
    app: str
    request: InvocationRequest
    #: The published version to run; 0 = the active one when it runs.
    version: int = 0
    #: A second submission with the same key returns the first's execution.
    idempotency_key: str = ""
    #: A tag naming the version to run (resolved at submission: the
    #: execution runs the version the tag names then); not with ``version``.
    tag: str = ""


@dataclass(frozen=True)
class RunTarget:
    """Everything needed to run one version of an app in a pod."""

    app: App
    version: Version
    resources: Resources
    artifact_dir: Path

    @functools.cached_property
    def key(self) -> tuple[str, int, str]:
        """(app id, version, fingerprint of what its pods start with): pods
        started with other settings (env, limits, concurrency) are not
        interchangeable. Computed once per resolved target."""
        fingerprint = json.dumps(
            [
                sorted(self.app.env.items()),
                [self.resources.memory_mb, self.resources.cpu_millicores],
                self.app.max_concurrency,
                str(self.artifact_dir),
            ]
        )
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        return (self.app.id, self.version.version, digest)


@dataclass(frozen=True)
class ResponseHead:
    status_code: int
    headers: Mapping[str, str]
    execution_id: str
    #: The version that serves the request.
    version: int = 0


@dataclass(frozen=True)
class ResponseChunk:
    data: bytes


@dataclass(frozen=True)
class ResponseTrailer:
    total_body_bytes: int
    duration_ms: int
    trailers: Mapping[str, str] = field(default_factory=dict)
    #: Time this invocation waited for a pod to start (0 when one was warm).
    cold_start_ms: int = 0
    #: CPU the pod used while this invocation ran (shared with concurrent ones).
    cpu_used_ms: int = 0
    #: The pod's peak memory so far.
    memory_used_mb: int = 0


ResponseFrame = ResponseHead | ResponseChunk | ResponseTrailer


@dataclass(frozen=True)
class ScalingInput:
    """Scaling as a caller gives it: zeros mean "the default"."""

    max_replicas: int = 0
    reserved_capacity: int = 0
    scale_threshold: int = 0
    scale_metric: ScaleMetric = ScaleMetric.UNSPECIFIED
    scaledown_period_secs: int = 0


@dataclass(frozen=True)
class AppSettings:
    """The settings of an app a caller may choose (CreateApp, UpdateApp)."""

    runtime: RuntimeSpec | None = None
    tier: ResourceTier = ResourceTier.UNSPECIFIED
    limits: Limits = field(default_factory=Limits)
    scaling: ScalingInput | Scaling = field(default_factory=ScalingInput)
    env: Mapping[str, str] = field(default_factory=dict)
    storage_mode: StorageMode = StorageMode.UNSPECIFIED
    ttl_seconds: int = 0
    description: str = ""
    input_schema: str = ""
    output_schema: str = ""
    mcp_enabled: bool = False
    max_concurrency: int = 0
    allow_unauthenticated: bool = False


@dataclass(frozen=True)
class RolloutPolicy:
    """How a gradual rollout moves traffic and judges each step (defaults
    filled in by core/gradual_rollouts.py)."""

    steps: tuple[int, ...]
    step_secs: int
    max_error_rate_increase_pct: int
    max_p95_increase_pct: int
    min_requests: int


@dataclass(frozen=True)
class RolloutStatus:
    """A gradual rollout as stored: where it is and what it last decided."""

    organization: str
    app: str
    state: RolloutState
    from_version: int
    to_version: int
    policy: RolloutPolicy
    step: int
    decision: str
    started_at_ms: int
    step_started_at_ms: int
    updated_at_ms: int

    @property
    def app_id(self) -> str:
        return f"{self.organization}/{self.app}"

    @property
    def percent(self) -> int:
        """to_version's share of the traffic now."""
        if self.state == RolloutState.COMPLETED:
            return 100
        if self.state != RolloutState.RUNNING:
            return 0
        return self.policy.steps[self.step]


@dataclass(frozen=True)
class AppView:
    """An app as GetApp shows it: stored settings plus what really runs."""

    app: App
    deployment_state: DeploymentState
    ready_replicas: int
    status_message: str
    public_urls: list[str]
    #: Its gradual rollout, the running or the last one (GetApp only).
    rollout: RolloutStatus | None = None


# --- executions and logs ----------------------------------------------------


@dataclass(frozen=True)
class ExecutionMetrics:
    cold_start_ms: int = 0
    execution_ms: int = 0
    billed_duration_ms: int = 0
    cpu_used_ms: int = 0
    memory_used_mb: int = 0
    result_size_bytes: int = 0


@dataclass(frozen=True)
class Execution:
    """The stored record of an asynchronous invocation."""

    id: str
    organization: str
    app: str
    status: ExecutionStatus
    requested_version: int
    function_version: int
    result: bytes
    status_code: int
    error: str
    error_class: str
    metrics: ExecutionMetrics
    attempts: int
    idempotency_key: str
    created_at_ms: int
    started_at_ms: int
    completed_at_ms: int

    @property
    def app_id(self) -> str:
        return f"{self.organization}/{self.app}"

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.TIMEOUT,
        ExecutionStatus.CANCELLED,
    }
)


@dataclass(frozen=True)
class ClaimedExecution:
    """An execution a worker holds under a lease, with its request."""

    execution: Execution
    request: InvocationRequest


@dataclass(frozen=True)
class LogEntry:
    timestamp_ms: int
    organization: str
    app: str
    version: int
    execution_id: str
    stream: LogStream
    message: str

    @property
    def app_id(self) -> str:
        return f"{self.organization}/{self.app}"
