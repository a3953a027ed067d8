from dodil.ignite.v1 import ignite_common_pb2 as _ignite_common_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_STREAM_UNSPECIFIED: _ClassVar[LogStream]
    LOG_STREAM_STDOUT: _ClassVar[LogStream]
    LOG_STREAM_STDERR: _ClassVar[LogStream]
    LOG_STREAM_PLATFORM: _ClassVar[LogStream]
    LOG_STREAM_BUILD: _ClassVar[LogStream]
LOG_STREAM_UNSPECIFIED: LogStream
LOG_STREAM_STDOUT: LogStream
LOG_STREAM_STDERR: LogStream
LOG_STREAM_PLATFORM: LogStream
LOG_STREAM_BUILD: LogStream

class CodeSource(_message.Message):
    __slots__ = ("compile", "image")
    COMPILE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    compile: CompileSource
    image: ImageSource
    def __init__(self, compile: _Optional[_Union[CompileSource, _Mapping]] = ..., image: _Optional[_Union[ImageSource, _Mapping]] = ...) -> None: ...

class CompileSource(_message.Message):
    __slots__ = ("runtime", "source_code", "archive", "build_args")
    class BuildArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_CODE_FIELD_NUMBER: _ClassVar[int]
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    BUILD_ARGS_FIELD_NUMBER: _ClassVar[int]
    runtime: _ignite_common_pb2.Runtime
    source_code: bytes
    archive: bytes
    build_args: _containers.ScalarMap[str, str]
    def __init__(self, runtime: _Optional[_Union[_ignite_common_pb2.Runtime, _Mapping]] = ..., source_code: _Optional[bytes] = ..., archive: _Optional[bytes] = ..., build_args: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ImageSource(_message.Message):
    __slots__ = ("prebuilt", "from_code", "from_git", "health_path")
    PREBUILT_FIELD_NUMBER: _ClassVar[int]
    FROM_CODE_FIELD_NUMBER: _ClassVar[int]
    FROM_GIT_FIELD_NUMBER: _ClassVar[int]
    HEALTH_PATH_FIELD_NUMBER: _ClassVar[int]
    prebuilt: PrebuiltImage
    from_code: ImageFromCode
    from_git: ImageFromGit
    health_path: str
    def __init__(self, prebuilt: _Optional[_Union[PrebuiltImage, _Mapping]] = ..., from_code: _Optional[_Union[ImageFromCode, _Mapping]] = ..., from_git: _Optional[_Union[ImageFromGit, _Mapping]] = ..., health_path: _Optional[str] = ...) -> None: ...

class PrebuiltImage(_message.Message):
    __slots__ = ("image_ref", "registry_secret_ref")
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    REGISTRY_SECRET_REF_FIELD_NUMBER: _ClassVar[int]
    image_ref: str
    registry_secret_ref: str
    def __init__(self, image_ref: _Optional[str] = ..., registry_secret_ref: _Optional[str] = ...) -> None: ...

class ImageFromCode(_message.Message):
    __slots__ = ("archive", "dockerfile_path", "build_args")
    class BuildArgsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ARCHIVE_FIELD_NUMBER: _ClassVar[int]
    DOCKERFILE_PATH_FIELD_NUMBER: _ClassVar[int]
    BUILD_ARGS_FIELD_NUMBER: _ClassVar[int]
    archive: bytes
    dockerfile_path: str
    build_args: _containers.ScalarMap[str, str]
    def __init__(self, archive: _Optional[bytes] = ..., dockerfile_path: _Optional[str] = ..., build_args: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ImageFromGit(_message.Message):
    __slots__ = ("repo_url", "ref", "context_dir", "git_secret_ref")
    REPO_URL_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_DIR_FIELD_NUMBER: _ClassVar[int]
    GIT_SECRET_REF_FIELD_NUMBER: _ClassVar[int]
    repo_url: str
    ref: str
    context_dir: str
    git_secret_ref: str
    def __init__(self, repo_url: _Optional[str] = ..., ref: _Optional[str] = ..., context_dir: _Optional[str] = ..., git_secret_ref: _Optional[str] = ...) -> None: ...

class AppVersionInfo(_message.Message):
    __slots__ = ("version", "status", "code_hash", "code_kind", "runtime", "created_at_ms", "deployment_mode", "error", "artifact_digest", "code_size_bytes", "image_ref", "settings", "published_by", "message", "traffic_percent", "tags")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CODE_HASH_FIELD_NUMBER: _ClassVar[int]
    CODE_KIND_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_MODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    CODE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_REF_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_BY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_PERCENT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    version: int
    status: _ignite_common_pb2.VersionStatus
    code_hash: str
    code_kind: _ignite_common_pb2.CodeKind
    runtime: _ignite_common_pb2.Runtime
    created_at_ms: int
    deployment_mode: _ignite_common_pb2.DeploymentMode
    error: str
    artifact_digest: str
    code_size_bytes: int
    image_ref: str
    settings: VersionSettings
    published_by: str
    message: str
    traffic_percent: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[int] = ..., status: _Optional[_Union[_ignite_common_pb2.VersionStatus, str]] = ..., code_hash: _Optional[str] = ..., code_kind: _Optional[_Union[_ignite_common_pb2.CodeKind, str]] = ..., runtime: _Optional[_Union[_ignite_common_pb2.Runtime, _Mapping]] = ..., created_at_ms: _Optional[int] = ..., deployment_mode: _Optional[_Union[_ignite_common_pb2.DeploymentMode, str]] = ..., error: _Optional[str] = ..., artifact_digest: _Optional[str] = ..., code_size_bytes: _Optional[int] = ..., image_ref: _Optional[str] = ..., settings: _Optional[_Union[VersionSettings, _Mapping]] = ..., published_by: _Optional[str] = ..., message: _Optional[str] = ..., traffic_percent: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class VersionSettings(_message.Message):
    __slots__ = ("resource_tier", "limits", "scaling", "env", "max_concurrency")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESOURCE_TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    resource_tier: _ignite_common_pb2.ResourceTier
    limits: _ignite_common_pb2.ResourceLimits
    scaling: _ignite_common_pb2.ScalingConfig
    env: _containers.ScalarMap[str, str]
    max_concurrency: int
    def __init__(self, resource_tier: _Optional[_Union[_ignite_common_pb2.ResourceTier, str]] = ..., limits: _Optional[_Union[_ignite_common_pb2.ResourceLimits, _Mapping]] = ..., scaling: _Optional[_Union[_ignite_common_pb2.ScalingConfig, _Mapping]] = ..., env: _Optional[_Mapping[str, str]] = ..., max_concurrency: _Optional[int] = ...) -> None: ...

class CreateAppRequest(_message.Message):
    __slots__ = ("organization_name", "name", "runtime", "resource_tier", "limits", "scaling", "env", "storage_mode", "description", "input_schema", "output_schema", "mcp_enabled", "max_concurrency", "code", "ttl_seconds", "allow_unauthenticated")
    class EnvEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    SCALING_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    STORAGE_MODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MCP_ENABLED_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNAUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    name: str
    runtime: _ignite_common_pb2.Runtime
    resource_tier: _ignite_common_pb2.ResourceTier
    limits: _ignite_common_pb2.ResourceLimits
    scaling: _ignite_common_pb2.ScalingConfig
    env: _containers.ScalarMap[str, str]
    storage_mode: _ignite_common_pb2.StorageMode
    description: str
    input_schema: str
    output_schema: str
    mcp_enabled: bool
    max_concurrency: int
    code: CodeSource
    ttl_seconds: int
    allow_unauthenticated: bool
    def __init__(self, organization_name: _Optional[str] = ..., name: _Optional[str] = ..., runtime: _Optional[_Union[_ignite_common_pb2.Runtime, _Mapping]] = ..., resource_tier: _Optional[_Union[_ignite_common_pb2.ResourceTier, str]] = ..., limits: _Optional[_Union[_ignite_common_pb2.ResourceLimits, _Mapping]] = ..., scaling: _Optional[_Union[_ignite_common_pb2.ScalingConfig, _Mapping]] = ..., env: _Optional[_Mapping[str, str]] = ..., storage_mode: _Optional[_Union[_ignite_common_pb2.StorageMode, str]] = ..., description: _Optional[str] = ..., input_schema: _Optional[str] = ..., output_schema: _Optional[str] = ..., mcp_enabled: _Optional[bool] = ..., max_concurrency: _Optional[int] = ..., code: _Optional[_Union[CodeSource, _Mapping]] = ..., ttl_seconds: _Optional[int] = ..., allow_unauthenticated: _Optional[bool] = ...) -> None: ...

class CreateAppResponse(_message.Message):
    __slots__ = ("app_id", "app")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    app: _ignite_common_pb2.AppMeta
    def __init__(self, app_id: _Optional[str] = ..., app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ...) -> None: ...

class GetAppRequest(_message.Message):
    __slots__ = ("organization_name", "app_name")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ...) -> None: ...

class GetAppResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _ignite_common_pb2.AppMeta
    def __init__(self, app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ...) -> None: ...

class ListAppsRequest(_message.Message):
    __slots__ = ("organization_name", "page_size", "page_token")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    page_size: int
    page_token: str
    def __init__(self, organization_name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAppsResponse(_message.Message):
    __slots__ = ("apps", "next_page_token")
    APPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    apps: _containers.RepeatedCompositeFieldContainer[_ignite_common_pb2.AppMeta]
    next_page_token: str
    def __init__(self, apps: _Optional[_Iterable[_Union[_ignite_common_pb2.AppMeta, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateAppRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "app", "update_mask")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    app: _ignite_common_pb2.AppMeta
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateAppResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _ignite_common_pb2.AppMeta
    def __init__(self, app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ...) -> None: ...

class DeleteAppRequest(_message.Message):
    __slots__ = ("organization_name", "app_name")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ...) -> None: ...

class DeleteAppResponse(_message.Message):
    __slots__ = ("app_id",)
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    def __init__(self, app_id: _Optional[str] = ...) -> None: ...

class SaveDraftRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "code")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    code: CodeSource
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., code: _Optional[_Union[CodeSource, _Mapping]] = ...) -> None: ...

class SaveDraftResponse(_message.Message):
    __slots__ = ("draft",)
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    draft: AppVersionInfo
    def __init__(self, draft: _Optional[_Union[AppVersionInfo, _Mapping]] = ...) -> None: ...

class GetDraftRequest(_message.Message):
    __slots__ = ("organization_name", "app_name")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ...) -> None: ...

class GetDraftResponse(_message.Message):
    __slots__ = ("draft", "build_log")
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    BUILD_LOG_FIELD_NUMBER: _ClassVar[int]
    draft: AppVersionInfo
    build_log: str
    def __init__(self, draft: _Optional[_Union[AppVersionInfo, _Mapping]] = ..., build_log: _Optional[str] = ...) -> None: ...

class CompileDraftRequest(_message.Message):
    __slots__ = ("organization_name", "app_name")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ...) -> None: ...

class CompileDraftResponse(_message.Message):
    __slots__ = ("draft", "build_log")
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    BUILD_LOG_FIELD_NUMBER: _ClassVar[int]
    draft: AppVersionInfo
    build_log: str
    def __init__(self, draft: _Optional[_Union[AppVersionInfo, _Mapping]] = ..., build_log: _Optional[str] = ...) -> None: ...

class PublishDraftRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "force", "message", "rollout", "app", "update_mask")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    force: bool
    message: str
    rollout: _ignite_common_pb2.RolloutPolicy
    app: _ignite_common_pb2.AppMeta
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., force: _Optional[bool] = ..., message: _Optional[str] = ..., rollout: _Optional[_Union[_ignite_common_pb2.RolloutPolicy, _Mapping]] = ..., app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class PublishDraftResponse(_message.Message):
    __slots__ = ("published_version", "version", "app", "unchanged")
    PUBLISHED_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    APP_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    published_version: int
    version: AppVersionInfo
    app: _ignite_common_pb2.AppMeta
    unchanged: bool
    def __init__(self, published_version: _Optional[int] = ..., version: _Optional[_Union[AppVersionInfo, _Mapping]] = ..., app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ..., unchanged: _Optional[bool] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "page_size", "page_token")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    page_size: int
    page_token: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[AppVersionInfo]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[AppVersionInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "version")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    version: int
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetVersionResponse(_message.Message):
    __slots__ = ("version", "build_log")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUILD_LOG_FIELD_NUMBER: _ClassVar[int]
    version: AppVersionInfo
    build_log: str
    def __init__(self, version: _Optional[_Union[AppVersionInfo, _Mapping]] = ..., build_log: _Optional[str] = ...) -> None: ...

class RollbackAppRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "version")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    version: int
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RollbackAppResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _ignite_common_pb2.AppMeta
    def __init__(self, app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ...) -> None: ...

class SetTrafficRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "traffic")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    TRAFFIC_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    traffic: _containers.RepeatedCompositeFieldContainer[_ignite_common_pb2.TrafficTarget]
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., traffic: _Optional[_Iterable[_Union[_ignite_common_pb2.TrafficTarget, _Mapping]]] = ...) -> None: ...

class SetTrafficResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _ignite_common_pb2.AppMeta
    def __init__(self, app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ...) -> None: ...

class TagVersionRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "tag", "version")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    tag: str
    version: int
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., tag: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class TagVersionResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _ignite_common_pb2.AppMeta
    def __init__(self, app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ...) -> None: ...

class UntagVersionRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "tag")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    tag: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., tag: _Optional[str] = ...) -> None: ...

class UntagVersionResponse(_message.Message):
    __slots__ = ("app",)
    APP_FIELD_NUMBER: _ClassVar[int]
    app: _ignite_common_pb2.AppMeta
    def __init__(self, app: _Optional[_Union[_ignite_common_pb2.AppMeta, _Mapping]] = ...) -> None: ...

class GetAnonymousAccessRequest(_message.Message):
    __slots__ = ("organization_name", "app_name")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ...) -> None: ...

class GetAnonymousAccessResponse(_message.Message):
    __slots__ = ("invoke", "all_calls")
    INVOKE_FIELD_NUMBER: _ClassVar[int]
    ALL_CALLS_FIELD_NUMBER: _ClassVar[int]
    invoke: bool
    all_calls: bool
    def __init__(self, invoke: _Optional[bool] = ..., all_calls: _Optional[bool] = ...) -> None: ...

class InvokeRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "http", "body", "version", "draft", "tag", "sticky_key")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DRAFT_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    STICKY_KEY_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    http: _ignite_common_pb2.HttpContext
    body: bytes
    version: int
    draft: bool
    tag: str
    sticky_key: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., http: _Optional[_Union[_ignite_common_pb2.HttpContext, _Mapping]] = ..., body: _Optional[bytes] = ..., version: _Optional[int] = ..., draft: _Optional[bool] = ..., tag: _Optional[str] = ..., sticky_key: _Optional[str] = ...) -> None: ...

class InvokeResponse(_message.Message):
    __slots__ = ("head", "chunk", "trailer")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    TRAILER_FIELD_NUMBER: _ClassVar[int]
    head: InvokeHead
    chunk: InvokeChunk
    trailer: InvokeTrailer
    def __init__(self, head: _Optional[_Union[InvokeHead, _Mapping]] = ..., chunk: _Optional[_Union[InvokeChunk, _Mapping]] = ..., trailer: _Optional[_Union[InvokeTrailer, _Mapping]] = ...) -> None: ...

class InvokeHead(_message.Message):
    __slots__ = ("status_code", "response_headers", "execution_id", "version")
    class ResponseHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_HEADERS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    status_code: int
    response_headers: _containers.ScalarMap[str, str]
    execution_id: str
    version: int
    def __init__(self, status_code: _Optional[int] = ..., response_headers: _Optional[_Mapping[str, str]] = ..., execution_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class InvokeChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class InvokeTrailer(_message.Message):
    __slots__ = ("total_body_bytes", "duration_ms", "trailers")
    class TrailersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOTAL_BODY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    TRAILERS_FIELD_NUMBER: _ClassVar[int]
    total_body_bytes: int
    duration_ms: int
    trailers: _containers.ScalarMap[str, str]
    def __init__(self, total_body_bytes: _Optional[int] = ..., duration_ms: _Optional[int] = ..., trailers: _Optional[_Mapping[str, str]] = ...) -> None: ...

class InvokeAsyncRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "http", "body", "version", "idempotency_key", "tag")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    HTTP_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    http: _ignite_common_pb2.HttpContext
    body: bytes
    version: int
    idempotency_key: str
    tag: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., http: _Optional[_Union[_ignite_common_pb2.HttpContext, _Mapping]] = ..., body: _Optional[bytes] = ..., version: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., tag: _Optional[str] = ...) -> None: ...

class InvokeAsyncResponse(_message.Message):
    __slots__ = ("execution_id", "execution")
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution_id: str
    execution: _ignite_common_pb2.Execution
    def __init__(self, execution_id: _Optional[str] = ..., execution: _Optional[_Union[_ignite_common_pb2.Execution, _Mapping]] = ...) -> None: ...

class GetExecutionRequest(_message.Message):
    __slots__ = ("organization_name", "execution_id")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    execution_id: str
    def __init__(self, organization_name: _Optional[str] = ..., execution_id: _Optional[str] = ...) -> None: ...

class GetExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: _ignite_common_pb2.Execution
    def __init__(self, execution: _Optional[_Union[_ignite_common_pb2.Execution, _Mapping]] = ...) -> None: ...

class ListExecutionsRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "status", "page_size", "page_token")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    status: _ignite_common_pb2.ExecutionStatus
    page_size: int
    page_token: str
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., status: _Optional[_Union[_ignite_common_pb2.ExecutionStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListExecutionsResponse(_message.Message):
    __slots__ = ("executions", "next_page_token")
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    executions: _containers.RepeatedCompositeFieldContainer[_ignite_common_pb2.Execution]
    next_page_token: str
    def __init__(self, executions: _Optional[_Iterable[_Union[_ignite_common_pb2.Execution, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelExecutionRequest(_message.Message):
    __slots__ = ("organization_name", "execution_id")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    execution_id: str
    def __init__(self, organization_name: _Optional[str] = ..., execution_id: _Optional[str] = ...) -> None: ...

class CancelExecutionResponse(_message.Message):
    __slots__ = ("execution",)
    EXECUTION_FIELD_NUMBER: _ClassVar[int]
    execution: _ignite_common_pb2.Execution
    def __init__(self, execution: _Optional[_Union[_ignite_common_pb2.Execution, _Mapping]] = ...) -> None: ...

class ReadLogsRequest(_message.Message):
    __slots__ = ("organization_name", "app_name", "execution_id", "follow", "since_ms", "limit")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    app_name: str
    execution_id: str
    follow: bool
    since_ms: int
    limit: int
    def __init__(self, organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., execution_id: _Optional[str] = ..., follow: _Optional[bool] = ..., since_ms: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadLogsResponse(_message.Message):
    __slots__ = ("entry",)
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    entry: LogEntry
    def __init__(self, entry: _Optional[_Union[LogEntry, _Mapping]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("timestamp_ms", "app_id", "version", "execution_id", "stream", "message")
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    timestamp_ms: int
    app_id: str
    version: int
    execution_id: str
    stream: LogStream
    message: str
    def __init__(self, timestamp_ms: _Optional[int] = ..., app_id: _Optional[str] = ..., version: _Optional[int] = ..., execution_id: _Optional[str] = ..., stream: _Optional[_Union[LogStream, str]] = ..., message: _Optional[str] = ...) -> None: ...

class SecretInfo(_message.Message):
    __slots__ = ("name", "username", "created_at_ms", "updated_at_ms", "hosts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    username: str
    created_at_ms: int
    updated_at_ms: int
    hosts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., username: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., hosts: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateSecretRequest(_message.Message):
    __slots__ = ("organization_name", "name", "username", "password", "replace", "hosts")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    name: str
    username: str
    password: str
    replace: bool
    hosts: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, organization_name: _Optional[str] = ..., name: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., replace: _Optional[bool] = ..., hosts: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateSecretResponse(_message.Message):
    __slots__ = ("secret",)
    SECRET_FIELD_NUMBER: _ClassVar[int]
    secret: SecretInfo
    def __init__(self, secret: _Optional[_Union[SecretInfo, _Mapping]] = ...) -> None: ...

class ListSecretsRequest(_message.Message):
    __slots__ = ("organization_name",)
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    def __init__(self, organization_name: _Optional[str] = ...) -> None: ...

class ListSecretsResponse(_message.Message):
    __slots__ = ("secrets",)
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    secrets: _containers.RepeatedCompositeFieldContainer[SecretInfo]
    def __init__(self, secrets: _Optional[_Iterable[_Union[SecretInfo, _Mapping]]] = ...) -> None: ...

class DeleteSecretRequest(_message.Message):
    __slots__ = ("organization_name", "name")
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    organization_name: str
    name: str
    def __init__(self, organization_name: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class DeleteSecretResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListHostConflictsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HostConflict(_message.Message):
    __slots__ = ("label", "organization_name", "app_name", "found_at_ms")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    FOUND_AT_MS_FIELD_NUMBER: _ClassVar[int]
    label: str
    organization_name: str
    app_name: str
    found_at_ms: int
    def __init__(self, label: _Optional[str] = ..., organization_name: _Optional[str] = ..., app_name: _Optional[str] = ..., found_at_ms: _Optional[int] = ...) -> None: ...

class ListHostConflictsResponse(_message.Message):
    __slots__ = ("conflicts",)
    CONFLICTS_FIELD_NUMBER: _ClassVar[int]
    conflicts: _containers.RepeatedCompositeFieldContainer[HostConflict]
    def __init__(self, conflicts: _Optional[_Iterable[_Union[HostConflict, _Mapping]]] = ...) -> None: ...
