#!/usr/bin/env bash
# Installs KEDA into the running bed (called by up.sh): its CRDs, then the
# operator and the external-metrics adapter, both as host processes with the
# admin kubeconfig (no image registry here to run them as pods).
#
# The adapter is an aggregated API: the apiserver reaches it through the
# APIService v1beta1.external.metrics.k8s.io -> Service keda/keda-metrics-apiserver
# -> a hand-written Endpoints entry on the bed's bridge gateway address, where
# the adapter listens (an Endpoints address may not be loopback). The
# operator's gRPC metrics service, which the adapter calls, stays on loopback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/proc.sh"

K=$TESTBED_K8S_BIN
B=$TESTBED_KEDA_BIN
if [ ! -x "$B/operator" ] || [ ! -x "$B/adapter" ]; then die "KEDA missing in $B: run tools/testbed/build.sh"; fi
export KUBECONFIG=$TESTBED_DIR/kubeconfig/admin.kubeconfig
export KUBECACHEDIR=$TESTBED_DIR/kube-cache
kubectl() { "$K/kubectl" --request-timeout=10s "$@"; }
gateway=${TESTBED_POD_CIDR%.*}.1
adapter_port=${TESTBED_KEDA_ADAPTER_PORT:-16444}
grpc_port=${TESTBED_KEDA_GRPC_PORT:-19666}
health_port=${TESTBED_KEDA_HEALTH_PORT:-18081}
started=$SECONDS

# Server-side apply: the ScaledJob CRD is too large for the annotation that
# client-side apply would store.
kubectl apply --server-side --force-conflicts -f "$TESTBED_KEDA_DIR/crds" >/dev/null
wait_until 30 "KEDA CRDs Established" \
  kubectl wait --for=condition=Established crd --all --timeout=5s

ca=$(base64 -w0 < "$TESTBED_DIR/pki/ca.crt")
kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: keda}
---
apiVersion: v1
kind: Service
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec:
  ports: [{name: https, port: 443, targetPort: $adapter_port}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: keda-metrics-apiserver, namespace: keda}
subsets:
- addresses: [{ip: $gateway}]
  ports: [{name: https, port: $adapter_port}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  caBundle: $ca
  service: {name: keda-metrics-apiserver, namespace: keda, port: 443}
YAML

certs=$TESTBED_DIR/pki/keda-certs
log "starting KEDA operator and metrics adapter"
# POD_NAMESPACE and KEDA_CLUSTER_OBJECT_NAMESPACE stand in for the pod it
# would run in; an empty WATCH_NAMESPACE watches all namespaces.
start keda-operator env POD_NAMESPACE=keda KEDA_CLUSTER_OBJECT_NAMESPACE=keda WATCH_NAMESPACE= \
  "$B/operator" --leader-elect=false --enable-cert-rotation=false \
  --enable-webhook-patching=false --enable-apiservice-patching=false \
  --cert-dir="$certs" --ca-dir="$certs" \
  --metrics-bind-address="127.0.0.1:${TESTBED_KEDA_METRICS_PORT:-18080}" \
  --health-probe-bind-address="127.0.0.1:$health_port" \
  --metrics-service-bind-address="127.0.0.1:$grpc_port" \
  --zap-log-level=info --zap-encoder=console
start keda-adapter env POD_NAMESPACE=keda KEDA_CLUSTER_OBJECT_NAMESPACE=keda WATCH_NAMESPACE= \
  "$B/adapter" --bind-address="$gateway" --secure-port="$adapter_port" \
  --cert-dir="$certs" --tls-cert-file="$certs/tls.crt" --tls-private-key-file="$certs/tls.key" \
  --lister-kubeconfig="$KUBECONFIG" --authentication-kubeconfig="$KUBECONFIG" \
  --authorization-kubeconfig="$KUBECONFIG" \
  --metrics-service-address="127.0.0.1:$grpc_port" \
  --port="${TESTBED_KEDA_ADAPTER_METRICS_PORT:-18082}" --zap-encoder=console

WAIT_DAEMON=keda-operator wait_until 60 "KEDA operator ready" \
  curl -fsS "http://127.0.0.1:$health_port/readyz"
WAIT_DAEMON=keda-adapter wait_until 60 "APIService v1beta1.external.metrics.k8s.io Available" \
  kubectl wait --for=condition=Available apiservice/v1beta1.external.metrics.k8s.io --timeout=5s
log "KEDA ready in $((SECONDS - started)) s"
