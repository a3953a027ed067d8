#!/usr/bin/env bash
# Starts the whole test bed from the cached binaries (run build.sh first):
# etcd, kube-apiserver, controller manager, scheduler, containerd, kubelet,
# kube-proxy and KEDA (keda.sh). Returns once the node is Ready and KEDA's
# CRDs, operator and metrics APIService are, with a
# kubeconfig and an env file under $TESTBED_DIR:
#   $TESTBED_DIR/kubeconfig/admin.kubeconfig   cluster-admin credentials
#   $TESTBED_DIR/testbed.env                   KUBECONFIG, PATH, image names...
# Typical: ~10 s once the binaries are cached. On any failure it tears down
# what it started, so a failed bring-up leaves nothing behind either.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/proc.sh"

for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [ -x "$TESTBED_K8S_BIN/$b" ] || die "$TESTBED_K8S_BIN/$b missing: run tools/testbed/build.sh (make testbed-build)"
done
[ -e "$TESTBED_IMAGES/current/.complete" ] || die "images missing: run tools/testbed/build.sh"
if [ -d "$TESTBED_DIR/run" ] || ip link show "$TESTBED_BRIDGE" >/dev/null 2>&1; then
  die "a test bed is already up (or was not torn down): run tools/testbed/down.sh"
fi

started=$SECONDS
# Any failure from here on (set -e or die) tears down what was started.
up_ok=0
trap '[ $up_ok = 1 ] || { log "bring-up failed: tearing down, logs kept in $TESTBED_DIR.logs"; TESTBED_KEEP_LOGS=1 "$here/down.sh" || true; }' EXIT
mkdir -p "$TESTBED_DIR"/{run,logs}
host=$(hostname)
gateway=${TESTBED_POD_CIDR%.*}.1
prefix=${TESTBED_POD_CIDR#*/}
K=$TESTBED_K8S_BIN
export KUBECONFIG=$TESTBED_DIR/kubeconfig/admin.kubeconfig
export KUBECACHEDIR=$TESTBED_DIR/kube-cache   # not ~/.kube/cache
kubectl() { "$K/kubectl" --request-timeout=10s "$@"; }

"$here/sysctls.sh" save
# System folders the daemons create even when told to use ours; tear-down
# removes those that were absent before, once they are empty again.
for path in /run/containerd /var/log/containers /var/lib/kubelet /var/lib/cni; do
  [ -e "$path" ] || echo "$path"
done > "$TESTBED_DIR/absent-paths"
"$here/pki.sh"
"$here/configs.sh"

# Our own bridge, made before anything starts: the CNI plugin adopts it, and
# the apiserver reaches KEDA's metrics adapter on its gateway address.
ip link add "$TESTBED_BRIDGE" type bridge
ip addr add "$gateway/$prefix" dev "$TESTBED_BRIDGE"
ip link set "$TESTBED_BRIDGE" up
# Service traffic between pods on one bridge goes through kube-proxy's rules.
# Forwarding stays confined to the bridge (egress.sh).
"$here/egress.sh"
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 ||
  log "no bridge netfilter: pod-to-service traffic between pods will not work"

log "starting etcd"
start etcd etcd --name testbed --data-dir "$TESTBED_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$TESTBED_ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$TESTBED_ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$TESTBED_ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$TESTBED_ETCD_PEER_PORT" \
  --initial-cluster "testbed=http://127.0.0.1:$TESTBED_ETCD_PEER_PORT" \
  --listen-metrics-urls "" --log-level warn
log "starting containerd"
start containerd containerd --config "$TESTBED_DIR/containerd/config.toml"
WAIT_DAEMON=etcd wait_until 20 "etcd" curl -fsS "http://127.0.0.1:$TESTBED_ETCD_PORT/health"

log "starting kube-apiserver"
p=$TESTBED_DIR/pki
start kube-apiserver "$K/kube-apiserver" \
  --bind-address=127.0.0.1 --secure-port="$TESTBED_APISERVER_PORT" --advertise-address="$gateway" \
  --etcd-servers="http://127.0.0.1:$TESTBED_ETCD_PORT" \
  --service-cluster-ip-range="$TESTBED_SERVICE_CIDR" \
  --authorization-mode=Node,RBAC --allow-privileged=true \
  --client-ca-file="$p/ca.crt" --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
  --kubelet-client-certificate="$p/kubelet-client.crt" --kubelet-client-key="$p/kubelet-client.key" \
  --kubelet-preferred-address-types=Hostname \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
  --endpoint-reconciler-type=none \
  --enable-aggregator-routing=true \
  --requestheader-client-ca-file="$p/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$p/front-proxy-client.crt" --proxy-client-key-file="$p/front-proxy-client.key" \
  --profiling=false
WAIT_DAEMON=containerd wait_until 20 "containerd" test -S "$TESTBED_DIR/containerd/containerd.sock"
# The pods' images: there is no registry to pull them from.
"$here/load_image.sh" "$TESTBED_IMAGES"/current/{pause,busybox}.tar
WAIT_DAEMON=kube-apiserver wait_until 60 "kube-apiserver /readyz" kubectl get --raw /readyz

log "starting controller manager, scheduler, kubelet, kube-proxy"
kc=$TESTBED_DIR/kubeconfig
start kube-controller-manager "$K/kube-controller-manager" \
  --kubeconfig="$kc/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$kc/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$kc/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
  --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
  --service-cluster-ip-range="$TESTBED_SERVICE_CIDR" --cluster-cidr="$TESTBED_POD_CIDR" \
  --horizontal-pod-autoscaler-sync-period=5s --profiling=false
start kube-scheduler "$K/kube-scheduler" \
  --kubeconfig="$kc/scheduler.kubeconfig" \
  --authentication-kubeconfig="$kc/scheduler.kubeconfig" \
  --authorization-kubeconfig="$kc/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false
start kubelet "$K/kubelet" --config="$TESTBED_DIR/kubelet/config.yaml" \
  --kubeconfig="$kc/kubelet.kubeconfig" --root-dir="$TESTBED_DIR/kubelet" \
  --hostname-override="$host" --node-ip="$gateway" --node-labels=ignite.dev/testbed=true
start kube-proxy "$K/kube-proxy" --config="$TESTBED_DIR/kube-proxy.yaml"

# KEDA needs only the apiserver: it comes up while the kubelet registers.
# TESTBED_KEDA=0 leaves it out, for tests that never scale.
[ "${TESTBED_KEDA:-1}" = 0 ] || "$here/keda.sh"

WAIT_DAEMON=kubelet wait_until 60 "node $host Ready" \
  kubectl wait --for=condition=Ready "node/$host" --timeout=5s
# Pods are admitted only once the default ServiceAccount exists.
WAIT_DAEMON=kube-controller-manager wait_until 30 "default ServiceAccount" kubectl get serviceaccount default
log "node Ready after $((SECONDS - started)) s"

cat > "$TESTBED_DIR/testbed.env" <<ENV
# Written by tools/testbed/up.sh; source it to use the test bed.
export TESTBED_DIR=$TESTBED_DIR
export KUBECONFIG=$KUBECONFIG
export KUBECACHEDIR=$KUBECACHEDIR
export PATH=$TESTBED_K8S_BIN:$TESTBED_HELM_BIN:\$PATH
export TESTBED_NODE=$host
export TESTBED_POD_CIDR=$TESTBED_POD_CIDR
export TESTBED_SERVICE_CIDR=$TESTBED_SERVICE_CIDR
export TESTBED_BRIDGE=$TESTBED_BRIDGE
export TESTBED_HOST_IP=$gateway
export TESTBED_CONTAINERD_ADDRESS=$TESTBED_DIR/containerd/containerd.sock
export TESTBED_PAUSE_IMAGE=ignite.local/testbed/pause:1
export TESTBED_BUSYBOX_IMAGE=ignite.local/testbed/busybox:1
export TESTBED_HELM=$TESTBED_HELM_BIN/helm
export TESTBED_REGISTRY=127.0.0.1:$TESTBED_REGISTRY_PORT
ENV
up_ok=1
log "test bed up in $((SECONDS - started)) s: source $TESTBED_DIR/testbed.env"
