"""Writes a one-layer OCI image archive that `ctr images import` loads.

The test bed has no registry to pull from, so its images are made here from
files already on the machine: the bed's own static pause binary (the pod
sandbox) and Debian's static busybox (a shell, httpd and the usual tools for
test pods). Standard library only, so it runs before any virtualenv exists.

usage: oci_image.py pause|busybox BINARY OUT.tar
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile

# Names the bed's pods refer to; a fixed tag (never "latest") so the kubelet's
# default pull policy is IfNotPresent and never tries a registry.
NAMES = {
    "pause": "ignite.local/testbed/pause:1",
    "busybox": "ignite.local/testbed/busybox:1",
}
EPOCH = 0  # fixed mtimes: the same inputs give the same image digest


def _entry(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, EPOCH, link
    info.size = len(data)
    return info, io.BytesIO(data) if data else None


def _tar(entries: list[tuple]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, data)
    return buf.getvalue()


def pause_rootfs(binary: bytes) -> tuple[list[tuple], dict]:
    entries = [_entry("pause", tarfile.REGTYPE, 0o755, binary)]
    # Like the upstream pause image: no root needed to hold namespaces open.
    return entries, {"Entrypoint": ["/pause"], "User": "65535:65535"}


def busybox_rootfs(binary: bytes, path: str) -> tuple[list[tuple], dict]:
    applets = subprocess.run([path, "--list-full"], capture_output=True, text=True, check=True)
    entries = [
        _entry(d, tarfile.DIRTYPE, 0o755)
        for d in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc")
    ]
    entries += [
        _entry("tmp", tarfile.DIRTYPE, 0o1777),
        _entry("bin/busybox", tarfile.REGTYPE, 0o755, binary),
    ]
    for applet in sorted(set(applets.stdout.split())):
        if applet != "bin/busybox":
            entries.append(_entry(applet, tarfile.SYMTYPE, 0o777, link="/bin/busybox"))
    # Users so that runAsUser / runAsNonRoot pods have names to resolve.
    passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
    group = b"root:x:0:\nnogroup:x:65534:\n"
    entries += [
        _entry("etc/passwd", tarfile.REGTYPE, 0o644, passwd),
        _entry("etc/group", tarfile.REGTYPE, 0o644, group),
    ]
    return entries, {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}


def write_archive(name: str, layer: bytes, config_fields: dict, out: str) -> None:
    blobs: dict[str, bytes] = {}

    def blob(data: bytes, media_type: str) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    layer_desc = blob(layer, "application/vnd.oci.image.layer.v1.tar")
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config_fields,
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    }
    config_desc = blob(
        json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json"
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = blob(
        json.dumps(manifest, sort_keys=True).encode(), "application/vnd.oci.image.manifest.v1+json"
    )
    # io.containerd.image.name gives ctr the full reference on import.
    manifest_desc["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
    }
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    }
    entries = [
        _entry("oci-layout", tarfile.REGTYPE, 0o644, b'{"imageLayoutVersion":"1.0.0"}'),
        _entry("index.json", tarfile.REGTYPE, 0o644, json.dumps(index).encode()),
        _entry("blobs", tarfile.DIRTYPE, 0o755),
        _entry("blobs/sha256", tarfile.DIRTYPE, 0o755),
    ]
    for digest, data in blobs.items():
        entries.append(_entry("blobs/sha256/" + digest.split(":")[1], tarfile.REGTYPE, 0o644, data))
    with open(out, "wb") as f:
        f.write(_tar(entries))


def main() -> None:
    kind, path, out = sys.argv[1:4]
    with open(path, "rb") as f:
        binary = f.read()
    entries, config = pause_rootfs(binary) if kind == "pause" else busybox_rootfs(binary, path)
    write_archive(NAMES[kind], _tar(entries), config, out)


if __name__ == "__main__":
    main()
