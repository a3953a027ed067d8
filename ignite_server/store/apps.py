"""Apps and their versions on PostgreSQL (the app store port, ports/app_store.py).

Publishing serialises on the app's row (``SELECT … FOR UPDATE``), so
concurrent publishes of one app take consecutive numbers from
``apps.next_version``; the partial unique index ``versions_one_active`` makes
a second ACTIVE version impossible even if code were wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg

from ignite_server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from ignite_server.domain.models import (
    App,
    CodeKind,
    DeploymentMode,
    ImageSpec,
    Limits,
    ResourceTier,
    RuntimeKind,
    RuntimeSpec,
    RuntimeTarget,
    ScaleMetric,
    Scaling,
    StorageMode,
    UploadKind,
    Version,
    VersionStatus,
    deployment_mode_of,
)
from ignite_server.domain.quotas import quota_exceeded
from ignite_server.ports.app_store import BuildOutcome, DraftRecord, HostConflict, HostTaken
from ignite_server.store.database import connection

_APP_COLUMNS = {
    "runtime", "tier", "limits", "scaling", "env", "storage_mode", "ttl_seconds",
    "description", "input_schema", "output_schema", "mcp_enabled", "max_concurrency",
    "allow_unauthenticated",
}  # fmt: skip

_VERSION_SELECT = """
    SELECT a.organization, a.name, v.*
    FROM versions v JOIN apps a ON a.uid = v.app_uid
"""


def _runtime_to_json(runtime: RuntimeSpec | None) -> str | None:
    if runtime is None:
        return None
    return json.dumps(
        {
            "kind": runtime.kind.value,
            "version": runtime.version,
            "target": int(runtime.target),
            "toolchain": runtime.toolchain,
        }
    )


def _runtime_from_json(raw: str | None) -> RuntimeSpec | None:
    if raw is None:
        return None
    data = json.loads(raw)
    return RuntimeSpec(
        kind=RuntimeKind(data["kind"]),
        version=data["version"],
        target=RuntimeTarget(data["target"]),
        toolchain=data["toolchain"],
    )


def _encode(column: str, value: Any) -> Any:
    if column == "runtime":
        return _runtime_to_json(value)
    if column == "limits":
        return json.dumps(
            {
                "memory_mb": value.memory_mb,
                "cpu_millicores": value.cpu_millicores,
                "timeout_secs": value.timeout_secs,
            }
        )
    if column == "scaling":
        return json.dumps(
            {
                "max_replicas": value.max_replicas,
                "reserved_capacity": value.reserved_capacity,
                "scale_threshold": value.scale_threshold,
                "scale_metric": int(value.scale_metric),
                "scaledown_period_secs": value.scaledown_period_secs,
            }
        )
    if column == "env":
        return json.dumps(dict(value))
    if column in ("tier", "storage_mode"):
        return int(value)
    return value


def _app(row: asyncpg.Record, code_kind: int | None) -> App:
    scaling = json.loads(row["scaling"])
    kind = CodeKind(code_kind or 0)
    return App(
        organization=row["organization"],
        name=row["name"],
        runtime=_runtime_from_json(row["runtime"]),
        tier=ResourceTier(row["tier"]),
        limits=Limits(**json.loads(row["limits"])),
        scaling=Scaling(
            max_replicas=scaling["max_replicas"],
            reserved_capacity=scaling["reserved_capacity"],
            scale_threshold=scaling["scale_threshold"],
            scale_metric=ScaleMetric(scaling["scale_metric"]),
            scaledown_period_secs=scaling["scaledown_period_secs"],
        ),
        env=json.loads(row["env"]),
        storage_mode=StorageMode(row["storage_mode"]),
        ttl_seconds=row["ttl_seconds"],
        description=row["description"],
        input_schema=row["input_schema"],
        output_schema=row["output_schema"],
        mcp_enabled=row["mcp_enabled"],
        max_concurrency=row["max_concurrency"],
        allow_unauthenticated=row["allow_unauthenticated"],
        active_version=row["active_version"],
        code_kind=kind,
        deployment_mode=deployment_mode_of(kind) if kind else DeploymentMode.UNSPECIFIED,
        image_ref=row["active_image_ref"] or "",
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        host_disputed=row["host_disputed"],
    )


def _version(row: asyncpg.Record) -> Version:
    return Version(
        organization=row["organization"],
        app=row["name"],
        version=row["version"],
        status=VersionStatus(row["status"]),
        code_hash=row["code_hash"],
        code_kind=CodeKind(row["code_kind"]),
        runtime=_runtime_from_json(row["runtime"]),
        created_at_ms=row["created_at_ms"],
        code_size_bytes=row["code_size_bytes"],
        artifact_digest=row["artifact_digest"],
        error=row["error"],
        build_log=row["build_log"],
        image_ref=row["image_ref"],
        upload_kind=UploadKind(row["upload_kind"]),
        build_args=json.loads(row["build_args"]),
        image=ImageSpec.from_json(json.loads(row["image_source"])) if row["image_source"] else None,
    )


# The app with the code kind and image of its active version (AppMeta shows
# them), and whether it holds its host label.
_APP_SELECT = """
    SELECT a.*, v.code_kind AS active_code_kind, v.image_ref AS active_image_ref,
           h.label IS NULL AS host_disputed
    FROM apps a
    LEFT JOIN versions v ON v.app_uid = a.uid AND v.version = a.active_version
                          AND a.active_version > 0
    LEFT JOIN app_hosts h ON h.app_uid = a.uid
"""


def _app_row(row: asyncpg.Record) -> App:
    return _app(row, row["active_code_kind"])


def _upload_kind_code(kind: UploadKind) -> CodeKind:
    return {
        UploadKind.SOURCE_FILE: CodeKind.SDK,
        UploadKind.ARCHIVE: CodeKind.SDK,
        UploadKind.PREBUILT_IMAGE: CodeKind.PREBUILT,
        UploadKind.IMAGE_FROM_CODE: CodeKind.UPLOAD_IMAGE,
        UploadKind.IMAGE_FROM_GIT: CodeKind.GIT_IMAGE,
    }[kind]


class PostgresAppStore:
    """The app store over an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # --- apps -----------------------------------------------------------

    async def create_app(
        self, app: App, draft: DraftRecord | None, max_apps: int | None = None
    ) -> App:
        columns = sorted(_APP_COLUMNS)
        values = [_encode(c, getattr(app, c)) for c in columns]
        names = ", ".join([*columns, "organization", "name", "created_at_ms", "updated_at_ms"])
        params = ", ".join(f"${i}" for i in range(1, len(columns) + 5))
        async with connection(self._pool) as conn, conn.transaction():
            if max_apps is not None:
                await self._check_app_quota(conn, app.organization, max_apps)
            try:
                uid = await conn.fetchval(
                    f"INSERT INTO apps ({names}) VALUES ({params}) RETURNING uid",
                    *values,
                    app.organization,
                    app.name,
                    app.created_at_ms,
                    app.updated_at_ms,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(
                    f"app {app.id} already exists",
                    reason="APP_ALREADY_EXISTS",
                    metadata={"app_id": app.id},
                ) from None
            claimed = await conn.fetchval(
                "INSERT INTO app_hosts (label, app_uid, created_at_ms) VALUES ($1, $2, $3)"
                " ON CONFLICT (label) DO NOTHING RETURNING label",
                app.host_label,
                uid,
                app.created_at_ms,
            )
            if claimed is None:
                holder = await conn.fetchrow(
                    "SELECT a.organization, a.name FROM app_hosts h"
                    " LEFT JOIN apps a ON a.uid = h.app_uid WHERE h.label = $1",
                    app.host_label,
                )
                # Leaving the block with the exception rolls the app back.
                raise HostTaken(
                    app.host_label,
                    (holder["organization"] or "") if holder else "",
                    (holder["name"] or "") if holder else "",
                )
            if draft is not None:
                await self._write_draft(conn, uid, draft, app.created_at_ms)
            row = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", uid)
        return _app_row(row)

    @staticmethod
    async def _check_app_quota(conn: asyncpg.Connection, organization: str, max_apps: int) -> None:
        """Refuse a new app past the organization's quota. Creates in one
        organization take turns on an advisory lock (held to the end of the
        transaction), so concurrent ones cannot all pass one count."""
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('ignite-apps:' || $1))", organization
        )
        count = await conn.fetchval(
            "SELECT count(*) FROM apps WHERE organization = $1", organization
        )
        if count >= max_apps:
            raise quota_exceeded(organization, "apps", max_apps, count, "apps", "another app")

    async def reserved_apps(self) -> list[App]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                _APP_SELECT + " WHERE a.active_version > 0"
                " AND (a.scaling->>'reserved_capacity')::int > 0"
            )
        return [_app_row(r) for r in rows]

    async def host_conflicts(self) -> list[HostConflict]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                "SELECT c.label, a.organization, a.name, c.found_at_ms FROM host_conflicts c"
                " JOIN apps a ON a.uid = c.app_uid ORDER BY c.label, a.organization"
            )
        return [
            HostConflict(r["label"], r["organization"], r["name"], r["found_at_ms"]) for r in rows
        ]

    async def get_app(self, organization: str, name: str) -> App:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                _APP_SELECT + " WHERE a.organization = $1 AND a.name = $2", organization, name
            )
        if row is None:
            raise _app_not_found(organization, name)
        return _app_row(row)

    async def list_apps(self, organization: str, after_name: str, limit: int) -> list[App]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                _APP_SELECT + " WHERE a.organization = $1 AND a.name > $2 ORDER BY a.name LIMIT $3",
                organization,
                after_name,
                limit,
            )
        return [_app_row(r) for r in rows]

    async def update_app(self, organization: str, name: str, changes: Mapping[str, Any]) -> App:
        sets, values = [], []
        for field_name, value in changes.items():
            column = _column(field_name)
            values.append(_encode(column, value))
            sets.append(f"{column} = ${len(values)}")
        values.extend([organization, name])
        n = len(values)
        async with connection(self._pool) as conn, conn.transaction():
            uid = await conn.fetchval(
                f"UPDATE apps SET {', '.join(sets)} "
                f"WHERE organization = ${n - 1} AND name = ${n} RETURNING uid",
                *values,
            )
            if uid is None:
                raise _app_not_found(organization, name)
            row = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", uid)
        return _app_row(row)

    async def delete_app(self, organization: str, name: str) -> None:
        async with connection(self._pool) as conn:
            # Versions go with the app (ON DELETE CASCADE); so does every
            # table a later migration hangs off apps.uid.
            deleted = await conn.fetchval(
                "DELETE FROM apps WHERE organization = $1 AND name = $2 RETURNING uid",
                organization,
                name,
            )
        if deleted is None:
            raise _app_not_found(organization, name)

    # --- versions -------------------------------------------------------

    async def _lock_app(self, conn: asyncpg.Connection, organization: str, name: str) -> Any:
        row = await conn.fetchrow(
            "SELECT * FROM apps WHERE organization = $1 AND name = $2 FOR UPDATE",
            organization,
            name,
        )
        if row is None:
            raise _app_not_found(organization, name)
        return row

    async def _write_draft(
        self, conn: asyncpg.Connection, uid: int, draft: DraftRecord, now_ms: int
    ) -> None:
        await conn.execute(
            """
            INSERT INTO versions (app_uid, version, status, code_hash, code_kind,
                code_size_bytes, upload_kind, runtime, build_args, image_source, image_ref,
                created_at_ms)
            VALUES ($1, 0, $2, $3, $4, $5, $6, $7, $8, $9, '', $10)
            ON CONFLICT (app_uid, version) DO UPDATE SET
                status = EXCLUDED.status, code_hash = EXCLUDED.code_hash,
                code_kind = EXCLUDED.code_kind, code_size_bytes = EXCLUDED.code_size_bytes,
                upload_kind = EXCLUDED.upload_kind, runtime = EXCLUDED.runtime,
                build_args = EXCLUDED.build_args, image_source = EXCLUDED.image_source,
                image_ref = '',
                artifact_digest = '', error = '', build_log = '',
                created_at_ms = EXCLUDED.created_at_ms
            """,
            uid,
            int(draft.status),
            draft.code_hash,
            int(_upload_kind_code(draft.upload_kind)),
            draft.code_size_bytes,
            draft.upload_kind.value,
            _runtime_to_json(draft.runtime),
            json.dumps(dict(draft.build_args)),
            json.dumps(draft.image.to_json()) if draft.image is not None else None,
            now_ms,
        )

    async def save_draft(
        self, organization: str, name: str, draft: DraftRecord, now_ms: int
    ) -> Version:
        async with connection(self._pool) as conn, conn.transaction():
            app = await self._lock_app(conn, organization, name)
            await self._write_draft(conn, app["uid"], draft, now_ms)
            row = await conn.fetchrow(
                _VERSION_SELECT + " WHERE v.app_uid = $1 AND v.version = 0", app["uid"]
            )
        return _version(row)

    async def record_build(
        self, organization: str, name: str, version: int, outcome: BuildOutcome
    ) -> Version | None:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                """
                UPDATE versions v SET status = $4, artifact_digest = $5, error = $6,
                    build_log = $7, image_ref = $9
                FROM apps a
                WHERE a.uid = v.app_uid AND a.organization = $1 AND a.name = $2
                  AND v.version = $3 AND v.code_hash = $8
                RETURNING a.organization, a.name, v.*
                """,
                organization,
                name,
                version,
                int(outcome.status),
                outcome.artifact_digest,
                outcome.error,
                outcome.build_log,
                outcome.code_hash,
                outcome.image_ref,
            )
        return _version(row) if row else None

    async def get_version(self, organization: str, name: str, version: int) -> Version:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                _VERSION_SELECT + " WHERE a.organization = $1 AND a.name = $2 AND v.version = $3",
                organization,
                name,
                version,
            )
            if row is None:
                exists = await conn.fetchval(
                    "SELECT 1 FROM apps WHERE organization = $1 AND name = $2", organization, name
                )
        if row is None:
            if not exists:
                raise _app_not_found(organization, name)
            what = "no draft has been saved" if version == 0 else f"version {version} not found"
            raise NotFound(
                f"app {organization}/{name}: {what}",
                reason="DRAFT_NOT_FOUND" if version == 0 else "VERSION_NOT_FOUND",
                metadata={"app_id": f"{organization}/{name}", "version": str(version)},
            )
        return _version(row)

    async def list_versions(
        self, organization: str, name: str, before_version: int, limit: int
    ) -> list[Version]:
        async with connection(self._pool) as conn:
            exists = await conn.fetchval(
                "SELECT 1 FROM apps WHERE organization = $1 AND name = $2", organization, name
            )
            if not exists:
                raise _app_not_found(organization, name)
            rows = await conn.fetch(
                _VERSION_SELECT
                + """ WHERE a.organization = $1 AND a.name = $2 AND v.version > 0
                      AND ($3 = 0 OR v.version < $3)
                    ORDER BY v.version DESC LIMIT $4""",
                organization,
                name,
                before_version,
                limit,
            )
        return [_version(r) for r in rows]

    async def publish(
        self, organization: str, name: str, code_hash: str, artifact_digest: str, now_ms: int
    ) -> tuple[Version, App]:
        async with connection(self._pool) as conn, conn.transaction():
            app = await self._lock_app(conn, organization, name)
            uid = app["uid"]
            draft = await conn.fetchrow(
                "SELECT * FROM versions WHERE app_uid = $1 AND version = 0", uid
            )
            if draft is None:
                raise FailedPrecondition(
                    f"app {organization}/{name} has no draft to publish; save one first",
                    reason="NO_DRAFT",
                    metadata={"app_id": f"{organization}/{name}"},
                )
            if draft["code_hash"] != code_hash:
                raise FailedPrecondition(
                    "the draft changed while it was being built; publish again",
                    reason="DRAFT_CHANGED",
                    metadata={"app_id": f"{organization}/{name}"},
                )
            number = app["next_version"]
            await conn.execute(
                "UPDATE versions SET status = $2 WHERE app_uid = $1 AND status = $3",
                uid,
                int(VersionStatus.SUPERSEDED),
                int(VersionStatus.ACTIVE),
            )
            await conn.execute(
                """
                INSERT INTO versions (app_uid, version, status, code_hash, code_kind,
                    code_size_bytes, upload_kind, runtime, build_args, image_source, image_ref,
                    artifact_digest, build_log, created_at_ms)
                SELECT app_uid, $2, $3, code_hash, code_kind, code_size_bytes, upload_kind,
                    runtime, build_args, image_source, image_ref, $4, build_log, $5
                FROM versions WHERE app_uid = $1 AND version = 0
                """,
                uid,
                number,
                int(VersionStatus.ACTIVE),
                artifact_digest,
                now_ms,
            )
            await conn.execute(
                "UPDATE apps SET active_version = $2, next_version = $2 + 1, updated_at_ms = $3"
                " WHERE uid = $1",
                uid,
                number,
                now_ms,
            )
            vrow = await conn.fetchrow(
                _VERSION_SELECT + " WHERE v.app_uid = $1 AND v.version = $2", uid, number
            )
            arow = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", uid)
        return _version(vrow), _app_row(arow)

    async def rollback(self, organization: str, name: str, version: int, now_ms: int) -> App:
        async with connection(self._pool) as conn, conn.transaction():
            app = await self._lock_app(conn, organization, name)
            uid = app["uid"]
            target = await conn.fetchrow(
                "SELECT status FROM versions WHERE app_uid = $1 AND version = $2 AND version > 0",
                uid,
                version,
            )
            if target is None:
                raise NotFound(
                    f"app {organization}/{name} has no version {version}",
                    reason="VERSION_NOT_FOUND",
                    metadata={"app_id": f"{organization}/{name}", "version": str(version)},
                )
            if target["status"] == VersionStatus.FAILED:
                raise FailedPrecondition(
                    f"version {version} failed to build and cannot serve",
                    reason="VERSION_FAILED",
                    metadata={"app_id": f"{organization}/{name}", "version": str(version)},
                )
            if version != app["active_version"]:
                await conn.execute(
                    "UPDATE versions SET status = $2 WHERE app_uid = $1 AND status = $3",
                    uid,
                    int(VersionStatus.SUPERSEDED),
                    int(VersionStatus.ACTIVE),
                )
                await conn.execute(
                    "UPDATE versions SET status = $3 WHERE app_uid = $1 AND version = $2",
                    uid,
                    version,
                    int(VersionStatus.ACTIVE),
                )
                await conn.execute(
                    "UPDATE apps SET active_version = $2, updated_at_ms = $3 WHERE uid = $1",
                    uid,
                    version,
                    now_ms,
                )
            row = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", uid)
        return _app_row(row)


def _column(field_name: str) -> str:
    if field_name == "updated_at_ms" or field_name in _APP_COLUMNS:
        return field_name
    raise ValueError(f"not an updatable app field: {field_name}")


def _app_not_found(organization: str, name: str) -> NotFound:
    return NotFound(
        f"app {organization}/{name} not found",
        reason="APP_NOT_FOUND",
        metadata={"app_id": f"{organization}/{name}"},
    )
