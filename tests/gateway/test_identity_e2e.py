"""Tokens over HTTP against the real platform with authentication on:
the OAuth token endpoint, and the bearer token carried to the server."""

from __future__ import annotations

import base64

import jwt
import pytest
import requests

from ignite_launcher import LocalPlatform


@pytest.mark.timeout(120)
def test_token_endpoint_and_bearer_calls(secured_platform: LocalPlatform) -> None:
    client_id, client_secret = secured_platform.admin_credentials()
    api = secured_platform.http_url
    # RFC 6749 §4.4 with client_secret_post...
    issued = requests.post(
        f"{api}/v1/ignite/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        },
        timeout=30,
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert token["token_type"] == "Bearer"
    assert isinstance(token["expires_in"], int) and token["expires_in"] > 0
    # ...and with client_secret_basic.
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    again = requests.post(
        f"{api}/v1/ignite/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=30,
    )
    assert again.status_code == 200, again.text
    wrong = requests.post(
        f"{api}/v1/ignite/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
        timeout=30,
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"

    # The token verifies against the published key set, as any JWT library
    # pointed at the JWKS URL would check it.
    jwks = requests.get(f"{api}/v1/ignite/jwks", timeout=30)
    assert jwks.status_code == 200, jwks.text
    header = jwt.get_unverified_header(token["access_token"])
    key = jwt.PyJWKSet.from_dict(jwks.json())[header["kid"]]
    claims = jwt.decode(
        token["access_token"],
        key.key,
        algorithms=["EdDSA"],
        options={"verify_aud": False},
    )
    assert claims["client_id"] == client_id

    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    whoami = requests.get(f"{api}/v1/ignite/whoami", headers=bearer, timeout=30)
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["platformAdmin"] is True
    # Without the token the same call is refused, in the usual error shape.
    anonymous = requests.get(f"{api}/v1/ignite/app/acme-corp", timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
    garbage = requests.get(
        f"{api}/v1/ignite/app/acme-corp", headers={"Authorization": "Bearer nope"}, timeout=30
    )
    assert garbage.status_code == 401
    assert garbage.json()["error"]["details"][0]["domain"] == "ignite.dodil.io"
