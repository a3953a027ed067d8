#!/usr/bin/env bash
# Loads OCI or Docker image archives into the running bed's containerd, where
# pods find them with imagePullPolicy Never or IfNotPresent: there is no
# registry to pull from. For the project's own images (runtime images, test
# images) built as archives, e.g. by oci_image.py.
#
# usage: load_image.sh ARCHIVE.tar...
set -euo pipefail
. "$(dirname "$0")/env.sh"

sock=$TESTBED_DIR/containerd/containerd.sock
[ -S "$sock" ] || die "no test bed running in $TESTBED_DIR"
[ $# -gt 0 ] || die "usage: load_image.sh ARCHIVE.tar..."
for archive in "$@"; do
  ctr --address "$sock" -n k8s.io images import "$archive" >/dev/null
done
