"""The CA certificates image pods trust: the platform's own CA (local mode
serves app hosts over TLS with a certificate it signed), alone and appended
to the host's CA bundle, in a root-owned folder the pods see read-only
(image_pod.py's TRUST_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

#: The host's CA bundle on Debian and its kin, then on Fedora and its kin.
HOST_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def write_trust_dir(ca_file: Path, folder: Path) -> Path:
    """Write ``ca.crt`` (``ca_file``'s certificates) and ``ca-bundle.crt``
    (the host's bundle followed by them) into ``folder``; returns it."""
    ca = ca_file.read_bytes()
    if b"-----BEGIN CERTIFICATE-----" not in ca:
        raise ValueError(f"{ca_file} holds no PEM certificate")
    host = b""
    for candidate in HOST_BUNDLES:
        try:
            host = Path(candidate).read_bytes()
            break
        except OSError:
            continue
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    for name, data in (("ca.crt", ca), ("ca-bundle.crt", host.rstrip(b"\n") + b"\n" + ca)):
        partial = folder / f".{name}.partial"
        partial.write_bytes(data.lstrip(b"\n"))
        partial.chmod(0o644)
        partial.replace(folder / name)
    return folder
