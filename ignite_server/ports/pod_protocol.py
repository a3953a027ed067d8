"""The pod protocol (docs/pod-protocol.md), declared once: the names both
pod backends, the build pipelines and the activator use when they speak to a
runtime process or describe how to start one.

The runtimes (runtimes/python, the Go, Rust and Deno SDKs, the exec
launcher) implement the other side; they run in the pod's sandbox and do not
import the server, so the document is their contract and this module is the
server's.
"""

from __future__ import annotations

import json

from ignite_server.ports.pod_backend import PodSpec

#: The artifact's launch manifest, at the root of every built artifact.
MANIFEST_NAME = "ignite-launch.json"
#: Stands, in a manifest's argv, for the artifact directory as the pod sees it.
CODE_PLACEHOLDER = "{code}"
#: The pre-started pool of compiled apps: the local backend's exec launcher
#: waits in the pod's sandbox and execs the binary argv names once given
#: the app. Every such app shares it.
EXEC_POOL = "exec"

#: ``GET``: 200 once the handler is loaded, 503 before (a pre-started pod).
HEALTH_PATH = "/_ignite/health"
#: ``POST``: specializes a pre-started pod (body: ``load_request``).
LOAD_PATH = "/_ignite/load"

#: The header carrying an invocation's execution id to the handler.
EXECUTION_ID_HEADER = "X-Ignite-Execution-Id"
#: A pod's output line starting with this byte is a tagged JSON log record.
LOG_RECORD_SEPARATOR = 0x1E

#: Where the runtime serves HTTP/1.1: a unix socket path (local pods) ...
SOCKET_ENV = "IGNITE_SOCKET"
#: ... or a TCP port (Kubernetes pods, when there is no socket).
PORT_ENV = "IGNITE_PORT"
#: The built artifact of the version, read-only.
CODE_DIR_ENV = "IGNITE_CODE_DIR"
#: How many requests the platform sends at once.
MAX_CONCURRENCY_ENV = "IGNITE_MAX_CONCURRENCY"


def app_identity_env(spec: PodSpec) -> dict[str, str]:
    """The variables that tell a runtime which app it serves, and how many
    requests it gets at once (a direct start's, or the exec launcher's)."""
    return {
        "IGNITE_FUNCTION_ID": spec.app_id,
        "IGNITE_ORGANIZATION_ID": spec.app_id.partition("/")[0],
        "IGNITE_VERSION": str(spec.version),
        MAX_CONCURRENCY_ENV: str(spec.max_concurrency),
    }


def load_request(spec: PodSpec, code_dir: str) -> bytes:
    """The body of ``POST /_ignite/load`` that specializes a pre-started pod
    for ``spec`` with its code at ``code_dir`` (as the pod sees it)."""
    return json.dumps(
        {
            "code_dir": code_dir,
            "function_id": spec.app_id,
            "organization_id": spec.app_id.partition("/")[0],
            "version": spec.version,
            "max_concurrency": spec.max_concurrency,
            "env": dict(spec.env),
        }
    ).encode()
