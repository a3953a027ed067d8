"""Every kind of bad input gets INVALID_ARGUMENT (or the documented code)
with an ErrorInfo reason, and leaves what is stored exactly as it was."""

from __future__ import annotations

import io
import tarfile
import zipfile

import grpc
import pytest
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from tests.support import SEED_HANDLER, expect_error, python_archive, python_source

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _tgz(*entries: tuple[str, bytes, bytes, str]) -> bytes:
    """entries: (name, data, tar type, link target)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data, kind, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return out.getvalue()


def _zip(*entries: tuple[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return out.getvalue()


def _symlink_zip(name: str, target: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = zipfile.ZipInfo(name)
        info.external_attr = 0o120777 << 16
        archive.writestr(info, target)
    return out.getvalue()


HANDLER = ("handler.py", b"def handler(p, c):\n    return 1\n", tarfile.REGTYPE, "")

BAD_ARCHIVES = {
    "parent path": (
        _tgz(HANDLER, ("../evil.py", b"x", tarfile.REGTYPE, "")),
        "ARCHIVE_UNSAFE_PATH",
    ),
    "absolute path": (
        _tgz(HANDLER, ("/etc/evil", b"x", tarfile.REGTYPE, "")),
        "ARCHIVE_UNSAFE_PATH",
    ),
    "zip parent path": (_zip(("handler.py", b"x"), ("a/../../evil", b"x")), "ARCHIVE_UNSAFE_PATH"),
    "symlink outside": (
        _tgz(HANDLER, ("leak", b"", tarfile.SYMTYPE, "../../../etc/passwd")),
        "ARCHIVE_UNSAFE_LINK",
    ),
    "absolute symlink": (
        _tgz(HANDLER, ("leak", b"", tarfile.SYMTYPE, "/etc/passwd")),
        "ARCHIVE_UNSAFE_LINK",
    ),
    "zip symlink outside": (_symlink_zip("leak", "../../etc/shadow"), "ARCHIVE_UNSAFE_LINK"),
    "hard link outside": (
        _tgz(HANDLER, ("hl", b"", tarfile.LNKTYPE, "/etc/passwd")),
        "ARCHIVE_UNSAFE_PATH",
    ),
    "device file": (_tgz(HANDLER, ("dev", b"", tarfile.CHRTYPE, "")), "ARCHIVE_UNSAFE_ENTRY"),
    "fifo": (_tgz(HANDLER, ("pipe", b"", tarfile.FIFOTYPE, "")), "ARCHIVE_UNSAFE_ENTRY"),
    "compression bomb": (_zip(("handler.py", b"\0" * (40 * 1024 * 1024))), "ARCHIVE_BOMB"),
    "too many entries": (
        _tgz(*[(f"f{i}", b"", tarfile.REGTYPE, "") for i in range(10_001)]),
        "ARCHIVE_TOO_MANY_ENTRIES",
    ),
    "not an archive": (b"#!/bin/sh\necho hi\n", "ARCHIVE_FORMAT_UNKNOWN"),
    "truncated tar.gz": (
        _tgz(HANDLER, ("b", b"y" * 5000, tarfile.REGTYPE, ""))[:60],
        "ARCHIVE_CORRUPT",
    ),
    "corrupt zip": (b"PK\x03\x04" + b"\x00" * 64, "ARCHIVE_CORRUPT"),
}


@pytest.fixture
def stored(stub, org):
    """An app with a published version and a draft: what must not change."""
    stub.CreateApp(
        compute.CreateAppRequest(
            organization_name=org,
            name="keep",
            description="kept",
            runtime={"python": {}},
            env={"K": "V"},
        )
    )
    stub.SaveDraft(
        compute.SaveDraftRequest(
            organization_name=org, app_name="keep", code=python_source(SEED_HANDLER)
        )
    )
    stub.PublishDraft(compute.PublishDraftRequest(organization_name=org, app_name="keep"))
    return _snapshot(stub, org)


def _snapshot(stub, org):
    app = stub.GetApp(compute.GetAppRequest(organization_name=org, app_name="keep")).app
    app.ClearField("deployment_state")
    app.ClearField("ready_replicas")
    app.ClearField("status_message")
    draft = stub.GetDraft(compute.GetDraftRequest(organization_name=org, app_name="keep")).draft
    versions = stub.ListVersions(
        compute.ListVersionsRequest(organization_name=org, app_name="keep")
    )
    apps = stub.ListApps(compute.ListAppsRequest(organization_name=org))
    return (
        app.SerializeToString(deterministic=True),
        draft.SerializeToString(deterministic=True),
        versions.SerializeToString(deterministic=True),
        len(apps.apps),
    )


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_bad_archives_are_refused_and_change_nothing(stub, org, stored, case):
    data, reason = BAD_ARCHIVES[case]
    got = expect_error(
        stub.SaveDraft,
        compute.SaveDraftRequest(organization_name=org, app_name="keep", code=python_archive(data)),
    )
    assert got == (INVALID, reason)
    assert _snapshot(stub, org) == stored


BAD_NAMES = ["Acme", "-acme", "acme-", "a" * 64, "a_b", "acme.corp", "ünï", "a b"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_are_refused(stub, org, stored, bad):
    assert expect_error(
        stub.CreateApp, compute.CreateAppRequest(organization_name=org, name=bad)
    ) == (INVALID, "INVALID_NAME")
    assert expect_error(
        stub.CreateApp, compute.CreateAppRequest(organization_name=bad, name="fine")
    ) == (INVALID, "INVALID_NAME")
    assert expect_error(
        stub.GetApp, compute.GetAppRequest(organization_name=org, app_name=bad)
    ) == (INVALID, "INVALID_NAME")
    assert _snapshot(stub, org) == stored


def test_missing_and_too_long_names(stub, org):
    assert expect_error(stub.CreateApp, compute.CreateAppRequest(organization_name=org)) == (
        INVALID,
        "NAME_REQUIRED",
    )
    long_app = "a" * (63 - len(org))  # "<app>-<org>" would be 64 characters
    assert expect_error(
        stub.CreateApp, compute.CreateAppRequest(organization_name=org, name=long_app)
    ) == (INVALID, "NAME_TOO_LONG_FOR_URL")


BAD_SETTINGS = {
    "unknown tier": ({"resource_tier": 99}, "INVALID_ENUM"),
    "memory too small": ({"limits": {"memory_mb": 16}}, "OUT_OF_RANGE"),
    "timeout too long": ({"limits": {"timeout_secs": 100_000}}, "OUT_OF_RANGE"),
    "cpu zero": ({"limits": {"cpu_millicores": 0}}, "OUT_OF_RANGE"),
    "too many replicas": ({"scaling": {"max_replicas": 1000}}, "OUT_OF_RANGE"),
    "reserve beyond max": (
        {"scaling": {"max_replicas": 2, "reserved_capacity": 3}},
        "OUT_OF_RANGE",
    ),
    "reserved env name": ({"env": {"PATH": "/tmp"}}, "RESERVED_ENV_NAME"),
    "platform env prefix": ({"env": {"IGNITE_SOCKET": "/x"}}, "RESERVED_ENV_NAME"),
    "invalid env name": ({"env": {"1BAD": "x"}}, "INVALID_ENV_NAME"),
    "env too large": ({"env": {f"K{i}": "v" * 1000 for i in range(40)}}, "ENV_TOO_LARGE"),
    "schema not json": ({"input_schema": "{not json"}, "INVALID_JSON_SCHEMA"),
    "schema invalid": ({"input_schema": '{"type": 5}'}, "INVALID_JSON_SCHEMA"),
    "schema not object": ({"output_schema": "[1, 2]"}, "INVALID_JSON_SCHEMA"),
    # Deeper than the decoder, or than the schema checker, can recurse.
    "schema nested 10,000 deep": ({"input_schema": "[" * 10_000 + "]" * 10_000}, "SCHEMA_TOO_DEEP"),
    "schema of nested nots": (
        {"input_schema": '{"not": ' * 400 + "{}" + "}" * 400},
        "SCHEMA_TOO_DEEP",
    ),
    "ttl without ttl mode": ({"ttl_seconds": 60}, "TTL_WITHOUT_TTL_MODE"),
    "ttl mode without ttl": ({"storage_mode": common.STORAGE_MODE_TTL}, "OUT_OF_RANGE"),
    "mcp without description": (
        {"mcp_enabled": True, "description": "", "input_schema": '{"type": "object"}'},
        "MCP_NEEDS_DESCRIPTION",
    ),
    "mcp without input schema": (
        {"mcp_enabled": True, "description": "d"},
        "MCP_NEEDS_INPUT_SCHEMA",
    ),
    "too much concurrency": ({"max_concurrency": 5000}, "OUT_OF_RANGE"),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_bad_settings_are_refused(stub, org, stored, case):
    fields, reason = BAD_SETTINGS[case]
    request = compute.CreateAppRequest(organization_name=org, name="new", **fields)
    assert expect_error(stub.CreateApp, request) == (INVALID, reason)
    # The same values through UpdateApp are refused too, and the app keeps its settings.
    update = compute.UpdateAppRequest(
        organization_name=org,
        app_name="keep",
        app=common.AppMeta(**fields),
        update_mask={"paths": sorted(fields)},
    )
    code, _ = expect_error(stub.UpdateApp, update)
    assert code == INVALID
    assert _snapshot(stub, org) == stored


def test_oversized_code_is_refused(stub, org, stored):
    huge = b"#" * (32 * 1024 * 1024 + 1)
    assert expect_error(
        stub.SaveDraft,
        compute.SaveDraftRequest(organization_name=org, app_name="keep", code=python_source(huge)),
    ) == (INVALID, "CODE_TOO_LARGE")
    assert _snapshot(stub, org) == stored


def test_missing_code_and_runtime(stub, org, stored):
    assert expect_error(
        stub.SaveDraft, compute.SaveDraftRequest(organization_name=org, app_name="keep")
    ) == (INVALID, "CODE_REQUIRED")
    # An app created without a runtime needs one with its code.
    other = org + "b"
    stub.CreateApp(compute.CreateAppRequest(organization_name=other, name="bare"))
    assert expect_error(
        stub.SaveDraft,
        compute.SaveDraftRequest(
            organization_name=other,
            app_name="bare",
            code=compute.CodeSource(compile=compute.CompileSource(source_code=b"x")),
        ),
    ) == (INVALID, "RUNTIME_REQUIRED")
    assert expect_error(
        stub.SaveDraft,
        compute.SaveDraftRequest(organization_name=org, app_name="keep", code=python_source(b"")),
    ) == (INVALID, "CODE_EMPTY")
    assert _snapshot(stub, org) == stored


def test_malformed_request_bytes_are_invalid_argument(platform, stub, org, stored):
    channel = grpc.insecure_channel(platform.grpc_target)
    raw = channel.unary_unary("/dodil.ignite.v1.ComputeService/CreateApp")
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\xff\xff\xff\xff\x0f")
    assert caught.value.code() == INVALID
    assert "Traceback" not in (caught.value.details() or "")
    assert _snapshot(stub, org) == stored


def test_unknown_app_is_not_found(stub, org):
    assert expect_error(
        stub.SaveDraft,
        compute.SaveDraftRequest(
            organization_name=org, app_name="ghost", code=python_source(SEED_HANDLER)
        ),
    ) == (grpc.StatusCode.NOT_FOUND, "APP_NOT_FOUND")
