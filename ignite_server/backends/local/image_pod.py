"""One pod of an image app: a container run by crun, contained like every
other pod.

How it starts (``start_container``), on top of what every local pod has
(folder, uid, cgroups; backend.py):

1. ``/tmp``: a size-capped tmpfs owned by the pod's uid (half its memory,
   as for other pods), where ``$HOME`` is created too when it lies below
   ``/tmp`` (an image saying ``HOME=/tmp/app``); the image's own root file
   system, shared by every pod of its digest, is read-only;
2. a network namespace the server makes (netns.py) with only loopback and,
   when the app's env names other apps' URLs, a link to an edge namespace of
   its own whose listeners lead those URLs to the platform's edge
   (edge_forward.py, which also writes the pod's ``/etc/hosts``); the
   platform's CA, when it has one, is shown at TRUST_DIR and named by the
   usual variables, so ``https://`` app URLs verify (``trust_env``);
3. the container's ``config.json`` (oci_spec.py) and crun, started through
   ``LocalPod.launch`` so it joins the pod's cgroups first (oci_runtime.py).

The app listens on TCP ``$PORT`` inside its namespace; the server reaches
it with sockets it creates there (netns_connector.py). It is ready when its
``health_path`` answers 2xx or 3xx, or, without one, as soon as the port
accepts a connection, polled every few milliseconds; a container that ends
first, or is not ready in time, fails the start with its last output lines.

The app's environment, in order of precedence (later wins): the image's
ENV, the app's env, ``PORT``, then the platform's ``IGNITE_*`` variables;
``HOME`` is the image's (or the app's) when set, else ``/tmp``; ``PATH`` is
the usual default when neither sets one. The image's USER is ignored: the
app runs as the pod's own unprivileged uid, whatever the image says.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path

from ignite_server.backends.local import oci_runtime, pod_client
from ignite_server.backends.local.edge_forward import (
    Edge,
    EdgeForwarder,
    EdgeRoutes,
    hosts_file,
    routes,
)
from ignite_server.backends.local.netns_connector import APP_HOST, NamespaceConnector
from ignite_server.backends.local.oci_spec import ContainerSpec, config
from ignite_server.backends.local.pod import LocalPod
from ignite_server.containment import mounts
from ignite_server.containment.netns import NetNamespace
from ignite_server.ports.image_launch import ImageLaunch
from ignite_server.ports.pod_backend import PodStartError

#: PATH of a container whose image sets none (Docker's default).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The environment crun itself runs with (the app's is in config.json).
RUNTIME_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
HOSTNAME = "pod"
#: Where the platform's CA (``ca.crt``) and the host's CA bundle with it
#: (``ca-bundle.crt``) appear in the container.
TRUST_DIR = "/etc/ignite/tls"


def trust_env() -> dict[str, str]:
    """The variables by which OpenSSL, Python, curl, Go, Node and Deno find
    the CA bundle (each unless the image or the app sets it)."""
    bundle = f"{TRUST_DIR}/ca-bundle.crt"
    return {
        "SSL_CERT_FILE": bundle,
        "REQUESTS_CA_BUNDLE": bundle,
        "CURL_CA_BUNDLE": bundle,
        # Node and Deno add these to their own built-in roots.
        "NODE_EXTRA_CA_CERTS": f"{TRUST_DIR}/ca.crt",
        "DENO_CERT": f"{TRUST_DIR}/ca.crt",
    }


def container_env(
    image: ImageLaunch, app_env: Mapping[str, str], *, trusted: bool = False
) -> dict[str, str]:
    """The app's environment inside the container (module docstring);
    ``trusted``: the platform's CA is shown at TRUST_DIR."""
    env = {**(trust_env() if trusted else {}), **image.env}
    platform = {k: v for k, v in app_env.items() if k.startswith("IGNITE_")}
    env.update({k: v for k, v in app_env.items() if k not in platform})
    env["PORT"] = str(image.port)
    env.setdefault("HOME", "/tmp")
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(platform)
    return env


class ImagePod(LocalPod):
    """A local pod whose process is crun running one container."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**{**kwargs, "sandboxed": True})  # type: ignore[arg-type]
        self._netns: NetNamespace | None = None
        self._forwarder: EdgeForwarder | None = None
        self._port = 0
        self._health_path = ""

    @property
    def tmp_dir(self) -> Path:
        """Host side of the container's ``/tmp``."""
        return self.dir / "tmp"

    def connector(self) -> NamespaceConnector:
        assert self._netns is not None, "the pod has not started"
        return NamespaceConnector(self._netns, self._port)

    async def start_container(
        self,
        *,
        image: ImageLaunch,
        rootfs: Path,
        env: Mapping[str, str],
        tmp_mb: int,
        edge: Edge | None,
        apps_domain: str,
        trust_dir: Path | None = None,
        rlimit_data_mb: int,
    ) -> None:
        """Prepare and start the container; returns at once (see
        ``wait_ready``). Raises PodStartError, the pod then being stopped."""
        if not image.argv:
            await self.stop(0)
            raise PodStartError("the image has no ENTRYPOINT or CMD")
        self._port = image.port
        self._health_path = image.health_path
        full_env = container_env(image, env, trusted=trust_dir is not None)
        edge_routes = routes(full_env, apps_domain) if edge is not None else EdgeRoutes()
        try:
            self._netns = await NetNamespace.create()
            if edge is not None and edge_routes.ports:
                self._forwarder = EdgeForwarder(self._netns, edge)
                await self._forwarder.start(edge_routes.ports)
            spec = ContainerSpec(
                args=image.argv,
                env=full_env,
                cwd=image.workdir or "/",
                uid=self.uid,
                rootfs=rootfs,
                tmp_dir=self.tmp_dir,
                hosts_file=self.dir / "hosts",
                cgroups=tuple(self.cgroup.paths.items()),
                hostname=HOSTNAME,
                netns=self._netns.path,
                trust_dir=trust_dir,
                trust_mount=TRUST_DIR,
            )
            await asyncio.to_thread(
                self._prepare,
                spec,
                full_env["HOME"],
                tmp_mb,
                hosts_file(edge_routes.hosts, HOSTNAME),
            )
            argv = oci_runtime.run_command(self.id, self.dir / "bundle", self.dir / "crun")
            await self.launch(argv, RUNTIME_ENV, rlimit_data_mb)
        except OSError as exc:
            await self.stop(0)
            raise PodStartError(f"cannot start the container: {exc}") from exc

    def _prepare(self, spec: ContainerSpec, home: str, tmp_mb: int, hosts: str) -> None:
        """The pod's ``/tmp`` (with ``$HOME``), ``/etc/hosts`` and bundle."""
        self.tmp_dir.mkdir()
        mounts.mount_tmpfs(
            self.tmp_dir,
            size_kib=tmp_mb * 1024,
            uid=self.uid,
            gid=self.uid,
            inodes=None,
            executable=True,
        )
        home = posixpath.normpath(home)
        if home.startswith("/tmp/"):
            # Made now, before the app runs, in a tmpfs nothing else has
            # touched: no link the app planted can redirect it.
            path = self.tmp_dir
            for part in home.removeprefix("/tmp/").split("/"):
                path = path / part
                path.mkdir(mode=0o700, exist_ok=True)
                os.chown(path, self.uid, self.uid)
        hosts_path = spec.hosts_file
        hosts_path.write_text(hosts)
        hosts_path.chmod(0o644)
        bundle = self.dir / "bundle"
        bundle.mkdir()
        (bundle / "config.json").write_text(json.dumps(config(spec)))

    async def wait_ready(self, wait_secs: float) -> None:
        """Return once the app answers its health path (2xx/3xx), or accepts
        connections on its port when it has none."""
        hint = "" if self._health_path else f" (listening on port {self._port}?)"

        def too_late() -> str:
            tail = "\n".join(self._logs.tail)
            return f"the app did not become ready within {wait_secs:g}s{hint}" + (
                f":\n{tail}" if tail else ""
            )

        await self.poll_until_ready(wait_secs, self._answers, too_late)

    async def _answers(self) -> bool:
        assert self._netns is not None
        try:
            sock = await self._netns.connect(APP_HOST, self._port)
        except OSError:
            return False
        if not self._health_path:
            sock.close()
            return True
        try:
            async with asyncio.timeout(2.0):
                reader, writer = await asyncio.open_connection(sock=sock)
                status, _ = await pod_client.exchange(reader, writer, "GET", self._health_path)
        except (OSError, ConnectionError, TimeoutError):
            sock.close()
            return False
        return 200 <= status < 400

    async def _release(self) -> None:
        """Close the edge listeners and the namespace, then release what
        every pod has."""
        if self._forwarder is not None:
            await self._forwarder.close()
        if self._netns is not None:
            self._netns.close()
        await super()._release()
