"""``dodil ignite traffic``: how an app's requests are split between its
versions (docs/rollouts.md)."""

from __future__ import annotations

import re

import click
from dodil.ignite.v1 import ignite_common_pb2 as common
from dodil.ignite.v1 import ignite_compute_pb2 as compute

from dodil_cli.completion import complete_app_ids
from dodil_cli.errors import UsageError
from dodil_cli.ids import AppRef
from dodil_cli.lifecycle import get_app
from dodil_cli.options import common_options, pass_session
from dodil_cli.output import fields
from dodil_cli.session import Session
from dodil_cli.views import rollout_text, tags_text, traffic_text

_SHARE = re.compile(r"v?(\d+)=(\d+)%?")


def parse_shares(shares: tuple[str, ...]) -> list[common.TrafficTarget]:
    """``v3=90 v4=10`` (or ``3=90``) as traffic targets."""
    targets = []
    for share in shares:
        match = _SHARE.fullmatch(share.strip().lower())
        if not match:
            raise UsageError(f"{share!r} is not VERSION=PERCENT, e.g. v3=90")
        targets.append(common.TrafficTarget(version=int(match[1]), percent=int(match[2])))
    total = sum(t.percent for t in targets)
    if targets and total != 100:
        raise UsageError(f"the shares add up to {total}%, not 100%")
    return targets


def traffic_detail(app: common.AppMeta) -> str:
    return fields(
        [
            ("App", f"{app.organization_name}:{app.name}"),
            ("Active version", str(app.active_version) if app.active_version else "none"),
            ("Traffic", traffic_text(app)),
            ("Tags", tags_text(app.tags)),
            ("Rollout", rollout_text(app.rollout)),
        ]
    )


@click.group("traffic")
def traffic_group() -> None:
    """Split an app's traffic between versions."""


def _set(session: Session, ref: AppRef, targets: list[common.TrafficTarget]) -> None:
    request = compute.SetTrafficRequest(
        organization_name=ref.organization, app_name=ref.name, traffic=targets
    )
    with session.progress.step(f"Setting the traffic of {ref} (versions gaining it start first)"):
        app = session.client.call("SetTraffic", request).app
    session.printer.emit(app, lambda: traffic_detail(app))


@traffic_group.command("set")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@click.argument("shares", nargs=-1, required=True, metavar="vN=PERCENT...")
@common_options
@pass_session
def set_(session: Session, app_id: str, shares: tuple[str, ...]) -> None:
    """Split the traffic, e.g. `traffic set acme:greet v3=90 v4=10`.

    The shares add up to 100; each version is made ready before it takes
    its share, and the one with the largest share becomes the active one.
    A running rollout is cancelled.
    """
    _set(session, session.app_ref(app_id), parse_shares(shares))


@traffic_group.command("clear")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@common_options
@pass_session
def clear(session: Session, app_id: str) -> None:
    """Send all traffic to the active version again."""
    _set(session, session.app_ref(app_id), [])


@traffic_group.command("get")
@click.argument("app_id", metavar="[ORG:]APP", shell_complete=complete_app_ids)
@common_options
@pass_session
def get(session: Session, app_id: str) -> None:
    """Show the split, the tags and the last rollout with its decision."""
    app = get_app(session, session.app_ref(app_id))
    session.printer.emit(
        {
            "active_version": app.active_version,
            "traffic": list(app.traffic),
            "tags": dict(app.tags),
            "rollout": app.rollout,
        },
        lambda: traffic_detail(app),
    )
