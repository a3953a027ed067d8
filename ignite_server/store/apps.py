"""Apps and their versions on PostgreSQL (the app store port, ports/app_store.py).

Publishing serialises on the app's row (``SELECT … FOR UPDATE``), so
concurrent publishes of one app take consecutive numbers from
``apps.next_version``; the partial unique index ``versions_one_active`` makes
a second ACTIVE version impossible even if code were wrong. A version is
made STARTING, then (once its pods are ready, core/readiness.py) ACTIVE or
READY, or FAILED; making one active copies its settings into the app's, so
the app shows what serves. Env values are sealed at rest (sealing.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from ignite_server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from ignite_server.domain.models import (
    SERVABLE_STATUSES,
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
    TrafficTarget,
    UploadKind,
    Version,
    VersionSettings,
    VersionStatus,
    deployment_mode_of,
)
from ignite_server.domain.quotas import quota_exceeded
from ignite_server.ports.app_store import (
    BuildOutcome,
    DraftRecord,
    HostConflict,
    HostTaken,
    NewVersion,
)
from ignite_server.store.database import connection
from ignite_server.store.sealing import EnvSealer

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


def _limits_json(limits: Limits) -> dict[str, Any]:
    return {
        "memory_mb": limits.memory_mb,
        "cpu_millicores": limits.cpu_millicores,
        "timeout_secs": limits.timeout_secs,
    }


def _scaling_json(scaling: Scaling) -> dict[str, Any]:
    return {
        "max_replicas": scaling.max_replicas,
        "reserved_capacity": scaling.reserved_capacity,
        "scale_threshold": scaling.scale_threshold,
        "scale_metric": int(scaling.scale_metric),
        "scaledown_period_secs": scaling.scaledown_period_secs,
    }


def _scaling_from(scaling: Mapping[str, Any]) -> Scaling:
    return Scaling(
        max_replicas=scaling["max_replicas"],
        reserved_capacity=scaling["reserved_capacity"],
        scale_threshold=scaling["scale_threshold"],
        scale_metric=ScaleMetric(scaling["scale_metric"]),
        scaledown_period_secs=scaling["scaledown_period_secs"],
    )


def _encode(column: str, value: Any, sealer: EnvSealer) -> Any:
    if column == "runtime":
        return _runtime_to_json(value)
    if column == "limits":
        return json.dumps(_limits_json(value))
    if column == "scaling":
        return json.dumps(_scaling_json(value))
    if column == "env":
        return json.dumps(sealer.seal(value))
    if column in ("tier", "storage_mode"):
        return int(value)
    return value


def _settings_json(settings: VersionSettings, sealer: EnvSealer) -> str:
    return json.dumps(
        {
            "tier": int(settings.tier),
            "limits": _limits_json(settings.limits),
            "scaling": _scaling_json(settings.scaling),
            "max_concurrency": settings.max_concurrency,
            "env": sealer.seal(settings.env),
        }
    )


def _settings_from(raw: str | None, sealer: EnvSealer) -> VersionSettings | None:
    if raw is None:
        return None
    data = json.loads(raw)
    return VersionSettings(
        tier=ResourceTier(data["tier"]),
        limits=Limits(**data["limits"]),
        scaling=_scaling_from(data["scaling"]),
        env=sealer.open(data["env"]),
        max_concurrency=data["max_concurrency"],
    )


def _traffic_json(traffic: Sequence[TrafficTarget]) -> str:
    return json.dumps([{"version": t.version, "percent": t.percent} for t in traffic])


def _app(row: asyncpg.Record, code_kind: int | None, sealer: EnvSealer) -> App:
    kind = CodeKind(code_kind or 0)
    return App(
        organization=row["organization"],
        name=row["name"],
        runtime=_runtime_from_json(row["runtime"]),
        tier=ResourceTier(row["tier"]),
        limits=Limits(**json.loads(row["limits"])),
        scaling=_scaling_from(json.loads(row["scaling"])),
        env=sealer.open(row["env"]),
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
        traffic=tuple(
            TrafficTarget(int(t["version"]), int(t["percent"])) for t in json.loads(row["traffic"])
        ),
        tags={str(k): int(v) for k, v in json.loads(row["tags"]).items()},
        host_disputed=row["host_disputed"],
    )


def _version(row: asyncpg.Record, sealer: EnvSealer) -> Version:
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
        settings=_settings_from(row["settings"], sealer),
        published_by=row["published_by"],
        message=row["message"],
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


def _app_row(row: asyncpg.Record, sealer: EnvSealer) -> App:
    return _app(row, row["active_code_kind"], sealer)


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

    def __init__(self, pool: asyncpg.Pool, sealer: EnvSealer | None = None) -> None:
        self._pool = pool
        self._sealer = sealer or EnvSealer(None)

    def _app_row(self, row: asyncpg.Record) -> App:
        return _app_row(row, self._sealer)

    def _version(self, row: asyncpg.Record) -> Version:
        return _version(row, self._sealer)

    # --- apps -----------------------------------------------------------

    async def create_app(
        self, app: App, draft: DraftRecord | None, max_apps: int | None = None
    ) -> App:
        columns = sorted(_APP_COLUMNS)
        values = [_encode(c, getattr(app, c), self._sealer) for c in columns]
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
        return self._app_row(row)

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
        return [self._app_row(r) for r in rows]

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
        return self._app_row(row)

    async def list_apps(self, organization: str, after_name: str, limit: int) -> list[App]:
        async with connection(self._pool) as conn:
            rows = await conn.fetch(
                _APP_SELECT + " WHERE a.organization = $1 AND a.name > $2 ORDER BY a.name LIMIT $3",
                organization,
                after_name,
                limit,
            )
        return [self._app_row(r) for r in rows]

    async def update_app(self, organization: str, name: str, changes: Mapping[str, Any]) -> App:
        sets, values = [], []
        for field_name, value in changes.items():
            column = _column(field_name)
            values.append(_encode(column, value, self._sealer))
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
            if "scaling" in changes:
                # Scaling applies to the version serving now, in place
                # (docs/rollouts.md): its snapshot follows, so a later
                # rollback to it restores what it ran with.
                await conn.execute(
                    "UPDATE versions v SET settings = jsonb_set(v.settings, '{scaling}', $2::jsonb)"
                    " FROM apps a WHERE a.uid = $1 AND v.app_uid = a.uid"
                    " AND v.version = a.active_version AND v.settings IS NOT NULL",
                    uid,
                    json.dumps(_scaling_json(changes["scaling"])),
                )
            row = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", uid)
        return self._app_row(row)

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
        return self._version(row)

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
        return self._version(row) if row else None

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
        return self._version(row)

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
        return [self._version(r) for r in rows]

    async def create_version(
        self, organization: str, name: str, new: NewVersion, now_ms: int
    ) -> tuple[Version, bool]:
        async with connection(self._pool) as conn, conn.transaction():
            app = await self._lock_app(conn, organization, name)
            uid = app["uid"]
            source = await conn.fetchrow(
                "SELECT * FROM versions WHERE app_uid = $1 AND version = $2", uid, new.source
            )
            if source is None:
                if new.source == 0:
                    raise FailedPrecondition(
                        f"app {organization}/{name} has no draft to publish; save one first",
                        reason="NO_DRAFT",
                        metadata={"app_id": f"{organization}/{name}"},
                    )
                raise _version_not_found(organization, name, new.source)
            if source["code_hash"] != new.code_hash:
                raise FailedPrecondition(
                    "the draft changed while it was being built; publish again",
                    reason="DRAFT_CHANGED",
                    metadata={"app_id": f"{organization}/{name}"},
                )
            if not new.force and app["active_version"]:
                active = await conn.fetchrow(
                    _VERSION_SELECT + " WHERE v.app_uid = $1 AND v.version = $2",
                    uid,
                    app["active_version"],
                )
                if active is not None and self._same(active, source, new):
                    return self._version(active), True
            if new.abandoned_before_ms:
                await conn.execute(
                    "UPDATE versions SET status = $2, error = $3 WHERE app_uid = $1"
                    " AND status = $4 AND created_at_ms < $5",
                    uid,
                    int(VersionStatus.FAILED),
                    "the server stopped while this version was being made ready",
                    int(VersionStatus.STARTING),
                    new.abandoned_before_ms,
                )
            number = app["next_version"]
            await conn.execute(
                """
                INSERT INTO versions (app_uid, version, status, code_hash, code_kind,
                    code_size_bytes, upload_kind, runtime, build_args, image_source, image_ref,
                    artifact_digest, build_log, created_at_ms, settings, published_by, message)
                SELECT app_uid, $2, $4, code_hash, code_kind, code_size_bytes, upload_kind,
                    runtime, build_args, image_source, image_ref, $5, build_log, $6, $7, $8, $9
                FROM versions WHERE app_uid = $1 AND version = $3
                """,
                uid,
                number,
                new.source,
                int(VersionStatus.STARTING),
                new.artifact_digest,
                now_ms,
                _settings_json(new.settings, self._sealer),
                new.published_by,
                new.message,
            )
            await conn.execute("UPDATE apps SET next_version = $2 + 1 WHERE uid = $1", uid, number)
            row = await conn.fetchrow(
                _VERSION_SELECT + " WHERE v.app_uid = $1 AND v.version = $2", uid, number
            )
        return self._version(row), False

    def _same(self, active: asyncpg.Record, source: asyncpg.Record, new: NewVersion) -> bool:
        """Whether a new version would equal the active one: same code,
        artifact, runtime, image and settings."""
        return (
            active["code_hash"] == new.code_hash
            and active["artifact_digest"] == new.artifact_digest
            and _json_value(active["runtime"]) == _json_value(source["runtime"])
            and active["image_ref"] == source["image_ref"]
            and _settings_from(active["settings"], self._sealer) == new.settings
        )

    async def finish_start(
        self, organization: str, name: str, version: int, status: VersionStatus, error: str = ""
    ) -> Version:
        async with connection(self._pool) as conn:
            row = await conn.fetchrow(
                """
                UPDATE versions v SET status = $4, error = $5
                FROM apps a
                WHERE a.uid = v.app_uid AND a.organization = $1 AND a.name = $2
                  AND v.version = $3 AND v.status = $6
                RETURNING a.organization, a.name, v.*
                """,
                organization,
                name,
                version,
                int(status),
                error,
                int(VersionStatus.STARTING),
            )
        if row is None:
            return await self.get_version(organization, name, version)
        return self._version(row)

    async def activate(
        self,
        organization: str,
        name: str,
        version: int,
        now_ms: int,
        *,
        traffic: Sequence[TrafficTarget] = (),
        only_if_newer: bool = False,
    ) -> App:
        async with connection(self._pool) as conn, conn.transaction():
            app = await self._lock_app(conn, organization, name)
            uid = app["uid"]
            rows = await conn.fetch(
                "SELECT version, status, settings FROM versions"
                " WHERE app_uid = $1 AND version = ANY($2::int[]) AND version > 0",
                uid,
                [version, *(t.version for t in traffic)],
            )
            found = {r["version"]: r for r in rows}
            for number in [version, *(t.version for t in traffic)]:
                if number not in found:
                    raise _version_not_found(organization, name, number)
                status = VersionStatus(found[number]["status"])
                if status == VersionStatus.FAILED:
                    raise FailedPrecondition(
                        f"version {number} failed and cannot serve",
                        reason="VERSION_FAILED",
                        metadata={"app_id": f"{organization}/{name}", "version": str(number)},
                    )
                if status == VersionStatus.STARTING and number != version:
                    raise FailedPrecondition(
                        f"version {number} is not ready yet",
                        reason="VERSION_NOT_READY",
                        metadata={"app_id": f"{organization}/{name}", "version": str(number)},
                    )
            if only_if_newer and app["active_version"] > version:
                # A newer version became active meanwhile: this one is ready
                # but does not take its place.
                await conn.execute(
                    "UPDATE versions SET status = $3 WHERE app_uid = $1 AND version = $2"
                    " AND status = $4",
                    uid,
                    version,
                    int(VersionStatus.READY),
                    int(VersionStatus.STARTING),
                )
            else:
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
                settings = _settings_from(found[version]["settings"], self._sealer)
                await conn.execute(
                    "UPDATE apps SET active_version = $2, traffic = $3, updated_at_ms = $4"
                    " WHERE uid = $1",
                    uid,
                    version,
                    _traffic_json(traffic),
                    now_ms,
                )
                if settings is not None:
                    # The app shows (and the next publish snapshots) what serves.
                    await conn.execute(
                        "UPDATE apps SET tier = $2, limits = $3, scaling = $4, env = $5,"
                        " max_concurrency = $6 WHERE uid = $1",
                        uid,
                        int(settings.tier),
                        json.dumps(_limits_json(settings.limits)),
                        json.dumps(_scaling_json(settings.scaling)),
                        json.dumps(self._sealer.seal(settings.env)),
                        settings.max_concurrency,
                    )
            row = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", uid)
        return self._app_row(row)

    async def set_tag(
        self, organization: str, name: str, tag: str, version: int, max_tags: int, now_ms: int
    ) -> App:
        async with connection(self._pool) as conn, conn.transaction():
            app = await self._lock_app(conn, organization, name)
            uid = app["uid"]
            status = await conn.fetchval(
                "SELECT status FROM versions WHERE app_uid = $1 AND version = $2 AND version > 0",
                uid,
                version,
            )
            if status is None:
                raise _version_not_found(organization, name, version)
            if VersionStatus(status) not in SERVABLE_STATUSES:
                raise FailedPrecondition(
                    f"version {version} is {VersionStatus(status).name.lower()} and cannot serve",
                    reason="VERSION_NOT_SERVABLE",
                    metadata={"app_id": f"{organization}/{name}", "version": str(version)},
                )
            tags = json.loads(app["tags"])
            if tag not in tags and len(tags) >= max_tags:
                raise FailedPrecondition(
                    f"app {organization}/{name} has {len(tags)} tags, the most it may have;"
                    " remove one first",
                    reason="TOO_MANY_TAGS",
                    metadata={"app_id": f"{organization}/{name}", "limit": str(max_tags)},
                )
            tags[tag] = version
            await conn.execute(
                "UPDATE apps SET tags = $2, updated_at_ms = $3 WHERE uid = $1",
                uid,
                json.dumps(tags),
                now_ms,
            )
            row = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", uid)
        return self._app_row(row)

    async def remove_tag(self, organization: str, name: str, tag: str, now_ms: int) -> App:
        async with connection(self._pool) as conn, conn.transaction():
            app = await self._lock_app(conn, organization, name)
            tags = json.loads(app["tags"])
            if tags.pop(tag, None) is None:
                raise NotFound(
                    f"app {organization}/{name} has no tag {tag}",
                    reason="TAG_NOT_FOUND",
                    metadata={"app_id": f"{organization}/{name}", "tag": tag},
                )
            await conn.execute(
                "UPDATE apps SET tags = $2, updated_at_ms = $3 WHERE uid = $1",
                app["uid"],
                json.dumps(tags),
                now_ms,
            )
            row = await conn.fetchrow(_APP_SELECT + " WHERE a.uid = $1", app["uid"])
        return self._app_row(row)

    async def seal_plaintext_env(self) -> int:
        """Seal env stored in plain (before sealing, or by a server without
        a key); returns how many rows were sealed."""
        sealed = 0
        async with connection(self._pool) as conn:
            for uid, env in await conn.fetch("SELECT uid, env FROM apps"):
                if not self._sealer.is_sealed(env):
                    value = json.dumps(self._sealer.seal(self._sealer.open(env)))
                    await conn.execute("UPDATE apps SET env = $2 WHERE uid = $1", uid, value)
                    sealed += 1
            rows = await conn.fetch(
                "SELECT app_uid, version, settings FROM versions WHERE settings IS NOT NULL"
            )
            for row in rows:
                data = json.loads(row["settings"])
                if not self._sealer.is_sealed(data["env"]):
                    data["env"] = self._sealer.seal(self._sealer.open(data["env"]))
                    await conn.execute(
                        "UPDATE versions SET settings = $3 WHERE app_uid = $1 AND version = $2",
                        row["app_uid"],
                        row["version"],
                        json.dumps(data),
                    )
                    sealed += 1
        return sealed


def _json_value(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


def _version_not_found(organization: str, name: str, version: int) -> NotFound:
    return NotFound(
        f"app {organization}/{name} has no version {version}",
        reason="VERSION_NOT_FOUND",
        metadata={"app_id": f"{organization}/{name}", "version": str(version)},
    )


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
