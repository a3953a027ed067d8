"""Server settings, from command-line flags or IGNITE_* environment variables.

Flags win over the environment; every setting has a default that suits the
embedded local platform (`make run`).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from ignite_common.addresses import is_loopback
from ignite_server.domain import quotas
from ignite_server.domain.build_settings import (
    DEFAULT_CACHE_QUOTA_MB,
    DEFAULT_PIP_INDEX_URL,
    DEFAULT_SLOTS,
    DEFAULT_UID_RANGE,
    BuildSettings,
    parse_uid_range,
)
from ignite_server.domain.quotas import Quotas


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "ignite"


@dataclass(frozen=True)
class Config:
    listen: str
    state_dir: Path
    database_url: str
    tls_cert: Path | None
    tls_key: Path | None
    insecure: bool
    apps_domain: str
    apps_url_scheme: str
    apps_url_port: int
    sandbox: str
    production: bool
    allow_unsandboxed: bool
    ready_file: Path | None
    shutdown_grace_secs: float
    log_format: str
    workers: int
    execution_lease_secs: float
    log_retention_secs: int
    auth: str
    token_issuer: str
    token_audience: str
    token_ttl_secs: int
    admin_credentials: Path
    oidc_issuer: str
    oidc_audience: str
    oidc_algorithms: tuple[str, ...]
    oidc_organization_claim: str
    oidc_roles_claim: str
    #: The admin listener serving /metrics (docs/observability.md).
    metrics_listen: str = "localhost:9464"
    #: OTLP/gRPC collector traces go to; empty: no tracing.
    otlp_endpoint: str = ""
    #: Where pods run: "local" (sandboxed processes) or "kubernetes".
    backend: str = "local"
    #: The Kubernetes backend's settings (docs/kubernetes.md).
    kubeconfig: str = ""
    namespace: str = "default"
    kubernetes_python_image: str = "ignite.local/runtime/python:3.11"
    kubernetes_native_image: str = "ignite.local/runtime/native:1"
    kubernetes_deno_image: str = "ignite.local/runtime/deno:2"
    kubernetes_image_pull_policy: str = "IfNotPresent"
    artifact_listen: str = "0.0.0.0:8090"
    artifact_url: str = ""
    keda_scaler_listen: str = "0.0.0.0:9090"
    keda_scaler_address: str = ""
    #: Image apps (docs/runtimes/images.md): the registry images are kept in
    #: ("" = an embedded one on loopback), its user name (the password comes
    #: from IGNITE_REGISTRY_PASSWORD only), and where local image pods reach
    #: the HTTP edge (other apps' URLs).
    registry: str = ""
    registry_username: str = ""
    registry_password: str = ""
    registry_insecure: bool = False
    apps_edge: str = ""
    #: Builds (docs/builds.md).
    builds: BuildSettings = field(default_factory=BuildSettings)
    #: The edge's TLS listener for app hosts, and the CA file whose
    #: certificates image pods trust (local mode: the platform's own CA).
    apps_edge_tls: str = ""
    apps_ca_file: Path | None = None
    #: How long a version may take to become ready before a publish,
    #: rollback or traffic change fails (core/readiness.py).
    readiness_timeout_secs: float = 60.0
    #: Per-organization caps (docs/limits.md, "Organizations").
    quotas: Quotas = field(default_factory=Quotas)
    #: Memory (MiB) all local pods together may have; 0: the host's memory
    #: less ``host_memory_reserve_mb`` (docs/limits.md, "The machine").
    pod_memory_mb: int = 0
    #: Memory (MiB) kept for the server, PostgreSQL, builds and the host
    #: when ``pod_memory_mb`` is 0; 0: a quarter of the host, at least 2 GiB.
    host_memory_reserve_mb: int = 0
    #: Where the platform may connect on a user's behalf (``--egress-allow``,
    #: one list): ``default`` is the package registries builds reach through
    #: their egress proxy (builds/egress.py); every other entry names a host,
    #: address or network builds and the server's own image and git fetches
    #: (images/egress.py) may reach although it is not public.
    egress_allow: tuple[str, ...] = ("default",)
    #: Other registries (host:port) reached without TLS verification (plain
    #: HTTP on loopback): for prebuilt images and Dockerfile base images.
    insecure_registries: tuple[str, ...] = ()
    #: What one organization may keep in the embedded registry (MiB).
    registry_quota_mb: int = 10240
    #: How often the embedded registry's unreferenced images are collected.
    registry_gc_interval_secs: float = 3600.0
    #: A pushed image no version names yet is kept at least this long.
    registry_gc_grace_secs: float = 600.0


def parse(argv: list[str] | None = None) -> Config:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="ignite-server", description="The Ignite gRPC server.")
    parser.add_argument(
        "--listen",
        default=env("IGNITE_LISTEN", "localhost:50051"),
        help="host:port of the gRPC server (production: 0.0.0.0:443 with TLS)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(env("IGNITE_STATE_DIR", str(_default_state_dir()))),
        help="code, artifacts, caches and the embedded database live here",
    )
    parser.add_argument(
        "--database-url",
        default=env("IGNITE_DATABASE_URL", ""),
        help="PostgreSQL DSN; empty starts an embedded cluster in the state dir",
    )
    parser.add_argument("--tls-cert", type=Path, default=env("IGNITE_TLS_CERT") or None)
    parser.add_argument("--tls-key", type=Path, default=env("IGNITE_TLS_KEY") or None)
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=env("IGNITE_INSECURE", "") == "1",
        help="allow plaintext on a non-loopback address",
    )
    parser.add_argument("--apps-domain", default=env("IGNITE_APPS_DOMAIN", "ignite.localhost"))
    parser.add_argument("--apps-url-scheme", default=env("IGNITE_APPS_URL_SCHEME", "http"))
    parser.add_argument(
        "--apps-url-port", type=int, default=int(env("IGNITE_APPS_URL_PORT", "8080"))
    )
    parser.add_argument(
        "--sandbox", choices=("auto", "required", "off"), default=env("IGNITE_SANDBOX", "auto")
    )
    parser.add_argument(
        "--production", action="store_true", default=env("IGNITE_PRODUCTION", "") == "1"
    )
    parser.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        default=env("IGNITE_ALLOW_UNSANDBOXED", "") == "1",
    )
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=env("IGNITE_READY_FILE") or None,
        help='write {"grpc": "host:port"} here once serving',
    )
    parser.add_argument(
        "--shutdown-grace", type=float, default=float(env("IGNITE_SHUTDOWN_GRACE", "30"))
    )
    parser.add_argument(
        "--log-format", choices=("console", "json"), default=env("IGNITE_LOG_FORMAT", "console")
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=int(env("IGNITE_WORKERS", "32")),
        help="asynchronous execution workers in this process",
    )
    parser.add_argument(
        "--execution-lease-secs",
        type=float,
        default=float(env("IGNITE_EXECUTION_LEASE_SECS", "30")),
        help="a dead worker's executions are taken over after this long",
    )
    parser.add_argument(
        "--log-retention-secs",
        type=int,
        default=int(env("IGNITE_LOG_RETENTION_SECS", str(7 * 86400))),
    )
    parser.add_argument(
        "--auth",
        choices=("required", "off"),
        default=env("IGNITE_AUTH", "required"),
        help="off: every caller is the platform admin (local development only)",
    )
    parser.add_argument("--token-issuer", default=env("IGNITE_TOKEN_ISSUER", "ignite"))
    parser.add_argument("--token-audience", default=env("IGNITE_TOKEN_AUDIENCE", "ignite"))
    parser.add_argument(
        "--token-ttl-secs", type=int, default=int(env("IGNITE_TOKEN_TTL_SECS", "3600"))
    )
    parser.add_argument(
        "--admin-credentials",
        type=Path,
        default=env("IGNITE_ADMIN_CREDENTIALS") or None,
        help="where a first start writes the platform admin's credentials"
        " (default: <state dir>/admin-credentials.json)",
    )
    parser.add_argument(
        "--oidc-issuer",
        default=env("IGNITE_OIDC_ISSUER", ""),
        help="also accept access tokens from this OpenID Connect issuer",
    )
    parser.add_argument(
        "--oidc-audience",
        default=env("IGNITE_OIDC_AUDIENCE", ""),
        help="the audience those tokens must name (default: --token-audience)",
    )
    parser.add_argument(
        "--oidc-algorithms",
        default=env("IGNITE_OIDC_ALGORITHMS", "RS256,ES256"),
        help="comma-separated signature algorithms accepted from the issuer",
    )
    parser.add_argument(
        "--oidc-organization-claim", default=env("IGNITE_OIDC_ORGANIZATION_CLAIM", "org")
    )
    parser.add_argument("--oidc-roles-claim", default=env("IGNITE_OIDC_ROLES_CLAIM", "roles"))
    parser.add_argument(
        "--metrics-listen",
        default=env("IGNITE_METRICS_LISTEN", "localhost:9464"),
        help="host:port of the admin listener serving /metrics (port 0: any free port)",
    )
    parser.add_argument(
        "--otlp-endpoint",
        default=env("IGNITE_OTLP_ENDPOINT", ""),
        help="send traces to this OTLP/gRPC collector (host:port); empty: no tracing",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "kubernetes"),
        default=env("IGNITE_BACKEND", "local"),
        help="where pods run: sandboxed local processes, or a Kubernetes cluster",
    )
    parser.add_argument(
        "--kubeconfig",
        default=env("IGNITE_KUBECONFIG", ""),
        help="kubeconfig of the cluster (empty: the in-cluster service account)",
    )
    parser.add_argument(
        "--namespace",
        default=env("IGNITE_NAMESPACE", "default"),
        help="namespace of the apps' Deployments, Services and ScaledObjects",
    )
    parser.add_argument(
        "--kubernetes-python-image",
        default=env("IGNITE_KUBERNETES_PYTHON_IMAGE", "ignite.local/runtime/python:3.11"),
    )
    parser.add_argument(
        "--kubernetes-native-image",
        default=env("IGNITE_KUBERNETES_NATIVE_IMAGE", "ignite.local/runtime/native:1"),
    )
    parser.add_argument(
        "--kubernetes-deno-image",
        default=env("IGNITE_KUBERNETES_DENO_IMAGE", "ignite.local/runtime/deno:2"),
    )
    parser.add_argument(
        "--kubernetes-image-pull-policy",
        choices=("IfNotPresent", "Always", "Never"),
        default=env("IGNITE_KUBERNETES_IMAGE_PULL_POLICY", "IfNotPresent"),
    )
    parser.add_argument(
        "--artifact-listen",
        default=env("IGNITE_ARTIFACT_LISTEN", "0.0.0.0:8090"),
        help="host:port where pods fetch artifacts (kubernetes backend)",
    )
    parser.add_argument(
        "--artifact-url",
        default=env("IGNITE_ARTIFACT_URL", ""),
        help="URL prefix pods reach the artifact listener by (default: http://<listen>)",
    )
    parser.add_argument(
        "--keda-scaler-listen",
        default=env("IGNITE_KEDA_SCALER_LISTEN", "0.0.0.0:9090"),
        help="host:port of KEDA's external-push scaler (kubernetes backend)",
    )
    parser.add_argument(
        "--keda-scaler-address",
        default=env("IGNITE_KEDA_SCALER_ADDRESS", ""),
        help="host:port KEDA dials for the scaler (default: the listen address)",
    )
    parser.add_argument(
        "--registry",
        default=env("IGNITE_REGISTRY", ""),
        help="registry host[:port] for image apps' images (empty: an embedded one on loopback)",
    )
    parser.add_argument("--registry-username", default=env("IGNITE_REGISTRY_USERNAME", ""))
    parser.add_argument(
        "--registry-insecure",
        action="store_true",
        default=env("IGNITE_REGISTRY_INSECURE", "") == "1",
        help="reach --registry over plain HTTP",
    )
    parser.add_argument(
        # One list for builds and the server's own fetches; the builds'
        # former name stays accepted.
        "--egress-allow",
        "--build-egress-allow",
        dest="egress_allow",
        default=env("IGNITE_EGRESS_ALLOW", env("IGNITE_BUILD_EGRESS_ALLOW", "default")),
        help="comma-separated hosts (name[:port], *.suffix), addresses or networks builds,"
        " --image and --git-url may reach although they are loopback, link-local or private;"
        " 'default' stands for the package registries builds use (default: default)",
    )
    parser.add_argument(
        "--insecure-registries",
        default=env("IGNITE_INSECURE_REGISTRIES", ""),
        help="comma-separated registries (host:port) reached without TLS verification,"
        " for prebuilt images and Dockerfile base images",
    )
    parser.add_argument(
        "--registry-quota-mb",
        type=int,
        default=int(env("IGNITE_REGISTRY_QUOTA_MB", "10240")),
        help="what one organization's images may take in the embedded registry (MiB)",
    )
    parser.add_argument(
        "--registry-gc-interval-secs",
        type=float,
        default=float(env("IGNITE_REGISTRY_GC_INTERVAL_SECS", "3600")),
        help="how often images no version names are removed from the embedded registry",
    )
    parser.add_argument(
        "--registry-gc-grace-secs",
        type=float,
        default=float(env("IGNITE_REGISTRY_GC_GRACE_SECS", "600")),
        help="a pushed image no version names yet is kept at least this long",
    )
    parser.add_argument(
        "--apps-edge",
        default=env("IGNITE_APPS_EDGE", ""),
        help="host:port of the HTTP edge, where local image pods reach other apps' URLs",
    )
    parser.add_argument(
        "--uid-range",
        default=env("IGNITE_UID_RANGE", f"{DEFAULT_UID_RANGE[0]}:{DEFAULT_UID_RANGE[1]}"),
        help="FIRST:COUNT of the host uids pods and builds may use (a block per state folder)",
    )
    parser.add_argument(
        "--build-cache-quota-mb",
        type=int,
        default=int(env("IGNITE_BUILD_CACHE_QUOTA_MB", str(DEFAULT_CACHE_QUOTA_MB))),
        help="size of each organization's build volume (its caches and running builds)",
    )
    parser.add_argument(
        "--build-slots",
        type=int,
        default=int(env("IGNITE_BUILD_SLOTS", str(DEFAULT_SLOTS))),
        help="builds that run at once (waiting does not count against a build's deadline)",
    )
    parser.add_argument(
        "--pip-index-url",
        default=env("IGNITE_PIP_INDEX_URL", DEFAULT_PIP_INDEX_URL),
        help="the package index Python builds install requirements from",
    )
    parser.add_argument(
        "--pip-allow-sdists",
        action="store_true",
        default=env("IGNITE_PIP_ALLOW_SDISTS", "") == "1",
        help="let pip build source distributions (their build code runs in the build's jail)",
    )
    parser.add_argument(
        "--apps-edge-tls",
        default=env("IGNITE_APPS_EDGE_TLS", ""),
        help="host:port of the edge's TLS listener, for image pods' https:// app URLs",
    )
    parser.add_argument(
        "--apps-ca-file",
        type=Path,
        default=env("IGNITE_APPS_CA_FILE") or None,
        help="PEM CA certificates image pods trust (the CA that signed the edge's certificate)",
    )
    parser.add_argument(
        "--readiness-timeout-secs",
        type=float,
        default=float(env("IGNITE_READINESS_TIMEOUT_SECS", "60")),
        help="how long a new version may take to become ready before its publish fails",
    )
    _add_quota_flags(parser)
    args = parser.parse_args(argv)
    try:
        uid_range = parse_uid_range(args.uid_range)
    except ValueError as exc:
        parser.error(str(exc))
    if args.build_cache_quota_mb < 256 or args.build_slots < 1:
        parser.error("--build-cache-quota-mb needs at least 256 and --build-slots at least 1")
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_cert is None and not is_loopback(args.listen) and not args.insecure:
        parser.error(
            f"refusing plaintext gRPC on {args.listen}: give --tls-cert/--tls-key,"
            " listen on loopback, or pass --insecure"
        )
    return Config(
        listen=args.listen,
        state_dir=args.state_dir.resolve(),
        database_url=args.database_url,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
        apps_domain=args.apps_domain,
        apps_url_scheme=args.apps_url_scheme,
        apps_url_port=args.apps_url_port,
        sandbox=args.sandbox,
        production=args.production,
        allow_unsandboxed=args.allow_unsandboxed,
        ready_file=args.ready_file,
        shutdown_grace_secs=args.shutdown_grace,
        log_format=args.log_format,
        workers=args.workers,
        execution_lease_secs=args.execution_lease_secs,
        log_retention_secs=args.log_retention_secs,
        auth=args.auth,
        token_issuer=args.token_issuer,
        token_audience=args.token_audience,
        token_ttl_secs=args.token_ttl_secs,
        admin_credentials=(args.admin_credentials or args.state_dir / "admin-credentials.json"),
        oidc_issuer=args.oidc_issuer,
        oidc_audience=args.oidc_audience,
        oidc_algorithms=tuple(a.strip() for a in args.oidc_algorithms.split(",") if a.strip()),
        oidc_organization_claim=args.oidc_organization_claim,
        oidc_roles_claim=args.oidc_roles_claim,
        metrics_listen=args.metrics_listen,
        otlp_endpoint=args.otlp_endpoint,
        backend=args.backend,
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        kubernetes_python_image=args.kubernetes_python_image,
        kubernetes_native_image=args.kubernetes_native_image,
        kubernetes_deno_image=args.kubernetes_deno_image,
        kubernetes_image_pull_policy=args.kubernetes_image_pull_policy,
        artifact_listen=args.artifact_listen,
        artifact_url=args.artifact_url,
        keda_scaler_listen=args.keda_scaler_listen,
        keda_scaler_address=args.keda_scaler_address,
        registry=args.registry,
        registry_username=args.registry_username,
        # A password on the command line would show in the process list.
        registry_password=env("IGNITE_REGISTRY_PASSWORD", ""),
        registry_insecure=args.registry_insecure,
        apps_edge=args.apps_edge,
        builds=BuildSettings(
            uid_range=uid_range,
            cache_quota_mb=args.build_cache_quota_mb,
            slots=args.build_slots,
            pip_index_url=args.pip_index_url,
            pip_allow_sdists=args.pip_allow_sdists,
        ),
        apps_edge_tls=args.apps_edge_tls,
        apps_ca_file=args.apps_ca_file,
        readiness_timeout_secs=args.readiness_timeout_secs,
        quotas=Quotas(
            max_apps=args.quota_apps,
            max_pod_memory_mb=args.quota_pod_memory_mb,
            max_reserved_memory_mb=args.quota_reserved_memory_mb,
            max_log_bytes_per_day=args.quota_log_mb_per_day * 1024 * 1024,
            max_pending_executions=args.quota_pending_executions,
            max_running_executions=args.quota_running_executions,
        ),
        pod_memory_mb=args.pod_memory_mb,
        host_memory_reserve_mb=args.host_memory_reserve_mb,
        egress_allow=tuple(e.strip() for e in args.egress_allow.split(",") if e.strip()),
        insecure_registries=tuple(
            r.strip() for r in args.insecure_registries.split(",") if r.strip()
        ),
        registry_quota_mb=args.registry_quota_mb,
        registry_gc_interval_secs=args.registry_gc_interval_secs,
        registry_gc_grace_secs=args.registry_gc_grace_secs,
    )


def _add_quota_flags(parser: argparse.ArgumentParser) -> None:
    """The per-organization quotas and the machine's pod capacity; each flag
    also reads an IGNITE_* variable (docs/limits.md)."""
    env = os.environ.get
    mib = 1024 * 1024

    def number(flag: str, variable: str, default: int, text: str) -> None:
        parser.add_argument(
            flag,
            type=int,
            default=int(env(variable, str(default))),
            metavar="N",
            help=f"{text} (env {variable}; default {default})",
        )

    number("--quota-apps", "IGNITE_QUOTA_APPS", quotas.DEFAULT_MAX_APPS, "apps per organization")
    number(
        "--quota-pod-memory-mb",
        "IGNITE_QUOTA_POD_MEMORY_MB",
        quotas.DEFAULT_MAX_POD_MEMORY_MB,
        "MiB of memory limits an organization's running pods may hold at once",
    )
    number(
        "--quota-reserved-memory-mb",
        "IGNITE_QUOTA_RESERVED_MEMORY_MB",
        quotas.DEFAULT_MAX_RESERVED_MEMORY_MB,
        "MiB an organization may keep reserved as warm pods (reserved_capacity x memory)",
    )
    number(
        "--quota-log-mb-per-day",
        "IGNITE_QUOTA_LOG_MB_PER_DAY",
        quotas.DEFAULT_MAX_LOG_BYTES_PER_DAY // mib,
        "MiB of app log lines stored per organization per UTC day",
    )
    number(
        "--quota-pending-executions",
        "IGNITE_QUOTA_PENDING_EXECUTIONS",
        quotas.DEFAULT_MAX_PENDING_EXECUTIONS,
        "asynchronous executions an organization may have waiting",
    )
    number(
        "--quota-running-executions",
        "IGNITE_QUOTA_RUNNING_EXECUTIONS",
        quotas.DEFAULT_MAX_RUNNING_EXECUTIONS,
        "executions of one organization running at once, over all servers; 0: --workers less 4",
    )
    number(
        "--pod-memory-mb",
        "IGNITE_POD_MEMORY_MB",
        0,
        "MiB of memory all local pods together may have; 0: the host's less the reserve",
    )
    number(
        "--host-memory-reserve-mb",
        "IGNITE_HOST_MEMORY_RESERVE_MB",
        0,
        "MiB kept off pods for the server, database and builds; 0: a quarter, at least 2048",
    )
