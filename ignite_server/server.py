"""The composition root: builds the server's parts from a Config and runs
them until SIGTERM/SIGINT, then shuts down in reverse order.

Start-up: state directory → PostgreSQL (embedded or by URL) → migrations →
notifications, logs → blob store → build pipelines → pod runner →
lifecycle → execution workers → gRPC → supervision of the embedded cluster
(restarted if its postmaster dies, health NOT_SERVING meanwhile:
store/supervisor.py). Shutdown: health NOT_SERVING → drain gRPC calls → stop
supervising → stop workers (their leases lapse to whoever runs next) → stop
pods → flush logs → close the pool → stop the embedded cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import structlog

from ignite_common import tracing
from ignite_common.admin_http import METRICS_PATH, AdminListener, start_admin_listener
from ignite_server.api.compute_service import ComputeService
from ignite_server.api.grpc_server import COMPUTE_SERVICE, IDENTITY_SERVICE, GrpcServer
from ignite_server.api.identity_service import IdentityService
from ignite_server.api.rpc_boundary import Authenticate
from ignite_server.backends.kubernetes import KubernetesBackend, KubernetesSettings
from ignite_server.backends.local import LocalBackend, oci_runtime
from ignite_server.backends.local.edge_forward import Edge
from ignite_server.backends.local.pod_trust import write_trust_dir
from ignite_server.builds.egress import EgressPolicy as BuildEgressPolicy
from ignite_server.builds.jail import BuildSpace
from ignite_server.builds.registry import default_pipelines
from ignite_server.config import Config
from ignite_server.containment import identities
from ignite_server.containment.identities import UidBlock
from ignite_server.core.activator import Activator
from ignite_server.core.app_locks import AppLocks
from ignite_server.core.app_views import AppViews, PublicUrls
from ignite_server.core.apps import Apps
from ignite_server.core.artifacts import Artifacts
from ignite_server.core.capacity import PodCapacity
from ignite_server.core.draft_builds import DraftBuilds
from ignite_server.core.executions import ExecutionService
from ignite_server.core.gradual_rollouts import GradualRollouts
from ignite_server.core.identity import Identity
from ignite_server.core.image_artifacts import ImageArtifacts
from ignite_server.core.invocations import Invocations
from ignite_server.core.logs import LogService
from ignite_server.core.oidc import ExternalIssuer
from ignite_server.core.readiness import ReadinessGate
from ignite_server.core.registry_retention import RegistryRetention
from ignite_server.core.rollout import Rollout
from ignite_server.core.run_targets import RunTargets
from ignite_server.core.secrets import Secrets
from ignite_server.core.tokens import TokenAuthority
from ignite_server.core.traffic import TrafficSplits
from ignite_server.core.versions import Versions
from ignite_server.core.worker import ExecutionWorkers
from ignite_server.domain.errors import Unavailable
from ignite_server.domain.principal import LOCAL_ADMIN, Principal
from ignite_server.images.builder import ContainerImageBuilder
from ignite_server.images.egress import EgressPolicy, parse_allow_list
from ignite_server.images.registry import EmbeddedRegistry, TokenAuth
from ignite_server.images.registry_storage import EmbeddedRegistryStorage
from ignite_server.images.registry_tokens import (
    ISSUER,
    SERVICE,
    PlatformRegistryAccess,
    RegistryTokens,
)
from ignite_server.images.token_endpoint import TokenEndpoint
from ignite_server.observability import metrics
from ignite_server.ports.execution_store import WORK_CHANNEL
from ignite_server.ports.image_builder import RegistryAccess, RegistryCredentials
from ignite_server.ports.log_store import LOG_CHANNEL
from ignite_server.store.apps import PostgresAppStore
from ignite_server.store.blobs import DiskBlobStore
from ignite_server.store.database import open_pool
from ignite_server.store.embedded import EmbeddedPostgres
from ignite_server.store.executions import PostgresExecutionStore
from ignite_server.store.identity import PostgresIdentityStore
from ignite_server.store.logs import PostgresLogStore
from ignite_server.store.notify import Notifier
from ignite_server.store.registry_images import PostgresRegistryImages
from ignite_server.store.rollouts import PostgresRolloutStore
from ignite_server.store.sealing import EnvSealer
from ignite_server.store.secrets import PostgresSecretStore
from ignite_server.store.secrets import load_key as load_secrets_key
from ignite_server.store.supervisor import DatabaseSupervisor

log = structlog.get_logger("ignite.server")


def make_runner(
    config: Config,
    logs: LogService,
    uids: UidBlock | None = None,
    registry_access: RegistryAccess | None = None,
) -> Activator:
    """The pod runner for this platform: sandboxed local pods (with uids
    from ``uids``) whose output goes to the app logs; image pods pull with
    their organization's credentials for the platform's registry
    (``registry_access``)."""

    sink = logs.pod_sink()

    if config.backend == "kubernetes":
        settings = KubernetesSettings(
            namespace=config.namespace,
            kubeconfig=config.kubeconfig,
            python_image=config.kubernetes_python_image,
            native_image=config.kubernetes_native_image,
            deno_image=config.kubernetes_deno_image,
            artifact_listen=config.artifact_listen,
            artifact_url=config.artifact_url,
            scaler_listen=config.keda_scaler_listen,
            scaler_address=config.keda_scaler_address,
            state_dir=config.state_dir,
            image_pull_policy=config.kubernetes_image_pull_policy,
        )
        cluster = KubernetesBackend(settings, log_sink=sink, registry_access=registry_access)
        return Activator(
            cluster,
            owns_backend=True,
            capacity=PodCapacity(None, config.quotas),
            events=logs.app_event,
        )
    backend = LocalBackend(
        config.state_dir,
        sandbox=config.sandbox,  # type: ignore[arg-type]
        production=config.production,
        allow_unsandboxed=config.allow_unsandboxed,
        log_sink=sink,
        edge=_edge(config),
        apps_domain=config.apps_domain,
        uids=uids,
        trust_dir=(
            write_trust_dir(config.apps_ca_file, config.state_dir / "pod-trust")
            if config.apps_ca_file is not None
            else None
        ),
        memory_capacity_mb=config.pod_memory_mb,
        host_memory_reserve_mb=config.host_memory_reserve_mb,
        registry_access=registry_access,
    )
    capacity = PodCapacity(backend.info.memory_capacity_mb, config.quotas)
    return Activator(backend, owns_backend=True, capacity=capacity, events=logs.app_event)


def _edge(config: Config) -> Edge | None:
    """``--apps-edge`` and ``--apps-edge-tls`` ("host:port"); None when
    the first is unset."""
    if not config.apps_edge:
        return None
    tls = _address(config.apps_edge_tls) if config.apps_edge_tls else None
    return Edge(_address(config.apps_edge), tls)


def _address(host_port: str) -> tuple[str, int]:
    host, _, port = host_port.rpartition(":")
    return host.strip("[]"), int(port)


async def _local_admin(authorization: str | None) -> Principal:
    return LOCAL_ADMIN


async def _any_organization(name: str) -> bool:
    return True


async def _image_artifacts(
    config: Config,
    stack: AsyncExitStack,
    blobs: DiskBlobStore,
    secrets: Secrets,
    space: BuildSpace,
    pool: asyncpg.Pool,
) -> tuple[ImageArtifacts | None, str, PlatformRegistryAccess | None]:
    """The image builder with its registry (embedded unless --registry is
    given) and who may pull from it; (None, why, None) when this machine
    lacks the image tools."""
    missing = [tool for tool in IMAGE_BUILD_TOOLS if shutil.which(tool) is None]
    if config.backend == "local":
        missing += [tool for tool in oci_runtime.missing_tools() if tool not in missing]
    if not config.registry and shutil.which("docker-registry") is None:
        missing.append("docker-registry")
    if missing:
        reason = f"install {', '.join(missing)} (`make sandbox`)"
        log.warning("images.unavailable", detail=reason)
        return None, reason, None
    if not identities.privileged():
        reason = "image builds and image pods need the server to run as root"
        log.warning("images.unavailable", detail=reason)
        return None, reason, None
    credentials = None
    tokens: RegistryTokens | None = None
    retention: RegistryRetention | None = None
    push_guard = None
    if config.registry:
        host = config.registry
        if config.registry_username:
            credentials = RegistryCredentials(config.registry_username, config.registry_password)
    else:
        tokens = await asyncio.to_thread(RegistryTokens, config.state_dir / "registry" / "auth")
        endpoint = TokenEndpoint(tokens)
        await endpoint.start()
        stack.push_async_callback(endpoint.close)
        registry = EmbeddedRegistry(
            config.state_dir,
            port=_registry_port(config.state_dir),
            token_auth=TokenAuth(endpoint.realm, SERVICE, ISSUER, tokens.certificate_path),
        )
        try:
            await registry.start()
        except (Unavailable, OSError) as exc:
            # The platform still serves the managed runtimes; image apps
            # answer IMAGE_MODE_UNSUPPORTED with this reason.
            await registry.close()
            reason = f"the embedded registry did not start: {exc}"
            log.error("images.unavailable", detail=reason)
            return None, reason, None
        stack.push_async_callback(registry.close)
        host = registry.host
        credentials = tokens.server_credentials()
        storage = EmbeddedRegistryStorage(registry, tokens)
        retention = RegistryRetention(
            PostgresRegistryImages(pool),
            storage,
            quota_bytes=config.registry_quota_mb * 1024 * 1024,
            interval_secs=config.registry_gc_interval_secs,
            grace_secs=config.registry_gc_grace_secs,
        )
        await retention.start()
        stack.push_async_callback(retention.close)
        push_guard = storage.pushing
    egress = EgressPolicy(parse_allow_list(config.egress_allow))
    builder = ContainerImageBuilder(
        host,
        space,
        config.state_dir / "cache" / "images" / "bases",
        push_guard=push_guard,
        egress=egress,
        registry_credentials=credentials,
        insecure_registries=((host,) if config.registry_insecure else ())
        + config.insecure_registries,
    )
    access = PlatformRegistryAccess(host, tokens)
    log.info("images.ready", registry=host, egress_allowed=",".join(config.egress_allow))
    return ImageArtifacts(blobs, builder, secrets, egress, access, retention), "", access


#: What building and importing images runs (Debian packages, `make sandbox`).
IMAGE_BUILD_TOOLS = ("buildah", "skopeo", "git", "unshare")


def _registry_port(state_dir: Path) -> int:
    """The embedded registry's port, chosen once per state folder: versions
    name their images by this address, so it must not change on restart."""
    saved = state_dir / "registry.port"
    try:
        return int(saved.read_text())
    except (OSError, ValueError):
        pass
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    saved.write_text(f"{port}\n")
    return port


def _supervise(
    embedded: EmbeddedPostgres, pool: asyncpg.Pool, grpc_server: GrpcServer
) -> DatabaseSupervisor:
    """Supervision of the embedded cluster, wired to health and the pool."""

    async def down() -> None:
        await grpc_server.set_serving(False)
        # Connections to a dead server are replaced, never handed out again.
        await pool.expire_connections()

    async def up() -> None:
        # Again: a connection made while the cluster was half up goes too.
        await pool.expire_connections()
        await grpc_server.set_serving(True)

    return DatabaseSupervisor(embedded, down, up)


async def _observe(config: Config, runner: Activator, pool: asyncpg.Pool) -> AdminListener:
    """/metrics on the admin listener, with the pods and the pool read at
    scrape time; traces to the OTLP collector when one is configured."""
    tracing.configure("ignite-server", config.otlp_endpoint)
    metrics.watch_runtime(
        runner.loads,
        lambda: metrics.PoolUse(pool.get_size(), pool.get_idle_size(), pool.get_max_size()),
    )
    return await start_admin_listener(config.metrics_listen)


async def serve(config: Config, stop: asyncio.Event | None = None) -> None:
    """Run the server until ``stop`` is set or a termination signal arrives."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    # The embedded cluster runs as an unprivileged user that must reach its
    # directory below the state dir; nothing else there is readable by others.
    os.chmod(config.state_dir, 0o711)
    async with AsyncExitStack() as stack:
        dsn = config.database_url
        embedded: EmbeddedPostgres | None = None
        if not dsn:
            embedded = EmbeddedPostgres(config.state_dir / "postgres")
            dsn = await embedded.start()
            stack.push_async_callback(embedded.stop)
        pool = await open_pool(dsn)
        stack.push_async_callback(pool.close)
        secrets_key = load_secrets_key(config.state_dir)
        store = PostgresAppStore(pool, EnvSealer(secrets_key))
        sealed = await store.seal_plaintext_env()
        if sealed:
            log.info("store.env_sealed", rows=sealed)
        notifier = Notifier(pool, (WORK_CHANNEL, LOG_CHANNEL))
        await notifier.start()
        stack.push_async_callback(notifier.close)
        logs = LogService(
            PostgresLogStore(pool),
            notifier.wait,
            config.log_retention_secs,
            max_log_bytes_per_day=config.quotas.max_log_bytes_per_day,
        )
        await logs.start()
        stack.push_async_callback(logs.close)
        external = (
            ExternalIssuer(
                config.oidc_issuer,
                config.oidc_audience or config.token_audience,
                config.oidc_algorithms,
                config.oidc_organization_claim,
                config.oidc_roles_claim,
            )
            if config.oidc_issuer
            else None
        )
        identity = Identity(
            PostgresIdentityStore(pool),
            TokenAuthority(config.token_issuer, config.token_audience, config.token_ttl_secs),
            external,
        )
        await identity.start()
        stack.push_async_callback(identity.close)
        await identity.bootstrap_admin(config.admin_credentials.resolve())
        authenticate: Authenticate = identity.authenticate
        organization_exists = identity.organizations.exists
        if config.auth == "off":
            log.warning("auth.off", detail="every caller acts as the platform admin")
            authenticate = _local_admin
            # No tenants to keep apart: every name is an organization.
            organization_exists = _any_organization
        blobs = DiskBlobStore(config.state_dir / "blobs")
        blobs.sweep_scratch()
        secrets = Secrets(PostgresSecretStore(pool, secrets_key))
        uids = identities.reserve(config.state_dir, config.builds.uid_range)
        stack.callback(uids.release)
        space = BuildSpace(
            config.state_dir,
            uids=uids,
            quota_mb=config.builds.cache_quota_mb,
            egress=BuildEgressPolicy.allowing(config.egress_allow),
            slots=config.builds.slots,
        )
        stack.callback(space.close)
        images, images_unavailable, registry_access = await _image_artifacts(
            config, stack, blobs, secrets, space, pool
        )
        artifacts = Artifacts(
            blobs,
            default_pipelines(space, config.builds),
            images=images,
            images_unavailable=images_unavailable,
        )
        runner = make_runner(config, logs, uids, registry_access)
        stack.push_async_callback(runner.close)
        if isinstance(runner.backend, KubernetesBackend):
            await runner.backend.open()
        drafts = DraftBuilds(store, artifacts, logs)
        targets = RunTargets(store, artifacts, drafts)
        rollout = Rollout(runner, targets)
        views = AppViews(
            runner,
            PublicUrls(config.apps_domain, config.apps_url_scheme, config.apps_url_port),
            drafts.compiling,
        )
        locks = AppLocks()
        gate = ReadinessGate(runner, logs, config.readiness_timeout_secs)
        rollouts = GradualRollouts(
            store,
            PostgresRolloutStore(pool),
            rollout,
            logs,
            locks,
            owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
        )
        versions = Versions(
            store, drafts, rollout, views, targets, gate, rollouts, locks, runner.capacity
        )
        apps = Apps(
            store,
            blobs,
            views,
            targets,
            rollout,
            versions,
            rollouts,
            locks,
            config.quotas,
            runner.capacity,
        )
        await apps.report_host_conflicts()
        traffic = TrafficSplits(store, targets, gate, rollout, rollouts, locks, views)
        execution_store = PostgresExecutionStore(pool)
        executions = ExecutionService(execution_store, store, targets, config.quotas)
        invocations = Invocations(
            store, targets, runner, logs.app_event, on_served=rollouts.observe
        )
        rollouts.start()
        stack.push_async_callback(rollouts.close)
        workers = ExecutionWorkers(
            execution_store,
            store,
            targets,
            invocations,
            notifier.wait,
            workers=config.workers,
            lease_secs=config.execution_lease_secs,
            per_org_limit=config.quotas.running_cap(config.workers),
        )
        await workers.start()
        stack.push_async_callback(workers.close)
        grpc_server = GrpcServer(
            {
                COMPUTE_SERVICE.full_name: ComputeService(
                    apps, versions, invocations, executions, logs, secrets, traffic
                ),
                IDENTITY_SERVICE.full_name: IdentityService(identity),
            },
            authenticate,
            organization_exists,
        )
        port = grpc_server.bind(config.listen, config.tls_cert, config.tls_key)
        admin = await _observe(config, runner, pool)
        stack.push_async_callback(admin.close)
        stack.callback(tracing.shutdown)
        await grpc_server.start()
        if embedded is not None:
            supervisor = _supervise(embedded, pool, grpc_server)
            await supervisor.start()
            stack.push_async_callback(supervisor.close)
        host = config.listen.rsplit(":", 1)[0]
        address = f"{host}:{port}"
        log.info(
            "server.serving",
            address=address,
            tls=config.tls_cert is not None,
            metrics=f"http://{admin.address}{METRICS_PATH}",
        )
        if config.ready_file is not None:
            tmp = config.ready_file.with_suffix(".tmp")
            ready = {"grpc": address, "metrics": admin.address, "pid": os.getpid()}
            if images is not None:
                ready["registry"] = images.registry
            tmp.write_text(json.dumps(ready))
            tmp.replace(config.ready_file)
        await stop.wait()
        log.info("server.stopping", grace_secs=config.shutdown_grace_secs)
        await grpc_server.stop(config.shutdown_grace_secs)
    log.info("server.stopped")
