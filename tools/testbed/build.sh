#!/usr/bin/env bash
# Builds the Go programs of the test bed from the Go module proxy into a
# version-keyed cache outside the clone: Kubernetes (control plane, kubelet,
# kube-proxy, kubectl), KEDA (operator and metrics adapter, plus its CRDs),
# helm, and the bed's own pause binary. No release download site is reachable
# here, so everything is compiled from module sources.
#
# Each part is done once: a `.complete` stamp in its folder makes a second run
# return at once, so `make testbed-build` takes seconds when cached.
# The machine's 2 cores are shared, so builds run at nice 19 with GOMAXPROCS=2.
set -euo pipefail
. "$(dirname "$0")/env.sh"

GOBUILD=(nice -n 19 env GOMAXPROCS=2 GOFLAGS=-mod=mod go build -trimpath)

# Prints the read-only folder the module proxy's zip unpacks to.
module_dir() {
  go mod download -json "$1@$2" | jq -r .Dir
}

# A writable copy of a module: `go mod edit` and builds need to write go.mod.
# It lives in the cache (not /tmp) so that a rebuild after a crash is warm.
writable_copy() {
  local src=$1 dst=$2
  rm -rf "$dst"
  mkdir -p "$(dirname "$dst")"
  cp -r "$src" "$dst"
  chmod -R u+w "$dst"
  rm -f "$dst"/go.work "$dst"/go.work.sum
}

build_kubernetes() {
  local out=$TESTBED_K8S_BIN
  [ -e "$out/.complete" ] && return 0
  log "building Kubernetes $TESTBED_K8S_VERSION (first time: ~7 minutes)"
  local src dst=$TESTBED_CACHE/src/kubernetes-$TESTBED_K8S_VERSION
  src=$(module_dir k8s.io/kubernetes "$TESTBED_K8S_VERSION")
  writable_copy "$src" "$dst"
  # The module zip lacks staging/, yet go.mod replaces the k8s.io/* libraries
  # with ./staging paths: point each at its published v0.x twin instead.
  local staging_version=v0.${TESTBED_K8S_VERSION#v1.}
  local mods
  mods=$(cd "$dst" && go mod edit -json | jq -r '.Replace[]? | select(.New.Path | startswith("./staging")) | .Old.Path')
  local args=()
  for m in $mods; do args+=("-dropreplace=$m" "-require=$m@$staging_version"); done
  (cd "$dst" && go mod edit "${args[@]}")
  local minor=${TESTBED_K8S_VERSION#v1.}; minor=${minor%%.*}
  local ld="-s -w"
  ld+=" -X k8s.io/component-base/version.gitVersion=$TESTBED_K8S_VERSION"
  ld+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$TESTBED_K8S_VERSION"
  ld+=" -X k8s.io/component-base/version.gitTreeState=clean"
  mkdir -p "$out.tmp"
  (cd "$dst" && "${GOBUILD[@]}" -ldflags "$ld" -o "$out.tmp/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler \
    ./cmd/kubelet ./cmd/kube-proxy ./cmd/kubectl)
  rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/.complete"
  rm -rf "$dst"
}

build_keda() {
  local out=$TESTBED_KEDA_BIN
  [ -e "$out/.complete" ] && return 0
  log "building KEDA $TESTBED_KEDA_VERSION operator and metrics adapter (first time: ~9 minutes)"
  local src dst=$TESTBED_CACHE/src/keda-$TESTBED_KEDA_VERSION
  src=$(module_dir github.com/kedacore/keda/v2 "$TESTBED_KEDA_VERSION")
  writable_copy "$src" "$dst"
  local ld="-s -w -X github.com/kedacore/keda/v2/version.Version=${TESTBED_KEDA_VERSION#v}"
  mkdir -p "$out.tmp"
  (cd "$dst" && "${GOBUILD[@]}" -ldflags "$ld" -o "$out.tmp/" ./cmd/operator ./cmd/adapter)
  # The CRDs ship in the module; the bed installs them before the operator.
  rm -rf "$TESTBED_KEDA_DIR/crds" && cp -r "$dst/config/crd/bases" "$TESTBED_KEDA_DIR/crds"
  chmod -R u+w "$TESTBED_KEDA_DIR/crds"
  rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/.complete"
  rm -rf "$dst"
}

build_helm() {
  local out=$TESTBED_HELM_BIN
  [ -e "$out/.complete" ] && return 0
  log "building helm $TESTBED_HELM_VERSION (first time: a few minutes)"
  local src dst=$TESTBED_CACHE/src/helm-$TESTBED_HELM_VERSION
  src=$(module_dir helm.sh/helm/v3 "$TESTBED_HELM_VERSION")
  writable_copy "$src" "$dst"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$TESTBED_HELM_VERSION"
  mkdir -p "$out.tmp"
  (cd "$dst" && "${GOBUILD[@]}" -ldflags "$ld" -o "$out.tmp/" ./cmd/helm)
  rm -rf "$out" && mv "$out.tmp" "$out" && touch "$out/.complete"
  rm -rf "$dst"
}

# The images pods start from (pause sandbox, busybox), as OCI archives that
# `ctr images import` loads: there is no registry to pull from. Keyed by the
# hash of their inputs so an edit to the pause source or busybox rebuilds.
build_images() {
  local key
  key=$(cat "$TESTBED_LIB/pause/main.go" "$TESTBED_LIB/oci_image.py" /bin/busybox | sha256sum | cut -c1-16)
  local out=$TESTBED_IMAGES/$key
  if [ ! -e "$out/.complete" ]; then
    log "building the pause and busybox images"
    rm -rf "$out" && mkdir -p "$out"
    (cd "$TESTBED_LIB/pause" && CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 19 go build -trimpath -ldflags "-s -w" -o "$out/pause" .)
    python3 "$TESTBED_LIB/oci_image.py" pause "$out/pause" "$out/pause.tar"
    python3 "$TESTBED_LIB/oci_image.py" busybox /bin/busybox "$out/busybox.tar"
    rm "$out/pause"
    touch "$out/.complete"
  fi
  ln -sfn "$key" "$TESTBED_IMAGES/current"
}

mkdir -p "$TESTBED_CACHE"
# One build at a time per cache: a second caller (CI beside a developer)
# waits, then finds the parts done.
exec 9>"$TESTBED_CACHE/.build.lock"
flock 9
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(kubernetes keda helm images)
for part in "${parts[@]}"; do
  start=$SECONDS
  "build_$part"
  log "$part ready ($((SECONDS - start)) s)"
done
