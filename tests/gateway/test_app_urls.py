"""Direct app URLs: Host-based routing to Invoke, plain HTTP both ways."""

from __future__ import annotations

import json

from ignite_gateway.app_urls import AppHostResolver, AppRef, app_label, candidates
from tests.gateway.conftest import LiveGateway


def test_app_label() -> None:
    assert app_label("greet-acme.ignite.localhost", "ignite.localhost") == "greet-acme"
    assert app_label("Greet-Acme.Ignite.Localhost:8080", "ignite.localhost") == "greet-acme"
    assert app_label("greet-acme.ignite.localhost.", "ignite.localhost") == "greet-acme"
    assert app_label("ignite.localhost", "ignite.localhost") is None
    assert app_label("a.b.ignite.localhost", "ignite.localhost") is None
    assert app_label("127.0.0.1:8080", "ignite.localhost") is None
    assert app_label("[::1]:8080", "ignite.localhost") is None
    assert app_label("-bad.ignite.localhost", "ignite.localhost") is None


def test_candidates_longest_org_first() -> None:
    assert candidates("a-b-c") == [AppRef("b-c", "a"), AppRef("c", "a-b")]
    assert candidates("greet-acme-corp")[0] == AppRef("acme-corp", "greet")
    assert candidates("nodash") == []
    assert candidates("a--b") == []  # neither "-b" nor "a-" is a label


def test_resolver_prefers_what_it_saw() -> None:
    resolver = AppHostResolver(ttl_s=60)
    assert resolver.order("a-b-c")[0] == AppRef("b-c", "a")
    resolver.remember("a-b-c", AppRef("c", "a-b"))
    assert resolver.order("a-b-c") == [AppRef("c", "a-b"), AppRef("b-c", "a")]
    resolver.forget("a-b-c")
    assert resolver.order("a-b-c")[0] == AppRef("b-c", "a")
    expired = AppHostResolver(ttl_s=-1)
    expired.remember("a-b-c", AppRef("c", "a-b"))
    assert expired.order("a-b-c")[0] == AppRef("b-c", "a")


async def test_plain_request_passes_through(live: LiveGateway) -> None:
    live.fake.metadata.clear()
    async with live.session.put(
        f"{live.url}/some/path%20x?q=1&q=2",
        data=b"raw \x00 body",
        headers={
            "Host": live.app_host("acme-corp", "greet"),
            "Authorization": "Bearer tok",
            "X-Custom": "v",
            "Content-Type": "application/octet-stream",
        },
    ) as resp:
        assert resp.status == 201
        assert resp.headers["X-Ignite-Execution-Id"] == "01HEXECUTION"
        echo = json.loads(await resp.read())
    assert echo["org"] == "acme-corp" and echo["app"] == "greet"
    assert echo["method"] == "HTTP_METHOD_PUT"
    assert echo["path"] == "/some/path%20x"
    assert echo["query"] == "q=1&q=2"
    assert echo["body"] == "raw \x00 body"
    headers = echo["headers"]
    assert headers["x-custom"] == "v"
    assert headers["content-type"] == "application/octet-stream"
    assert headers["host"] == live.app_host("acme-corp", "greet")
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-request-id"]
    # The platform credential goes to the platform, not to the app's code.
    assert "authorization" not in headers
    assert live.fake.metadata[-1]["authorization"] == "Bearer tok"


async def test_ambiguous_host_resolution(live: LiveGateway) -> None:
    async def who(host: str) -> tuple[int, str]:
        async with live.session.get(f"{live.url}/", headers={"Host": host}) as resp:
            return resp.status, resp.headers.get("X-App", "")

    # Only the second split exists.
    assert await who(live.app_host("zed", "only-second")) == (201, "zed/only-second")
    # Both splits exist: the longer org wins, every time.
    for _ in range(2):
        assert await who("a-b-c.apps.test") == (201, "b-c/a")
    # Nothing under any split.
    status, _ = await who("no-such-thing.apps.test")
    assert status == 404
    status, _ = await who("nodash.apps.test")
    assert status == 404


async def test_only_a_missing_app_moves_to_the_next_split(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/", headers={"Host": "retired-x-y.apps.test"}) as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["error"]["details"][0]["reason"] == "VERSION_NOT_FOUND"


async def test_resolution_is_remembered(live: LiveGateway) -> None:
    host = live.app_host("zed", "only-second")
    async with live.session.get(f"{live.url}/", headers={"Host": host}) as resp:
        assert resp.status == 201
    live.fake.metadata.clear()
    async with live.session.get(f"{live.url}/", headers={"Host": host}) as resp:
        assert resp.status == 201
    assert len(live.fake.metadata) == 1  # straight to the right split


async def test_app_url_error_is_json(live: LiveGateway) -> None:
    async with live.session.get(f"{live.url}/", headers={"Host": "x-y.apps.test"}) as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["error"]["details"][0]["reason"] == "APP_NOT_FOUND"


async def test_app_url_oversized_body(live: LiveGateway) -> None:
    async with live.session.post(
        f"{live.url}/",
        data=b"x" * (32 * 1024 * 1024 + 1),
        headers={"Host": live.app_host("acme", "echo")},
    ) as resp:
        assert resp.status == 413


async def test_app_url_head_has_no_body(live: LiveGateway) -> None:
    async with live.session.head(
        f"{live.url}/", headers={"Host": live.app_host("acme", "echo")}
    ) as resp:
        assert resp.status == 201
        assert await resp.read() == b""


async def test_api_paths_on_an_app_host_go_to_the_app(live: LiveGateway) -> None:
    async with live.session.get(
        f"{live.url}/healthz", headers={"Host": live.app_host("acme", "echo")}
    ) as resp:
        echo = json.loads(await resp.read())
    assert echo["path"] == "/healthz"
