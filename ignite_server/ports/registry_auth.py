"""Registry credentials in the form the container tools take them: a
Docker ``config.json`` ``auths`` document, which skopeo reads as an auth
file and Kubernetes takes as a ``kubernetes.io/dockerconfigjson`` pull
secret. One home for it, since the image builder (skopeo) and both pod
backends (local image pulls, Kubernetes ``imagePullSecrets``) hand
credentials over this way.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator

from ignite_server.ports.image_builder import RegistryCredentials


def docker_auth_config(host: str, credentials: RegistryCredentials | None) -> dict[str, object]:
    """``{"auths": {host: {...}}}`` (no entry without credentials)."""
    auths: dict[str, object] = {}
    if credentials is not None:
        token = f"{credentials.username}:{credentials.password}".encode()
        auths[host] = {
            "username": credentials.username,
            "password": credentials.password,
            "auth": base64.b64encode(token).decode(),
        }
    return {"auths": auths}


@contextlib.contextmanager
def private_auth_file(
    host: str, credentials: RegistryCredentials | None
) -> Iterator[tuple[str, str]]:
    """(auth file, private home folder): a 0700 folder of its own holding the
    credentials for ``host`` only (or none), removed on exit. A tool given
    that file and that home finds no other credentials (not the server
    account's ``~/.docker/config.json``)."""
    folder = tempfile.mkdtemp(prefix="ignite-registry-auth-")
    try:
        path = os.path.join(folder, "auth.json")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(docker_auth_config(host, credentials), file)
        yield path, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
