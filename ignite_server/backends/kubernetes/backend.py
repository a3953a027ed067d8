"""The Kubernetes pod backend (ports/pod_backend.py ``PodBackend``).

Construction (server.py)::

    backend = KubernetesBackend(settings, log_sink=sink)
    await backend.open()        # API client, pod watch, artifact and scaler listeners
    pod = await backend.start(spec)   # a ready pod of spec's revision
    ...
    await backend.close()

How the platform's pods map onto the cluster: the server's autoscaler and
activator (core/revision_throttler.py) stay the one place that decides how many pods
a version runs. ``start(spec)`` makes sure the revision's objects exist
(objects.py: Deployment, Service, NetworkPolicy, ScaledObject, under the
app's ConfigMap), then asks for one more pod: the revision's demand rises,
KEDA hears it on the scaler's push stream (scaler.py) and scales the
Deployment, and ``start`` returns a handle on the next pod that answers its
health probe (revision_pods.py). ``Pod.stop`` gives the pod back: its
demand falls and KEDA scales the Deployment down, removing released pods
first (pod-deletion cost); a pod stopped with no grace (a request ran past
its timeout) is deleted at once. One watch over the namespace's pods feeds
every revision; each running pod's output is followed into the app's logs.
Deleting an app deletes its ConfigMap and, by label, everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from ignite_common.task_supervisor import Backoff, TaskSupervisor
from ignite_server.backends.kubernetes import objects
from ignite_server.backends.kubernetes import pod as pods
from ignite_server.backends.kubernetes.artifact_server import ArtifactServer
from ignite_server.backends.kubernetes.objects import Artifact, ClusterRevision
from ignite_server.backends.kubernetes.pod import KubernetesPod
from ignite_server.backends.kubernetes.pod_logs import follow
from ignite_server.backends.kubernetes.revision_pods import RevisionPods
from ignite_server.backends.kubernetes.scaler import Demand, ScalerServer
from ignite_server.backends.kubernetes.settings import KubernetesSettings
from ignite_server.backends.pod_logs import PodLogDemux
from ignite_server.domain.models import DeploymentState, Scaling
from ignite_server.ports.image_builder import RegistryAccess
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.launch_manifest import LaunchManifest, ManifestError
from ignite_server.ports.pod_backend import (
    BackendInfo,
    LogSink,
    ObservedDeployment,
    PodSpec,
    PodStartError,
)
from ignite_server.ports.pod_protocol import CODE_PLACEHOLDER
from ignite_server.ports.registry_auth import docker_auth_config

log = structlog.get_logger(__name__)

#: A broken watch is resumed after this pause (the apiserver restarting).
WATCH_RETRY_SECS = 1.0
#: Server-side watch length; the watch then resumes from the last version.
WATCH_SECS = 300
PYTHON_COMMAND: tuple[str, ...] = (
    "/usr/bin/python3",
    "-I",
    "-S",
    "-B",
    "/opt/ignite/runtime/ignite_runtime.py",
)
#: The client would send a dict as a JSON patch (a list of operations).
MERGE_PATCH = "application/merge-patch+json"
#: How long a stopping server spends scaling its revisions to zero.
CLOSE_SCALE_SECS = 5.0


class KubernetesBackend:
    """App pods as Deployments in one namespace (see the module docstring)."""

    def __init__(
        self,
        settings: KubernetesSettings,
        *,
        log_sink: LogSink,
        registry_access: RegistryAccess | None = None,
    ) -> None:
        self.settings = settings
        self._sink = log_sink
        self._registry = registry_access
        #: Organizations whose pull Secret this process has written.
        self._pull_secrets: dict[str, asyncio.Task[None]] = {}
        self._demand = Demand()
        self._artifacts = ArtifactServer(
            settings.state_dir, settings.artifact_listen, settings.artifact_url
        )
        self._scaler = ScalerServer(self._demand, settings.scaler_listen, settings.scaler_address)
        self._api: client.ApiClient | None = None
        self._revisions: dict[str, RevisionPods] = {}
        self._ensured: dict[str, asyncio.Task[None]] = {}
        #: The scaling each revision's ScaledObject was last written with.
        self._scaling: dict[str, Scaling] = {}
        self._app_owners: dict[str, dict[str, Any]] = {}
        self._demuxes: dict[str, PodLogDemux] = {}
        self._following: dict[str, asyncio.Task[None]] = {}
        #: Every managed pod of the namespace, by app id and pod name.
        self._app_pods: dict[str, dict[str, Any]] = {}
        #: The pod watch, the log followers and the objects being created.
        self._tasks = TaskSupervisor("kubernetes")
        self._probe_session: aiohttp.ClientSession | None = None
        self._watch_ready = asyncio.Event()

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(sandboxed=True)

    # --- life ------------------------------------------------------------------

    async def open(self) -> None:
        """Connect to the cluster and start the watch and the listeners."""
        if self.settings.kubeconfig:
            cfg = client.Configuration()
            await config.load_kube_config(
                config_file=self.settings.kubeconfig, client_configuration=cfg
            )
            self._api = client.ApiClient(cfg)
        else:
            config.load_incluster_config()
            self._api = client.ApiClient()
        self._probe_session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None), connector=aiohttp.TCPConnector(limit=0)
        )
        await self._artifacts.start()
        await self._scaler.start()
        # A broken watch (the apiserver restarting) is resumed after a pause.
        retry = Backoff(first=WATCH_RETRY_SECS, most=WATCH_RETRY_SECS)
        self._tasks.keep_running(self._watch_pods, name="watch", backoff=retry)
        async with asyncio.timeout(30):
            await self._watch_ready.wait()
        log.info(
            "kubernetes.backend.ready",
            namespace=self.settings.namespace,
            scaler=self._scaler.address,
            artifacts=self._artifacts.url,
        )

    async def close(self) -> None:
        """Stop watching and serving; the cluster's objects stay (their
        demand is gone, so KEDA scales them to zero)."""
        for revision in self._revisions.values():
            revision.close()
        await self._scale_to_zero()
        await self._tasks.close()
        await self._scaler.close()
        await self._artifacts.close()
        if self._probe_session is not None:
            await self._probe_session.close()
        if self._api is not None:
            await self._api.close()

    async def _scale_to_zero(self) -> None:
        """With this server gone KEDA hears no scaler and would leave the
        replicas as they are: set them to zero on the way out."""
        if self._api is None or not self._revisions:
            return
        apps = self._clients()[1]
        ns = self.settings.namespace
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SCALE_SECS):
                await asyncio.gather(
                    *(
                        apps.patch_namespaced_deployment_scale(
                            name, ns, {"spec": {"replicas": 0}}, _content_type=MERGE_PATCH
                        )
                        for name in self._revisions
                    ),
                    return_exceptions=True,
                )

    # --- PodBackend --------------------------------------------------------------

    async def start(self, spec: PodSpec) -> KubernetesPod:
        revision = await self._revision(spec)
        pods_of = self._revisions.get(revision.name)
        if pods_of is None:
            assert self._probe_session is not None
            pods_of = RevisionPods(
                revision,
                self._demand,
                lambda name: self._demux(name, spec),
                self._stop,
                self._probe_session,
            )
            self._revisions[revision.name] = pods_of
        await self._ensure(revision, spec.scaling)
        return await pods_of.take()

    async def scaling_changed(self, spec: PodSpec) -> None:
        """Write the app's new bounds into the revision's ScaledObject."""
        revision = await self._revision(spec)
        applied = self._scaling.get(revision.name)
        if spec.scaling is not None and applied is not None and applied != spec.scaling:
            await self._rescale(revision, spec.scaling)

    def observed(self, app_id: str, versions: frozenset[int]) -> ObservedDeployment | None:
        """The app's state from its pods in the cluster (see docs/kubernetes.md)."""
        live = [
            p
            for p in self._app_pods.get(app_id, {}).values()
            if p.metadata.deletion_timestamp is None and (not versions or _version(p) in versions)
        ]
        revisions = [
            r
            for r in self._revisions.values()
            if r.revision.spec.app_id == app_id
            and (not versions or r.revision.spec.version in versions)
        ]
        if not live and not revisions:
            return None
        ready = sum(
            1
            for p in live
            if pods.is_ready(p) or any(r.healthy(p.metadata.name) for r in revisions)
        )
        if ready:
            return ObservedDeployment(DeploymentState.DEPLOYED, ready)
        failure = next((f for p in live if (f := pods.start_failure(p))), "") or next(
            (r.last_failure for r in revisions if r.last_failure), ""
        )
        if failure:
            return ObservedDeployment(DeploymentState.FAILED, 0, failure)
        if live or any(r.waiting for r in revisions):
            return ObservedDeployment(DeploymentState.ACTIVATING, 0)
        return ObservedDeployment(DeploymentState.COLD, 0)

    async def remove_app(self, app_id: str) -> None:
        """Delete every object of the app: its ConfigMap (the owner of the
        rest, for the garbage collector) and, by label, the rest at once."""
        core, apps, net, custom = self._clients()
        ns = self.settings.namespace
        selector = objects.app_selector(app_id)
        self._app_owners.pop(app_id, None)
        for name in [n for n, r in self._revisions.items() if r.revision.spec.app_id == app_id]:
            self._revisions.pop(name).close()
            task = self._ensured.pop(name, None)
            if task is not None:
                task.cancel()
        deletions: list[Any] = [
            core.delete_collection_namespaced_config_map(ns, label_selector=selector),
            apps.delete_collection_namespaced_deployment(
                ns, label_selector=selector, propagation_policy="Background"
            ),
            net.delete_collection_namespaced_network_policy(ns, label_selector=selector),
            custom.delete_collection_namespaced_custom_object(
                "keda.sh", "v1alpha1", ns, "scaledobjects", label_selector=selector
            ),
        ]
        # Services have no collection delete.
        services = await core.list_namespaced_service(ns, label_selector=selector)
        deletions += [core.delete_namespaced_service(s.metadata.name, ns) for s in services.items]
        results = await asyncio.gather(*deletions, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception) and not _status(result, 404):
                log.warning("kubernetes.remove_app.failed", app=app_id, error=str(result))
        log.info("kubernetes.app.removed", app=app_id)

    # --- revisions -------------------------------------------------------------

    async def _revision(self, spec: PodSpec) -> ClusterRevision:
        try:
            manifest = await asyncio.to_thread(LaunchManifest.load, spec.artifact_dir)
        except ManifestError as exc:
            raise PodStartError(str(exc)) from None
        if manifest.image is not None:
            return await self._image_revision(spec, manifest.image)
        if manifest.prestart and manifest.prestart.startswith("python"):
            image, command = self.settings.python_image, tuple(PYTHON_COMMAND)
        elif Path(manifest.argv[0]).name == "deno":
            image = self.settings.deno_image
            argv = manifest.resolved_argv(objects.CODE_DIR)
            command = ("/usr/bin/deno", *argv[1:])
        elif manifest.argv[0].startswith(CODE_PLACEHOLDER):
            image = self.settings.native_image
            command = tuple(manifest.resolved_argv(objects.CODE_DIR))
        else:
            raise PodStartError(
                f"the Kubernetes backend has no runtime image for {Path(manifest.argv[0]).name}"
                " apps yet (Python, Go, Rust and Deno run on it)"
            )
        sha256 = await self._artifacts.publish(spec.artifact_dir)
        artifact = Artifact(
            url=self._artifacts.url_of(sha256), token=self._artifacts.token(sha256), sha256=sha256
        )
        return ClusterRevision(
            spec=spec,
            image=image,
            command=command,
            runtime_env=manifest.env,
            artifact=artifact,
            fetch_image=self.settings.python_image,
        )

    async def _image_revision(self, spec: PodSpec, launch: ImageLaunch) -> ClusterRevision:
        """An image app's revision: its pods run the image by digest. The
        artifact (the launch manifest alone) is published all the same, so
        that the revision's name follows the manifest, but never fetched."""
        sha256 = await self._artifacts.publish(spec.artifact_dir)
        return ClusterRevision(
            spec=spec,
            image=launch.reference,
            command=(),
            runtime_env={},
            artifact=Artifact(url=self._artifacts.url_of(sha256), token="", sha256=sha256),
            fetch_image=self.settings.python_image,
            launch=launch,
            pull_secret=await self._pull_secret(spec, launch),
        )

    async def _pull_secret(self, spec: PodSpec, launch: ImageLaunch) -> str:
        """The name of the Secret the revision's image is pulled with: the
        organization's read-only credentials for the platform's registry,
        written once per process (kept current: replaced if it exists)."""
        registry = self._registry
        if registry is None or launch.reference.split("/", 1)[0] != registry.host:
            return ""
        organization = spec.app_id.partition("/")[0]
        credentials = registry.pull_credentials(organization)
        if credentials is None:
            return ""
        task = self._pull_secrets.get(organization)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            manifest = objects.pull_secret(
                organization, registry.host, docker_auth_config(registry.host, credentials)
            )
            task = asyncio.create_task(self._write_secret(manifest))
            self._pull_secrets[organization] = task
        try:
            await asyncio.shield(task)
        except ApiException as exc:
            raise PodStartError(
                f"the cluster refused the image pull secret: {exc.status} {exc.reason}"
            ) from None
        return objects.pull_secret_name(organization)

    async def _write_secret(self, manifest: dict[str, Any]) -> None:
        core = self._clients()[0]
        ns = self.settings.namespace
        name = manifest["metadata"]["name"]
        try:
            await core.create_namespaced_secret(ns, manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await core.replace_namespaced_secret(name, ns, manifest)
        log.info("kubernetes.pull_secret.written", secret=name)

    async def _ensure(self, revision: ClusterRevision, scaling: Scaling | None) -> None:
        """Create the revision's objects once per process (shared by
        concurrent starts); a failure is retried by the next start."""
        task = self._ensured.get(revision.name)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._tasks.spawn(self._create(revision, scaling), name=revision.name)
            self._ensured[revision.name] = task
        try:
            await asyncio.shield(task)
        except ApiException as exc:
            raise PodStartError(
                f"the cluster refused the app's objects: {exc.status} {exc.reason}"
            ) from None

    async def _rescale(self, revision: ClusterRevision, scaling: Scaling) -> None:
        """The app's scaling changed since the ScaledObject was written."""
        self._scaling[revision.name] = scaling
        custom = self._clients()[3]
        patch = {
            "spec": {
                "minReplicaCount": scaling.reserved_capacity,
                "maxReplicaCount": max(1, scaling.max_replicas),
                "cooldownPeriod": scaling.scaledown_period_secs,
            }
        }
        try:
            await custom.patch_namespaced_custom_object(
                "keda.sh",
                "v1alpha1",
                self.settings.namespace,
                "scaledobjects",
                revision.name,
                patch,
                _content_type=MERGE_PATCH,
            )
        except ApiException as exc:
            self._scaling.pop(revision.name, None)
            log.warning("kubernetes.rescale.failed", revision=revision.name, error=str(exc))

    async def _create(self, revision: ClusterRevision, scaling: Scaling | None) -> None:
        core, apps, net, custom = self._clients()
        ns = self.settings.namespace
        app_owner = await self._app_owner(revision.spec.app_id)
        dep_manifest = objects.deployment(revision, app_owner, self.settings.image_pull_policy)
        try:
            dep = await apps.create_namespaced_deployment(ns, dep_manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
            dep = await apps.read_namespaced_deployment(revision.name, ns)
        dep_owner = objects.owner("Deployment", "apps/v1", revision.name, dep.metadata.uid)
        scaling = scaling or Scaling(
            max_replicas=10, reserved_capacity=0, scale_threshold=0,
            scale_metric=0, scaledown_period_secs=300,  # type: ignore[arg-type]
        )  # fmt: skip
        self._scaling[revision.name] = scaling
        scaled = objects.scaled_object(
            revision,
            dep_owner,
            self._scaler.address,
            min_replicas=scaling.reserved_capacity,
            max_replicas=scaling.max_replicas,
            cooldown_secs=scaling.scaledown_period_secs,
        )
        await asyncio.gather(
            _create_or_keep(
                core.create_namespaced_service(ns, objects.service(revision, dep_owner))
            ),
            _create_or_keep(
                net.create_namespaced_network_policy(
                    ns, objects.network_policy(revision, dep_owner)
                )
            ),
            _create_or_replace_scaled_object(custom, ns, scaled),
        )
        log.info("kubernetes.revision.created", revision=revision.name, app=revision.spec.app_id)

    async def _app_owner(self, app_id: str) -> dict[str, Any]:
        known = self._app_owners.get(app_id)
        if known is not None:
            return known
        core = self._clients()[0]
        ns = self.settings.namespace
        name = objects.app_object_name(app_id)
        try:
            cm = await core.create_namespaced_config_map(ns, objects.app_object(app_id))
        except ApiException as exc:
            if exc.status != 409:
                raise
            cm = await core.read_namespaced_config_map(name, ns)
        owner = objects.owner("ConfigMap", "v1", name, cm.metadata.uid)
        self._app_owners[app_id] = owner
        return owner

    async def _stop(self, handle: KubernetesPod, grace_secs: float) -> None:
        revision = self._revision_of_pod(handle.name)
        if revision is None:
            return
        core = self._clients()[0]
        ns = self.settings.namespace
        revision.release(handle)
        try:
            if grace_secs <= 0:
                # A handler still runs past its timeout: cut it off now; the
                # ReplicaSet makes a fresh pod if the demand still wants one.
                revision.condemned.add(handle.name)
                await core.delete_namespaced_pod(handle.name, ns, grace_period_seconds=0)
            else:
                await core.patch_namespaced_pod(
                    handle.name,
                    ns,
                    {"metadata": {"annotations": {objects.DELETION_COST: objects.RELEASED_COST}}},
                    _content_type=MERGE_PATCH,
                )
        except ApiException as exc:
            if exc.status != 404:
                log.warning("kubernetes.pod.stop_failed", pod=handle.name, error=str(exc))

    def _revision_of_pod(self, name: str) -> RevisionPods | None:
        for revision in self._revisions.values():
            if name in revision.cluster or name in revision.handed:
                return revision
        return None

    # --- the watch ----------------------------------------------------------------

    async def _watch_pods(self) -> None:
        core = self._clients()[0]
        ns = self.settings.namespace
        # A watch ends after WATCH_SECS; the next one lists again and resumes.
        while True:
            listed = await core.list_namespaced_pod(ns, label_selector=objects.MANAGED_SELECTOR)
            present = {p.metadata.name for p in listed.items}
            for revision in self._revisions.values():
                for name in [n for n in revision.cluster if n not in present]:
                    self._dispatch("DELETED", revision.cluster[name])
            for item in listed.items:
                self._dispatch("MODIFIED", item)
            self._watch_ready.set()
            async with watch.Watch() as stream:
                async for event in stream.stream(
                    core.list_namespaced_pod,
                    ns,
                    label_selector=objects.MANAGED_SELECTOR,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=WATCH_SECS,
                ):
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self._dispatch(event["type"], event["object"])

    def _dispatch(self, event: str, pod: Any) -> None:
        labels = pod.metadata.labels or {}
        revision = self._revisions.get(labels.get(objects.LABEL_REVISION, ""))
        name = pod.metadata.name
        app_id = f"{labels.get(objects.LABEL_ORG, '')}/{labels.get(objects.LABEL_APP, '')}"
        if event == "DELETED":
            self._app_pods.get(app_id, {}).pop(name, None)
        else:
            self._app_pods.setdefault(app_id, {})[name] = pod
        if event == "DELETED":
            self._demuxes.pop(name, None)
        elif (
            name not in self._following
            and (pods.is_running(pod) or pods.restarts(pod) > 0)
            and revision is not None
        ):
            demux = self._demux(name, revision.revision.spec)
            task = self._tasks.spawn(
                follow(
                    self._clients()[0],
                    self.settings.namespace,
                    name,
                    demux,
                    lambda: self._restarts_of(name),
                )
            )
            self._following[name] = task
            task.add_done_callback(lambda _: self._following.pop(name, None))
        if revision is not None:
            revision.observe(event, pod)

    def _restarts_of(self, name: str) -> int | None:
        revision = self._revision_of_pod(name)
        if revision is None or name not in revision.cluster:
            return None
        return pods.restarts(revision.cluster[name])

    def _demux(self, name: str, spec: PodSpec) -> PodLogDemux:
        demux = self._demuxes.get(name)
        if demux is None:
            demux = self._demuxes[name] = PodLogDemux(name, self._sink, lambda: spec)
        return demux

    def _clients(self) -> tuple[Any, Any, Any, Any]:
        """Core, apps, networking and custom-object APIs (typed loosely:
        the manifests are plain dicts, which the client serialises as is)."""
        assert self._api is not None, "open() first"
        return (
            client.CoreV1Api(self._api),
            client.AppsV1Api(self._api),
            client.NetworkingV1Api(self._api),
            client.CustomObjectsApi(self._api),
        )


def _version(pod: Any) -> int:
    try:
        return int((pod.metadata.labels or {}).get(objects.LABEL_VERSION, "-1"))
    except ValueError:
        return -1


def _status(exc: BaseException, code: int) -> bool:
    return isinstance(exc, ApiException) and exc.status == code


async def _create_or_keep(call: Any) -> None:
    try:
        await call
    except ApiException as exc:
        if exc.status != 409:
            raise


async def _create_or_replace_scaled_object(custom: Any, ns: str, manifest: dict[str, Any]) -> None:
    try:
        await custom.create_namespaced_custom_object(
            "keda.sh", "v1alpha1", ns, "scaledobjects", manifest
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
        await custom.patch_namespaced_custom_object(
            "keda.sh", "v1alpha1", ns, "scaledobjects", manifest["metadata"]["name"],
            {"spec": manifest["spec"]}, _content_type=MERGE_PATCH,
        )  # fmt: skip
