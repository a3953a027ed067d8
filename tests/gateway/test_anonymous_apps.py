"""An app marked allow_unauthenticated answers curl with no token on its
direct URL (CORS preflights included), while its management stays closed."""

from __future__ import annotations

import json
import subprocess

import pytest

from ignite_launcher import LocalPlatform
from tests.gateway.conftest import organization_with_apps


@pytest.fixture(scope="module")
def secured(auth_platform: LocalPlatform) -> LocalPlatform:
    return auth_platform


@pytest.fixture(scope="module")
def org(secured) -> str:
    apps = (("public", True), ("private", False), ("support-desk-public", True))
    return organization_with_apps(secured, apps)[0]


def curl(secured: LocalPlatform, *args: str) -> tuple[int, dict[str, str], bytes]:
    """curl -i; returns (status, headers, body)."""
    done = subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "60", *args], capture_output=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


def test_public_app_answers_curl_without_a_token(secured, org):
    host = f"Host: {secured.app_host(org, 'public')}"
    status, headers, body = curl(secured, "-H", host, "-d", '{"name": "Anon"}', secured.http_url)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["greeting"] == "Hello, Anon!"
    assert answer["function_id"] == f"{org}/public"
    assert headers["x-ignite-execution-id"] == answer["execution_id"]


def test_public_app_with_hyphens_in_its_name_answers_without_a_token(secured, org):
    # The label splits three ways; the splits naming no app answer an
    # anonymous caller TOKEN_REQUIRED, which must not end the search.
    host = f"Host: {secured.app_host(org, 'support-desk-public')}"
    status, _, body = curl(secured, "-H", host, "-d", '{"name": "Desk"}', secured.http_url)
    assert status == 200, body
    assert json.loads(body)["function_id"] == f"{org}/support-desk-public"
    # A label that names no app at all still asks for a token, as before.
    host = f"Host: {secured.app_host(org, 'no-such-app')}"
    status, _, body = curl(secured, "-H", host, "-d", "{}", secured.http_url)
    assert status == 401, body
    assert json.loads(body)["error"]["details"][0]["reason"] == "TOKEN_REQUIRED"


def test_private_app_still_needs_a_token(secured, org):
    host = f"Host: {secured.app_host(org, 'private')}"
    status, _, _ = curl(secured, "-H", host, "-d", "{}", secured.http_url)
    assert status == 401


def test_cors_preflight_and_cross_origin_reads(secured, org):
    host = f"Host: {secured.app_host(org, 'public')}"
    status, headers, _ = curl(
        secured,
        "-X",
        "OPTIONS",
        "-H",
        host,
        "-H",
        "Origin: https://shop.example",
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: content-type",
        secured.http_url,
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in headers["access-control-allow-methods"]
    assert "content-type" in headers["access-control-allow-headers"]
    status, headers, body = curl(
        secured,
        "-H",
        host,
        "-H",
        "Origin: https://shop.example",
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"name": "Web"}',
        secured.http_url,
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://shop.example"
    assert json.loads(body)["greeting"] == "Hello, Web!"


def test_management_of_a_public_app_refuses_anonymous_callers(secured, org):
    base = f"{secured.http_url}/v1/ignite/app/{org}/public"
    for args in (
        (base,),
        ("-X", "DELETE", base),
        ("-X", "POST", f"{base}/invoke/async", "-d", "{}"),
    ):
        status, _, body = curl(secured, *args)
        assert status == 401, (args, body)
        assert json.loads(body)["error"]["status"] == "UNAUTHENTICATED"
    # And the app is still there, unharmed.
    status, _, body = curl(
        secured, "-H", f"Host: {secured.app_host(org, 'public')}", "-d", "{}", secured.http_url
    )
    assert status == 200
