from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RuntimeTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUNTIME_TARGET_UNSPECIFIED: _ClassVar[RuntimeTarget]
    RUNTIME_TARGET_NATIVE: _ClassVar[RuntimeTarget]
    RUNTIME_TARGET_WASM: _ClassVar[RuntimeTarget]

class ResourceTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESOURCE_TIER_UNSPECIFIED: _ClassVar[ResourceTier]
    RESOURCE_TIER_SMALL: _ClassVar[ResourceTier]
    RESOURCE_TIER_MEDIUM: _ClassVar[ResourceTier]
    RESOURCE_TIER_LARGE: _ClassVar[ResourceTier]
    RESOURCE_TIER_XLARGE: _ClassVar[ResourceTier]

class ScaleMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCALE_METRIC_UNSPECIFIED: _ClassVar[ScaleMetric]
    SCALE_METRIC_REQUEST_RATE: _ClassVar[ScaleMetric]
    SCALE_METRIC_CONCURRENCY: _ClassVar[ScaleMetric]

class DeploymentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_STATE_UNSPECIFIED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_PROVISIONING: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_DEPLOYED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_COLD: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_ARCHIVED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_ACTIVATING: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_FAILED: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_COMPILING: _ClassVar[DeploymentState]
    DEPLOYMENT_STATE_CREATED: _ClassVar[DeploymentState]

class VersionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATUS_UNSPECIFIED: _ClassVar[VersionStatus]
    VERSION_STATUS_COMPILING: _ClassVar[VersionStatus]
    VERSION_STATUS_DRAFT: _ClassVar[VersionStatus]
    VERSION_STATUS_ACTIVE: _ClassVar[VersionStatus]
    VERSION_STATUS_SUPERSEDED: _ClassVar[VersionStatus]
    VERSION_STATUS_FAILED: _ClassVar[VersionStatus]
    VERSION_STATUS_STARTING: _ClassVar[VersionStatus]
    VERSION_STATUS_READY: _ClassVar[VersionStatus]

class StorageMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORAGE_MODE_UNSPECIFIED: _ClassVar[StorageMode]
    STORAGE_MODE_PERSISTENT: _ClassVar[StorageMode]
    STORAGE_MODE_EPHEMERAL: _ClassVar[StorageMode]
    STORAGE_MODE_TTL: _ClassVar[StorageMode]

class CodeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODE_KIND_UNSPECIFIED: _ClassVar[CodeKind]
    CODE_KIND_SDK: _ClassVar[CodeKind]
    CODE_KIND_UPLOAD_IMAGE: _ClassVar[CodeKind]
    CODE_KIND_GIT_IMAGE: _ClassVar[CodeKind]
    CODE_KIND_PREBUILT: _ClassVar[CodeKind]

class DeploymentMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPLOYMENT_MODE_UNSPECIFIED: _ClassVar[DeploymentMode]
    DEPLOYMENT_MODE_COMPILATION: _ClassVar[DeploymentMode]
    DEPLOYMENT_MODE_IMAGE: _ClassVar[DeploymentMode]

class RolloutState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_STATE_UNSPECIFIED: _ClassVar[RolloutState]
    ROLLOUT_STATE_RUNNING: _ClassVar[RolloutState]
    ROLLOUT_STATE_COMPLETED: _ClassVar[RolloutState]
    ROLLOUT_STATE_ROLLED_BACK: _ClassVar[RolloutState]
    ROLLOUT_STATE_CANCELLED: _ClassVar[RolloutState]

class HttpMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HTTP_METHOD_UNSPECIFIED: _ClassVar[HttpMethod]
    HTTP_METHOD_GET: _ClassVar[HttpMethod]
    HTTP_METHOD_POST: _ClassVar[HttpMethod]
    HTTP_METHOD_PUT: _ClassVar[HttpMethod]
    HTTP_METHOD_PATCH: _ClassVar[HttpMethod]
    HTTP_METHOD_DELETE: _ClassVar[HttpMethod]
    HTTP_METHOD_HEAD: _ClassVar[HttpMethod]
    HTTP_METHOD_OPTIONS: _ClassVar[HttpMethod]

class ExecutionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_STATUS_UNSPECIFIED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_PENDING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_RUNNING: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_COMPLETED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_FAILED: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_TIMEOUT: _ClassVar[ExecutionStatus]
    EXECUTION_STATUS_CANCELLED: _ClassVar[ExecutionStatus]
RUNTIME_TARGET_UNSPECIFIED: RuntimeTarget
RUNTIME_TARGET_NATIVE: RuntimeTarget
RUNTIME_TARGET_WASM: RuntimeTarget
RESOURCE_TIER_UNSPECIFIED: ResourceTier
RESOURCE_TIER_SMALL: ResourceTier
RESOURCE_TIER_MEDIUM: ResourceTier
RESOURCE_TIER_LARGE: ResourceTier
RESOURCE_TIER_XLARGE: ResourceTier
SCALE_METRIC_UNSPECIFIED: ScaleMetric
SCALE_METRIC_REQUEST_RATE: ScaleMetric
SCALE_METRIC_CONCURRENCY: ScaleMetric
DEPLOYMENT_STATE_UNSPECIFIED: DeploymentState
DEPLOYMENT_STATE_PROVISIONING: DeploymentState
DEPLOYMENT_STATE_DEPLOYED: DeploymentState
DEPLOYMENT_STATE_COLD: DeploymentState
DEPLOYMENT_STATE_ARCHIVED: DeploymentState
DEPLOYMENT_STATE_ACTIVATING: DeploymentState
DEPLOYMENT_STATE_FAILED: DeploymentState
DEPLOYMENT_STATE_COMPILING: DeploymentState
DEPLOYMENT_STATE_CREATED: DeploymentState
VERSION_STATUS_UNSPECIFIED: VersionStatus
VERSION_STATUS_COMPILING: VersionStatus
VERSION_STATUS_DRAFT: VersionStatus
VERSION_STATUS_ACTIVE: VersionStatus
VERSION_STATUS_SUPERSEDED: VersionStatus
VERSION_STATUS_FAILED: VersionStatus
VERSION_STATUS_STARTING: VersionStatus
VERSION_STATUS_READY: VersionStatus
STORAGE_MODE_UNSPECIFIED: StorageMode
STORAGE_MODE_PERSISTENT: StorageMode
STORAGE_MODE_EPHEMERAL: StorageMode
STORAGE_MODE_TTL: StorageMode
CODE_KIND_UNSPECIFIED: CodeKind
CODE_KIND_SDK: CodeKind
CODE_KIND_UPLOAD_IMAGE: CodeKind
CODE_KIND_GIT_IMAGE: CodeKind
CODE_KIND_PREBUILT: CodeKind
DEPLOYMENT_MODE_UNSPECIFIED: DeploymentMode
DEPLOYMENT_MODE_COMPILATION: DeploymentMode
DEPLOYMENT_MODE_IMAGE: DeploymentMode
ROLLOUT_STATE_UNSPECIFIED: RolloutState
ROLLOUT_STATE_RUNNING: RolloutState
ROLLOUT_STATE_COMPLETED: RolloutState
ROLLOUT_STATE_ROLLED_BACK: RolloutState
ROLLOUT_STATE_CANCELLED: RolloutState
HTTP_METHOD_UNSPECIFIED: HttpMethod
HTTP_METHOD_GET: HttpMethod
HTTP_METHOD_POST: HttpMethod
HTTP_METHOD_PUT: HttpMethod
HTTP_METHOD_PATCH: HttpMethod
HTTP_METHOD_DELETE: HttpMethod
HTTP_METHOD_HEAD: HttpMethod
HTTP_METHOD_OPTIONS: HttpMethod
EXECUTION_STATUS_UNSPECIFIED: ExecutionStatus
EXECUTION_STATUS_PENDING: ExecutionStatus
EXECUTION_STATUS_RUNNING: ExecutionStatus
EXECUTION_STATUS_COMPLETED: ExecutionStatus
EXECUTION_STATUS_FAILED: ExecutionStatus
EXECUTION_STATUS_TIMEOUT: ExecutionStatus
EXECUTION_STATUS_CANCELLED: ExecutionStatus

class Runtime(_message.Message):
    __slots__ = ("python", "rust", "go", "deno")
    PYTHON_FIELD_NUMBER: _ClassVar[int]
    RUST_FIELD_NUMBER: _ClassVar[int]
    GO_FIELD_NUMBER: _ClassVar[int]
    DENO_FIELD_NUMBER: _ClassVar[int]
    python: PythonRuntime
    rust: RustRuntime
    go: GoRuntime
    deno: DenoRuntime
    def __init__(self, python: _Optional[_Union[PythonRuntime, _Mapping]] = ..., rust: _Optional[_Union[RustRuntime, _Mapping]] = ..., go: _Optional[_Union[GoRuntime, _Mapping]] = ..., deno: _Optional[_Union[DenoRuntime, _Mapping]] = ...) -> None: ...

class PythonRuntime(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class RustRuntime(_message.Message):
    __slots__ = ("target", "toolchain")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TOOLCHAIN_FIELD_NUMBER: _ClassVar[int]
    target: RuntimeTarget
    toolchain: str
    def __init__(self, target: _Optional[_Union[RuntimeTarget, str]] = ..., toolchain: _Optional[str] = ...) -> None: ...

class GoRuntime(_message.Message):
    __slots__ = ("target", "toolchain")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TOOLCHAIN_FIELD_NUMBER: _ClassVar[int]
    target: RuntimeTarget
    toolchain: str
    def __init__(self, target: _Optional[_Union[RuntimeTarget, str]] = ..., toolchain: _Optional[str] = ...) -> None: ...

class DenoRuntime(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    def __init__(self, version: _Optional[str] = ...) -> None: ...

class ResourceLimits(_message.Message):
    __slots__ = ("memory_mb", "cpu_millicores", "timeout_secs")
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    CPU_MILLICORES_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECS_FIELD_NUMBER: _ClassVar[int]
    memory_mb: int
    cpu_millicores: int
    timeout_secs: int
    def __init__(self, memory_mb: _Optional[int] = ..., cpu_millicores: _Optional[int] = ..., timeout_secs: _Optional[int] = ...) -> None: ...

class ScalingConfig(_message.Message):
    __slots__ = ("max_replicas", "reserved_capacity", "scale_threshold", "scale_metric", "scaledown_period_secs")
    MAX_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    SCALE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SCALE_METRIC_FIELD_NUMBER: _ClassVar[int]
    SCALEDOWN_PERIOD_SECS_FIELD_NUMBER: _ClassVar[int]
    max_replicas: int
    reserved_capacity: int
    scale_threshold: int
    scale_metric: ScaleMetric
    scaledown_period_secs: int
    def __init__(self, max_replicas: _Optional[int] = ..., reserved_capacity: _Optional[int] = ..., scale_threshold: _Optional[int] = ..., scale_metric: _Optional[_Union[ScaleMetric, str]] = ..., scaledown_period_secs: _Optional[int] = ...) -> None: ...

class AppMeta(_message.Message):
    __slots__ = ("id", "name", "runtime", "limits", "env", "created_at_ms", "updated_at_ms", "resource_tier", "scaling", "storage_mode", "deployment_state", "version", "organization_name", "active_version", "description", "input_schema", "output_schema", "mcp_enabled", "max_concurrency", "deployment_mode", "image_ref", "public_urls", "code_kind", "ttl_seconds", "allow_unauthenticated", "ready_replicas", "status_message", "traffic", "tags", "rollout")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TIER_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    STORAGE_MODE_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_STATE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MCP_ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_MODE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_URLS_FIELD_NUMBER: _ClassVar[int]
    CODE_KIND_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNAUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    READY_REPLICAS_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    runtime: Runtime
    limits: ResourceLimits
    env: _containers.ScalarMap[str, str]
    created_at_ms: int
    updated_at_ms: int
    resource_tier: ResourceTier
    scaling: ScalingConfig
    storage_mode: StorageMode
    deployment_state: DeploymentState
    version: int
    organization_name: str
    active_version: int
    description: str
    input_schema: str
    output_schema: str
    mcp_enabled: bool
    max_concurrency: int
    deployment_mode: DeploymentMode
    image_ref: str
    public_urls: _containers.RepeatedScalarFieldContainer[str]
    code_kind: CodeKind
    ttl_seconds: int
    allow_unauthenticated: bool
    ready_replicas: int
    status_message: str
    traffic: _containers.RepeatedCompositeFieldContainer[TrafficTarget]
    tags: _containers.ScalarMap[str, int]
    rollout: RolloutStatus
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., runtime: _Optional[_Union[Runtime, _Mapping]] = ..., limits: _Optional[_Union[ResourceLimits, _Mapping]] = ..., env: _Optional[_Mapping[str, str]] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., resource_tier: _Optional[_Union[ResourceTier, str]] = ..., scaling: _Optional[_Union[ScalingConfig, _Mapping]] = ..., storage_mode: _Optional[_Union[StorageMode, str]] = ..., deployment_state: _Optional[_Union[DeploymentState, str]] = ..., version: _Optional[int] = ..., organization_name: _Optional[str] = ..., active_version: _Optional[int] = ..., description: _Optional[str] = ..., input_schema: _Optional[str] = ..., output_schema: _Optional[str] = ..., mcp_enabled: _Optional[bool] = ..., max_concurrency: _Optional[int] = ..., deployment_mode: _Optional[_Union[DeploymentMode, str]] = ..., image_ref: _Optional[str] = ..., public_urls: _Optional[_Iterable[str]] = ..., code_kind: _Optional[_Union[CodeKind, str]] = ..., ttl_seconds: _Optional[int] = ..., allow_unauthenticated: _Optional[bool] = ..., ready_replicas: _Optional[int] = ..., status_message: _Optional[str] = ..., traffic: _Optional[_Iterable[_Union[TrafficTarget, _Mapping]]] = ..., tags: _Optional[_Mapping[str, int]] = ..., rollout: _Optional[_Union[RolloutStatus, _Mapping]] = ...) -> None: ...

class TrafficTarget(_message.Message):
    __slots__ = ("version", "percent")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    version: int
    percent: int
    def __init__(self, version: _Optional[int] = ..., percent: _Optional[int] = ...) -> None: ...

class RolloutPolicy(_message.Message):
    __slots__ = ("steps", "step_secs", "max_error_rate_increase_pct", "max_p95_increase_pct", "min_requests")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_SECS_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_RATE_INCREASE_PCT_FIELD_NUMBER: _ClassVar[int]
    MAX_P95_INCREASE_PCT_FIELD_NUMBER: _ClassVar[int]
    MIN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedScalarFieldContainer[int]
    step_secs: int
    max_error_rate_increase_pct: int
    max_p95_increase_pct: int
    min_requests: int
    def __init__(self, steps: _Optional[_Iterable[int]] = ..., step_secs: _Optional[int] = ..., max_error_rate_increase_pct: _Optional[int] = ..., max_p95_increase_pct: _Optional[int] = ..., min_requests: _Optional[int] = ...) -> None: ...

class RolloutStatus(_message.Message):
    __slots__ = ("state", "from_version", "to_version", "policy", "step", "percent", "decision", "started_at_ms", "step_started_at_ms", "updated_at_ms")
    STATE_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STEP_STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    state: RolloutState
    from_version: int
    to_version: int
    policy: RolloutPolicy
    step: int
    percent: int
    decision: str
    started_at_ms: int
    step_started_at_ms: int
    updated_at_ms: int
    def __init__(self, state: _Optional[_Union[RolloutState, str]] = ..., from_version: _Optional[int] = ..., to_version: _Optional[int] = ..., policy: _Optional[_Union[RolloutPolicy, _Mapping]] = ..., step: _Optional[int] = ..., percent: _Optional[int] = ..., decision: _Optional[str] = ..., started_at_ms: _Optional[int] = ..., step_started_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ...) -> None: ...

class HttpContext(_message.Message):
    __slots__ = ("method", "path", "query", "headers")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    method: HttpMethod
    path: str
    query: str
    headers: _containers.ScalarMap[str, str]
    def __init__(self, method: _Optional[_Union[HttpMethod, str]] = ..., path: _Optional[str] = ..., query: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ExecutionMetrics(_message.Message):
    __slots__ = ("cold_start_ms", "execution_ms", "billed_duration_ms", "cpu_used_ms", "memory_used_mb", "result_size_bytes")
    COLD_START_MS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_MS_FIELD_NUMBER: _ClassVar[int]
    BILLED_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    CPU_USED_MS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_USED_MB_FIELD_NUMBER: _ClassVar[int]
    RESULT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    cold_start_ms: int
    execution_ms: int
    billed_duration_ms: int
    cpu_used_ms: int
    memory_used_mb: int
    result_size_bytes: int
    def __init__(self, cold_start_ms: _Optional[int] = ..., execution_ms: _Optional[int] = ..., billed_duration_ms: _Optional[int] = ..., cpu_used_ms: _Optional[int] = ..., memory_used_mb: _Optional[int] = ..., result_size_bytes: _Optional[int] = ...) -> None: ...

class Execution(_message.Message):
    __slots__ = ("id", "app_id", "status", "result", "error", "metrics", "started_at_ms", "completed_at_ms", "function_version", "error_class", "created_at_ms", "attempts", "status_code", "idempotency_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    app_id: str
    status: ExecutionStatus
    result: bytes
    error: str
    metrics: ExecutionMetrics
    started_at_ms: int
    completed_at_ms: int
    function_version: int
    error_class: str
    created_at_ms: int
    attempts: int
    status_code: int
    idempotency_key: str
    def __init__(self, id: _Optional[str] = ..., app_id: _Optional[str] = ..., status: _Optional[_Union[ExecutionStatus, str]] = ..., result: _Optional[bytes] = ..., error: _Optional[str] = ..., metrics: _Optional[_Union[ExecutionMetrics, _Mapping]] = ..., started_at_ms: _Optional[int] = ..., completed_at_ms: _Optional[int] = ..., function_version: _Optional[int] = ..., error_class: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., attempts: _Optional[int] = ..., status_code: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...
