"""Host labels that two apps already shared when labels became unique
(store/migrations/0010_app_hosts.sql): the migration keeps both apps,
switches neither, reports them (the server's log, ListHostConflicts,
`dodil ignite app host-conflicts`, the apps' own status) and lets their URL
serve neither until all but one are gone; a new app cannot take the label.

A database is migrated to just before that migration, given two colliding
apps the way the old platform let them be made, and then a platform with
authentication on starts against it, as an upgrade would."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import asyncpg
import grpc
import requests
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc

from ignite_launcher import LocalPlatform, private_state_dir
from ignite_server.store.embedded import EmbeddedPostgres
from ignite_server.store.migrate import _migrations
from tests.api.test_identity import issue
from tests.cli.runner import dodil_for, log_in
from tests.support import SEED_HANDLER, BearerStub, error_info, invoke, python_source

#: The migration that made host labels unique.
HOSTS_MIGRATION = 10
SCALING = {
    "max_replicas": 10,
    "reserved_capacity": 0,
    "scale_threshold": 0,
    "scale_metric": 2,
    "scaledown_period_secs": 300,
}
RUNTIME = {"kind": "python", "version": "", "target": 0, "toolchain": ""}
#: Two apps whose host label is "a-b-c-legacy", and one with a label of its
#: own; "b-c-legacy" has no app yet (its app "a" would be a third claimant).
LEGACY_APPS = (("legacy", "a-b-c"), ("c-legacy", "a-b"), ("legacy", "alone"))
LEGACY_ORGS = ("legacy", "c-legacy", "b-c-legacy")


async def _old_database(cluster: EmbeddedPostgres) -> str:
    """The schema as it was before unique host labels, with the old
    platform's colliding apps in it; the DSN."""
    dsn = await cluster.start()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, name, sql in _migrations():
            if number >= HOSTS_MIGRATION:
                break
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name
                )
        now = int(time.time() * 1000)
        for org in LEGACY_ORGS:
            await conn.execute(
                "INSERT INTO organizations (name, created_at_ms) VALUES ($1, $2)", org, now
            )
        for org, app in LEGACY_APPS:
            await conn.execute(
                "INSERT INTO apps (organization, name, runtime, tier, limits, scaling, env,"
                " storage_mode, created_at_ms, updated_at_ms)"
                " VALUES ($1, $2, $3, 1, '{}', $4, '{}', 1, $5, $5)",
                org,
                app,
                json.dumps(RUNTIME),
                json.dumps(SCALING),
                now,
            )
    finally:
        await conn.close()
    return dsn


def test_labels_shared_before_the_rule_serve_neither_app_and_are_reported() -> None:
    cluster = EmbeddedPostgres(private_state_dir("ignite-pg-hosts-") / "postgres")
    dsn = asyncio.run(_old_database(cluster))
    state = private_state_dir("ignite-hosts-upgrade-")
    try:
        with LocalPlatform(state, database_url=dsn, auth=True) as platform:
            _check_upgraded(platform, state)
    finally:
        asyncio.run(cluster.stop())


def _check_upgraded(platform: LocalPlatform, state: Path) -> None:
    token = issue(platform, *platform.admin_credentials())
    admin = BearerStub(platform.grpc_target, compute_grpc.ComputeServiceStub, token)
    log = (state / "logs" / "server.log").read_text()
    for app_id in ("legacy/a-b-c", "c-legacy/a-b"):
        assert "app.host_disputed" in log and app_id in log, app_id
    assert "legacy/alone" not in log

    listed = admin.ListHostConflicts(compute.ListHostConflictsRequest()).conflicts
    assert sorted((c.label, c.organization_name, c.app_name) for c in listed) == [
        ("a-b-c-legacy", "c-legacy", "a-b"),
        ("a-b-c-legacy", "legacy", "a-b-c"),
    ]
    cli = dodil_for(platform.grpc_target, state / "cli")
    log_in(cli, *platform.admin_credentials())
    table = cli("ignite", "app", "host-conflicts").ok().stdout
    assert "a-b-c-legacy" in table and "legacy:a-b-c" in table and "c-legacy:a-b" in table

    for org, app in LEGACY_APPS:
        admin.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=org, app_name=app, code=python_source(SEED_HANDLER)
            )
        )
        admin.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name=app))
        # Both sides keep their names and answer through the API.
        status, body = invoke(admin, org, app, b'{"name": "api"}')
        assert status == 200 and json.loads(body)["function_id"] == f"{org}/{app}"
    shown = admin.GetApp(compute.GetAppRequest(organization_name="legacy", app_name="a-b-c")).app
    assert list(shown.public_urls) == []
    assert "serves no app" in shown.status_message
    alone = admin.GetApp(compute.GetAppRequest(organization_name="legacy", app_name="alone")).app
    assert alone.public_urls and not alone.status_message

    def url(label: str) -> requests.Response:
        return requests.post(
            platform.http_url + "/",
            json={"name": "url"},
            headers={
                "Host": f"{label}.{platform.apps_domain}",
                "Authorization": f"Bearer {token}",
            },
            timeout=60,
        )

    disputed = url("a-b-c-legacy")
    assert disputed.status_code == 400, disputed.text
    assert disputed.json()["error"]["details"][0]["reason"] == "HOST_DISPUTED"
    assert url("alone-legacy").json()["function_id"] == "legacy/alone"

    # No newcomer may take the label either.
    try:
        admin.CreateApp(compute.CreateAppRequest(organization_name="b-c-legacy", name="a"))
        raise AssertionError("a third app took a disputed label")
    except grpc.RpcError as err:
        info = error_info(err)
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
        assert info is not None and info.reason == "URL_TAKEN"
        assert "disputed" in (err.details() or "")

    # Once one of them is deleted, the other one holds its label again.
    admin.DeleteApp(compute.DeleteAppRequest(organization_name="c-legacy", app_name="a-b"))
    assert list(admin.ListHostConflicts(compute.ListHostConflictsRequest()).conflicts) == []
    again = url("a-b-c-legacy")
    assert again.status_code == 200, again.text
    assert again.json()["function_id"] == "legacy/a-b-c"
    kept = admin.GetApp(compute.GetAppRequest(organization_name="legacy", app_name="a-b-c")).app
    assert list(kept.public_urls) and not kept.status_message
