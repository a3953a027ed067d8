# shellcheck shell=bash disable=SC2034  # sourced; the values are used by the other scripts
# Settings shared by every test bed script (sourced, never run).
# Versions key the build cache: bumping one rebuilds only that part.
# Every value can be overridden from the environment, so CI or a developer
# can move the cache or the work folder without editing the scripts.

TESTBED_K8S_VERSION=${TESTBED_K8S_VERSION:-v1.34.4}   # 1.35+ refuses cgroup v1 by default
TESTBED_KEDA_VERSION=${TESTBED_KEDA_VERSION:-v2.21.0}
TESTBED_HELM_VERSION=${TESTBED_HELM_VERSION:-v3.22.0}

# Outside the clone so that a fresh clone (CI) on the same machine reuses the
# binaries: the first build takes ~15 minutes on 2 cores, a cached one seconds.
TESTBED_CACHE=${TESTBED_CACHE:-/var/cache/ignite-testbed}
# Everything the running bed owns: sockets, data, logs, pids, kubeconfig.
TESTBED_DIR=${TESTBED_DIR:-/tmp/ignite-testbed}

# Our own bridge and ranges, chosen not to meet anything else on the machine.
TESTBED_BRIDGE=${TESTBED_BRIDGE:-ignite-br0}
TESTBED_CNI_NAME=${TESTBED_CNI_NAME:-ignite-testbed}
TESTBED_POD_CIDR=${TESTBED_POD_CIDR:-10.244.0.0/24}
TESTBED_SERVICE_CIDR=${TESTBED_SERVICE_CIDR:-10.96.0.0/16}
TESTBED_SERVICE_IP=${TESTBED_SERVICE_IP:-10.96.0.1}     # first address: the kubernetes Service
TESTBED_DNS_IP=${TESTBED_DNS_IP:-10.96.0.10}            # announced to pods; no DNS server runs

# Loopback ports; the defaults avoid the well-known ones in case a developer
# runs a real etcd or cluster beside the bed.
TESTBED_ETCD_PORT=${TESTBED_ETCD_PORT:-23790}
TESTBED_ETCD_PEER_PORT=${TESTBED_ETCD_PEER_PORT:-23800}
TESTBED_APISERVER_PORT=${TESTBED_APISERVER_PORT:-16443}
# A registry on this loopback port is pulled from over plain HTTP (the node's
# containerd runs on the host, so the node's 127.0.0.1 is the host's); tests
# start their own registry there, as the server's embedded one is.
TESTBED_REGISTRY_PORT=${TESTBED_REGISTRY_PORT:-15000}

TESTBED_K8S_BIN="$TESTBED_CACHE/k8s-$TESTBED_K8S_VERSION/bin"
TESTBED_KEDA_DIR="$TESTBED_CACHE/keda-$TESTBED_KEDA_VERSION"
TESTBED_KEDA_BIN="$TESTBED_KEDA_DIR/bin"
TESTBED_HELM_BIN="$TESTBED_CACHE/helm-$TESTBED_HELM_VERSION/bin"
TESTBED_IMAGES="$TESTBED_CACHE/images"

# Go's own caches stay outside the clone too (5+ GB after a Kubernetes build).
export GOCACHE=${TESTBED_GOCACHE:-$TESTBED_CACHE/go/build-cache}
export GOMODCACHE=${TESTBED_GOMODCACHE:-$TESTBED_CACHE/go/mod}
# Never fetch a newer Go toolchain: use the one installed.
export GOTOOLCHAIN=local

TESTBED_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
