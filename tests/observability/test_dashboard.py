"""The Grafana dashboard queries only series the platform exports, and
docs/observability.md lists every one of them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ignite_gateway import telemetry  # noqa: F401 (registers the gateway's series)
from ignite_server.observability import metrics  # noqa: F401 (registers the server's)

ROOT = Path(__file__).resolve().parents[2]
_SERIES = re.compile(r"\bignite_[a-z_]+")
_SUFFIXES = ("_bucket", "_count", "_sum")


def _base(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _exported() -> set[str]:
    from prometheus_client import REGISTRY

    names = set()
    for family in REGISTRY.collect():
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    # Read at scrape time from the runtime collector (registered by server.py).
    names |= {"ignite_pods", "ignite_activation_queue_depth", "ignite_invocations_in_flight",
              "ignite_db_pool_connections", "ignite_db_pool_max_connections"}  # fmt: skip
    return {n for n in names if n.startswith("ignite_")}


def test_dashboard_uses_exported_series_and_docs_list_them() -> None:
    dashboard = json.loads((ROOT / "observability" / "grafana-dashboard.json").read_text())
    used = {
        _base(name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in _SERIES.findall(target["expr"])
    }
    exported = _exported()
    assert used <= exported, used - exported
    docs = (ROOT / "docs" / "observability.md").read_text()
    assert {n for n in exported if f"`{n}`" not in docs} == set()
