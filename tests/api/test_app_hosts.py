"""App hosts and organizations across tenants, on a platform with
authentication on and its HTTP edge: an app URL (``<app>-<org>``) cannot be
taken by another organization whichever way its label splits, concurrent
creates of one label leave exactly one app, names are checked against the
63-character DNS label, and an organization that does not exist is
NOT_FOUND on every RPC, for the platform administrator too."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest
import requests
from dodil.ignite.v1 import ignite_compute_pb2 as compute
from dodil.ignite.v1 import ignite_compute_pb2_grpc as compute_grpc
from dodil.ignite.v1 import ignite_identity_pb2 as identity
from dodil.ignite.v1 import ignite_identity_pb2_grpc as identity_grpc
from google.protobuf import message_factory

from ignite_launcher import LocalPlatform, private_state_dir
from ignite_server.api.authorization import POLICY, Access
from tests.api.test_identity import SERVICES, _call, issue
from tests.support import BearerStub, error_info, python_source, unique_name

HANDLER = b"""def handler(payload, ctx):
    return {"served_by": ctx["function_id"], "got": payload.decode()}
"""


@pytest.fixture(scope="module")
def secured() -> Iterator[LocalPlatform]:
    with LocalPlatform(private_state_dir("ignite-hosts-"), auth=True) as platform:
        yield platform


@pytest.fixture(scope="module")
def admin_token(secured: LocalPlatform) -> str:
    return issue(secured, *secured.admin_credentials())


class Org:
    """An organization made by the platform admin, with a developer's token."""

    def __init__(self, platform: LocalPlatform, admin_token: str, name: str) -> None:
        self.name = name
        self.platform = platform
        admin = BearerStub(platform.grpc_target, identity_grpc.IdentityServiceStub, admin_token)
        admin.CreateOrganization(identity.CreateOrganizationRequest(name=name))
        account = admin.CreateServiceAccount(
            identity.CreateServiceAccountRequest(organization_name=name, name="dev", roles=[2])
        )
        self.token = issue(platform, account.service_account.client_id, account.client_secret)
        self.stub = BearerStub(platform.grpc_target, compute_grpc.ComputeServiceStub, self.token)

    def deploy(self, app: str) -> None:
        self.stub.CreateApp(
            compute.CreateAppRequest(organization_name=self.name, name=app, runtime={"python": {}})
        )
        self.stub.SaveDraft(
            compute.SaveDraftRequest(
                organization_name=self.name, app_name=app, code=python_source(HANDLER)
            )
        )
        self.stub.PublishDraft(
            compute.PublishDraftRequest(organization_name=self.name, app_name=app)
        )

    def url_get(self, app_label: str, body: str) -> requests.Response:
        """POST to the app URL whose host label is ``app_label``."""
        return requests.post(
            self.platform.http_url + "/",
            data=body,
            headers={
                "Host": f"{app_label}.{self.platform.apps_domain}",
                "Authorization": f"Bearer {self.token}",
            },
            timeout=60,
        )


def _refusal(call, request) -> tuple[grpc.StatusCode, str, str, dict[str, str]]:
    try:
        call(request)
    except grpc.RpcError as err:
        info = error_info(err)
        assert info is not None
        return err.code(), info.reason, err.details(), dict(info.metadata)  # type: ignore[attr-defined]
    raise AssertionError("the call succeeded")


def test_another_organization_cannot_take_an_app_url(
    secured: LocalPlatform, admin_token: str
) -> None:
    """The report's takeover: app ``a-b`` of org X has the label ``a-b-X``;
    org ``b-X`` then asks for app ``a``, whose label is the same. It is
    refused (URL_TAKEN, without naming the victim to the attacker), and the
    victim's URL keeps serving the victim, whichever app came first."""
    base = unique_name("v")
    victim = Org(secured, admin_token, base)
    attacker = Org(secured, admin_token, f"b-{base}")
    victim.deploy("a-b")

    code, reason, message, metadata = _refusal(
        attacker.stub.CreateApp,
        compute.CreateAppRequest(organization_name=attacker.name, name="a", runtime={"python": {}}),
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "URL_TAKEN")
    assert metadata["host"] == f"a-b-{base}"
    assert "another organization's app" in message
    assert base not in message.replace(f"a-b-{base}", "")  # the label only, no org or app
    assert "holder_app_id" not in metadata
    # Nothing of it was stored.
    listed = attacker.stub.ListApps(compute.ListAppsRequest(organization_name=attacker.name))
    assert list(listed.apps) == []

    # The platform administrator may see both sides, and is told who holds it.
    admin = BearerStub(secured.grpc_target, compute_grpc.ComputeServiceStub, admin_token)
    _, reason, message, metadata = _refusal(
        admin.CreateApp,
        compute.CreateAppRequest(organization_name=attacker.name, name="a", runtime={"python": {}}),
    )
    assert reason == "URL_TAKEN" and metadata["holder_app_id"] == f"{base}/a-b"
    assert f"{base}/a-b" in message

    served = victim.url_get(f"a-b-{base}", "secret body")
    assert served.status_code == 200, served.text
    assert served.json() == {"served_by": f"{base}/a-b", "got": "secret body"}
    # The attacker's token reaches nothing of the victim through that URL.
    foreign = attacker.url_get(f"a-b-{base}", "x")
    assert foreign.status_code == 404, foreign.text

    # The other order: the longer organization's app first, then the
    # shorter one's is refused just the same.
    second = unique_name("w")
    long_org = Org(secured, admin_token, f"d-{second}")
    short_org = Org(secured, admin_token, second)
    long_org.deploy("c")
    code, reason, _, _ = _refusal(
        short_org.stub.CreateApp,
        compute.CreateAppRequest(organization_name=second, name="c-d", runtime={"python": {}}),
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "URL_TAKEN")
    assert long_org.url_get(f"c-d-{second}", "y").json()["served_by"] == f"d-{second}/c"

    # A label freed by a deletion may be taken again.
    victim.stub.DeleteApp(compute.DeleteAppRequest(organization_name=base, app_name="a-b"))
    attacker.deploy("a")
    assert attacker.url_get(f"a-b-{base}", "z").json()["served_by"] == f"b-{base}/a"


def _race(claimants: list[tuple[str, str]], orgs: dict[str, Org]) -> dict[str, str]:
    """Create every (app, org) at the same moment; each org's outcome."""
    barrier = threading.Barrier(len(claimants))
    outcomes: dict[str, str] = {}

    def create(app: str, org: str) -> None:
        request = compute.CreateAppRequest(organization_name=org, name=app)
        barrier.wait(10)
        try:
            orgs[org].stub.CreateApp(request)
            outcomes[org] = "created"
        except grpc.RpcError as err:
            info = error_info(err)
            outcomes[org] = info.reason if info else err.code().name

    threads = [threading.Thread(target=create, args=claim) for claim in claimants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_concurrent_creates_of_one_label_leave_exactly_one_app(
    secured: LocalPlatform, admin_token: str
) -> None:
    """Six organizations whose names split one label six ways create their
    app at the same moment, three rounds over: the database lets one win."""
    admin = BearerStub(secured.grpc_target, compute_grpc.ComputeServiceStub, admin_token)
    for _ in range(3):
        tail = unique_name("r")
        parts = ["p", "q", "r", "s", "t", "u"]
        # app p-q-…-(i-1), organization (i)-…-u-<tail>: every one is
        # "p-q-r-s-t-u-<tail>".
        claimants = [
            ("-".join(parts[:i]), "-".join([*parts[i:], tail])) for i in range(1, len(parts) + 1)
        ]
        orgs = {org: Org(secured, admin_token, org) for _, org in claimants}
        outcomes = _race(claimants, orgs)
        assert sorted(outcomes.values()) == ["URL_TAKEN"] * 5 + ["created"], outcomes
        winner = next(org for org, outcome in outcomes.items() if outcome == "created")
        for _, org in claimants:
            listed = admin.ListApps(compute.ListAppsRequest(organization_name=org)).apps
            assert len(listed) == (1 if org == winner else 0), org


def test_names_must_fit_one_dns_label(secured: LocalPlatform, admin_token: str) -> None:
    admin_identity = BearerStub(secured.grpc_target, identity_grpc.IdentityServiceStub, admin_token)
    too_long = "o" * 62
    code, reason, message, _ = _refusal(
        admin_identity.CreateOrganization, identity.CreateOrganizationRequest(name=too_long)
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "NAME_TOO_LONG_FOR_URL")
    assert "61" in message
    longest = unique_name("l").ljust(61, "x")
    org = Org(secured, admin_token, longest)
    org.stub.CreateApp(compute.CreateAppRequest(organization_name=longest, name="a"))
    code, reason, _, _ = _refusal(
        org.stub.CreateApp, compute.CreateAppRequest(organization_name=longest, name="ab")
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "NAME_TOO_LONG_FOR_URL")


def _request_naming(method, organization: str):
    request = message_factory.GetMessageClass(method.input_type)()
    fields = method.input_type.fields_by_name
    for name, value in (
        ("organization_name", organization),
        ("app_name", "greet"),
        ("execution_id", "01J0000000000000000000000"),
        ("name", "greet"),
    ):
        if name in fields:
            setattr(request, name, value)
    return request


def test_an_unknown_organization_is_not_found_everywhere_even_for_the_admin(
    secured: LocalPlatform, admin_token: str
) -> None:
    nope = unique_name("nope")
    scoped = [
        method
        for service in SERVICES
        for method in service.methods
        if "organization_name" in method.input_type.fields_by_name
        and POLICY[f"/{service.full_name}/{method.name}"].access
        not in (Access.PLATFORM_ADMIN, Access.PUBLIC)
    ]
    assert len(scoped) > 20
    for method in scoped:
        code, reason = _call(secured, method, _request_naming(method, nope), admin_token)
        assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ORGANIZATION_NOT_FOUND"), method.name
    # Nothing was created on the way.
    admin_identity = BearerStub(secured.grpc_target, identity_grpc.IdentityServiceStub, admin_token)
    names = [
        o.name
        for o in admin_identity.ListOrganizations(identity.ListOrganizationsRequest()).organizations
    ]
    assert nope not in names
    # Over HTTP as well: 404, not an empty list.
    listed = requests.get(
        f"{secured.http_url}/v1/ignite/app/{nope}",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=30,
    )
    assert listed.status_code == 404
    assert listed.json()["error"]["details"][0]["reason"] == "ORGANIZATION_NOT_FOUND"
    # A member of another organization learns nothing either way.
    member = Org(secured, admin_token, unique_name("m"))
    for org in (nope, member.name):
        request = compute.ListAppsRequest(organization_name=org)
        if org == member.name:
            assert member.stub.ListApps(request).apps == []
        else:
            code, reason, _, _ = _refusal(member.stub.ListApps, request)
            assert code == grpc.StatusCode.NOT_FOUND
