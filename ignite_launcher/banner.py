"""What `make run` prints once the platform serves: where it listens, where
its logs and admin credentials are, and whether app code is sandboxed."""

from __future__ import annotations

import os

from ignite_launcher.platform import LocalPlatform
from ignite_server.containment import sandbox


def sandbox_line() -> str:
    """The banner's word on the pod sandbox, in plain words when missing."""
    try:
        sandbox.bubblewrap()
    except sandbox.SandboxUnavailable as exc:
        return (
            f"WARNING: app code runs WITHOUT a sandbox ({exc}).\n"
            "         Apps can reach this machine's files, network and processes. "
            "Run `make sandbox` (as root) and restart."
        )
    if os.geteuid() != 0:
        return "Pods are sandboxed (bubblewrap, seccomp), under this user's own uid."
    return "Pods are sandboxed: bubblewrap, seccomp, an unprivileged uid per pod, capped tmpfs."


def banner(platform: LocalPlatform, *, signed_in: bool) -> str:
    """The addresses of a running platform; ``signed_in`` when `dodil` was
    logged in with its admin credentials."""
    return (
        f"Ignite is running.\n"
        f"  gRPC   {platform.grpc_target}   (dodil ignite config set api_endpoint "
        f"{platform.grpc_target})\n"
        f"  HTTP   {platform.http_url}\n"
        f"  apps   http://<app>-<org>.{platform.apps_domain}:{platform.gateway_port}\n"
        + (
            f"         https://<app>-<org>.{platform.apps_domain}:{platform.https_port}"
            f"   (curl --cacert {platform.ca_file})\n"
            if platform.https_port is not None
            else ""
        )
        + f"  metrics {platform.server_metrics_url} (server), "
        f"{platform.gateway_metrics_url} (gateway)\n"
        f"  console {platform.http_url}/console\n"
        + (
            f"  images {platform.registry}   (the embedded registry of image apps)\n"
            if platform.registry
            else "  images unavailable (image apps need root and `make sandbox`)\n"
        )
        + f"  logs   {platform.log_dir}\n"
        f"  admin  {platform.state_dir / 'admin-credentials.json'}"
        f"{'  (dodil is logged in with it)' if signed_in else ''}\n"
        f"Press Ctrl-C to stop."
    )
