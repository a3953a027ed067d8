"""A scripted workload over the HTTP edge of a platform with authentication
on, shared by the metrics, tracing and console tests."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import requests

from ignite_launcher import LocalPlatform
from tests.eventually import eventually

#: Echoes the request headers it saw; fails when asked; prints a line.
ECHO_HANDLER = b"""import json

def handler(payload, ctx):
    event = json.loads(payload) if payload else {}
    print("served", event.get("n", 0))
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {"headers": getattr(ctx, "headers", {}), "n": event.get("n", 0)}
"""


@dataclass
class Api:
    """Authenticated JSON calls to one platform's gateway."""

    platform: LocalPlatform
    token: str

    @classmethod
    def sign_in(cls, platform: LocalPlatform) -> Api:
        client_id, secret = platform.admin_credentials()
        issued = requests.post(
            f"{platform.http_url}/v1/ignite/token",
            data={"grant_type": "client_credentials", "client_id": client_id,
                  "client_secret": secret},
            timeout=30,
        )  # fmt: skip
        issued.raise_for_status()
        return cls(platform, issued.json()["access_token"])

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def call(self, method: str, path: str, body: Any = None, **extra: str) -> Any:
        response = requests.request(
            method, f"{self.platform.http_url}{path}", json=body,
            headers=self.headers(**extra), timeout=120,
        )  # fmt: skip
        assert response.status_code < 400, (
            f"{method} {path}: {response.status_code} {response.text}"[:2000]
        )
        return response.json()

    def deploy(self, org: str, app: str, code: bytes = ECHO_HANDLER) -> None:
        """Create the app, save ``code`` as its draft, publish it."""
        self.call("POST", f"/v1/ignite/app/{org}", {"name": app, "runtime": {"python": {}}})
        self.save(org, app, code)
        self.call("POST", f"/v1/ignite/app/{org}/{app}/draft/publish", {})

    def deploy_cold(self, org: str, app: str, code: bytes = ECHO_HANDLER) -> None:
        """Deploy, then wait until the pod the publish made ready is gone, so
        that the next request is a cold start."""
        self.call(
            "POST", f"/v1/ignite/app/{org}",
            {"name": app, "runtime": {"python": {}}, "scaling": {"scaledownPeriodSecs": 1}},
        )  # fmt: skip
        self.save(org, app, code)
        self.call("POST", f"/v1/ignite/app/{org}/{app}/draft/publish", {})
        eventually(
            lambda: not self.call("GET", f"/v1/ignite/app/{org}/{app}")["app"].get("readyReplicas"),
            within=60,
            every=0.2,
            what="the publish's readiness pod gone",
        )
        # Back to the default scale-down period (in place: no new version),
        # so the pod of the next, cold, request stays for the rest.
        self.call(
            "PATCH", f"/v1/ignite/app/{org}/{app}",
            {"app": {"scaling": {"scaledownPeriodSecs": 300}}, "updateMask": "scaling"},
        )  # fmt: skip

    def save(self, org: str, app: str, code: bytes) -> None:
        source = base64.b64encode(code).decode()
        self.call(
            "POST", f"/v1/ignite/app/{org}/{app}/draft",
            {"code": {"compile": {"runtime": {"python": {}}, "sourceCode": source}}},
        )  # fmt: skip

    def invoke(self, org: str, app: str, payload: dict[str, Any], **headers: str) -> Any:
        """POST /invoke; (status, parsed JSON body)."""
        body = base64.b64encode(json.dumps(payload).encode()).decode()
        response = requests.post(
            f"{self.platform.http_url}/v1/ignite/app/{org}/{app}/invoke",
            json={"http": {"method": "HTTP_METHOD_POST", "path": "/"}, "body": body},
            headers=self.headers(**headers), timeout=120,
        )  # fmt: skip
        return response.status_code, response.json()

    def invoke_app_url(self, org: str, app: str, payload: dict[str, Any]) -> int:
        response = requests.post(
            f"{self.platform.http_url}/",
            data=json.dumps(payload),
            headers=self.headers(Host=self.platform.app_host(org, app)),
            timeout=120,
        )
        return response.status_code

    def invoke_async(self, org: str, app: str, payload: dict[str, Any]) -> str:
        body = base64.b64encode(json.dumps(payload).encode()).decode()
        reply = self.call(
            "POST", f"/v1/ignite/app/{org}/{app}/invoke/async",
            {"http": {"method": "HTTP_METHOD_POST", "path": "/"}, "body": body},
        )  # fmt: skip
        return str(reply["executionId"])

    def wait_execution(self, org: str, execution_id: str, timeout: float = 60) -> Any:
        def finished() -> Any:
            execution = self.call("GET", f"/v1/ignite/execution/{org}/{execution_id}")["execution"]
            return execution if execution["status"] in (
                "EXECUTION_STATUS_COMPLETED", "EXECUTION_STATUS_FAILED",
                "EXECUTION_STATUS_TIMEOUT", "EXECUTION_STATUS_CANCELLED",
            ) else None  # fmt: skip

        return eventually(finished, within=timeout, every=0.1, what=f"execution {execution_id}")
