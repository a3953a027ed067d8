"""The token endpoint speaks OAuth 2.0 (RFC 6749 client credentials)."""

from __future__ import annotations

import base64

from tests.gateway.conftest import LiveGateway

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_form_request_gets_an_oauth_token_response(live: LiveGateway) -> None:
    live.fake.metadata.clear()
    async with live.session.post(
        f"{live.url}/v1/ignite/token",
        data="grant_type=client_credentials&client_id=good&client_secret=s3cret",
        headers=FORM,
    ) as resp:
        assert resp.status == 200
        assert resp.headers["Cache-Control"] == "no-store"
        body = await resp.json()
    assert body == {"access_token": "tok-good", "token_type": "Bearer", "expires_in": 3600}


async def test_basic_client_authentication(live: LiveGateway) -> None:
    live.fake.metadata.clear()
    basic = base64.b64encode(b"good:s3cret").decode()
    async with live.session.post(
        f"{live.url}/v1/ignite/token",
        data="grant_type=client_credentials",
        headers={**FORM, "Authorization": f"Basic {basic}"},
    ) as resp:
        assert resp.status == 200
        assert (await resp.json())["access_token"] == "tok-good"
    # Client credentials are consumed at the edge, never sent on as a token.
    assert "authorization" not in live.fake.metadata[-1]


async def test_json_request_works_too(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/v1/ignite/token", json={"clientId": "good", "clientSecret": "s3cret"}
    ) as resp:
        assert (await resp.json())["expires_in"] == 3600


async def test_oauth_errors(live: LiveGateway) -> None:
    async def error(data: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
        async with live.session.post(
            f"{live.url}/v1/ignite/token", data=data, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    status, body = await error(
        "grant_type=client_credentials&client_id=good&client_secret=wrong", FORM
    )
    assert status == 401
    assert body == {"error": "invalid_client", "error_description": "invalid client credentials"}
    status, body = await error("grant_type=password&username=u&password=p", FORM)
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, body = await error("client_id=good&client_secret=s3cret", FORM)
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await error("grant_type=client_credentials&client_id=a&client_id=b", FORM)
    assert (status, body["error"]) == (400, "invalid_request")
    status, body = await error(
        "grant_type=client_credentials", {**FORM, "Authorization": "Basic !!notbase64"}
    )
    assert (status, body["error"]) == (401, "invalid_client")


async def test_jwks_is_the_key_set_itself(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/v1/ignite/jwks") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert resp.headers["Cache-Control"].startswith("public, max-age=")
        assert await resp.json() == {"keys": [{"kty": "OKP", "kid": "k1"}]}
