# Ignite — the two commands a newcomer needs are `make run` and `make test`.
# Everything else here is what those two are made of.

PYTHON   ?= python3.11
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
PROTOS   := $(wildcard proto/dodil/ignite/v1/*.proto) proto/externalscaler/externalscaler.proto
DEPS_DIR := build/proto-deps
# Tests run in parallel; each worker shares one platform per session.
TEST_WORKERS ?= auto
# Serialises the runs that use the (one per machine) Kubernetes test bed.
TESTBED_LOCK ?= /tmp/ignite-testbed.lock

.PHONY: grpcurl run test test-fast test-load golden lock lock-check gen gen-check lint proto-lint proto-breaking fmt bench \
	clean setup sandbox toolchains runtime-images console-check test-kubernetes exec-launcher

## setup: a virtualenv with Ignite and its development tools, exactly as
## uv.lock pins them (hashes checked); uv itself comes pinned and hashed from
## tools/uv-requirements.txt.
UV_DIR := build/uv
UV     := $(UV_DIR)/bin/uv
setup: $(STAMP)
$(UV): tools/uv-requirements.txt
	rm -rf $(UV_DIR)
	$(PYTHON) -m venv $(UV_DIR)
	$(UV_DIR)/bin/pip install -q --require-hashes --no-deps -r tools/uv-requirements.txt
	touch $@
$(STAMP): pyproject.toml uv.lock $(UV)
	$(UV) sync --frozen --extra dev --python $(PYTHON)
	touch $@

## lock: re-resolve uv.lock from pyproject.toml's ranges (deliberately: the
## only way the pinned versions change); lock-check: fail when they disagree.
lock: $(UV)
	$(UV) lock --upgrade --python $(PYTHON)
lock-check: $(UV)
	$(UV) lock --check --offline --python $(PYTHON)

$(DEPS_DIR)/google/api/annotations.proto: $(STAMP)
	$(BIN)/python tools/proto_deps.py $(DEPS_DIR)

## gen: regenerate gen/ from proto/ (Python messages, .pyi stubs, grpc stubs).
gen: $(STAMP) $(DEPS_DIR)/google/api/annotations.proto
	rm -rf gen/dodil gen/externalscaler
	$(BIN)/python -m grpc_tools.protoc -I proto -I $(DEPS_DIR) \
	  --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTOS)

## gen-check: fail when gen/ is not what `make gen` would write.
gen-check: $(STAMP) $(DEPS_DIR)/google/api/annotations.proto
	$(BIN)/python tools/gen_check.py $(DEPS_DIR)

## runtime-images: the Kubernetes backend's runtime images as OCI archives
## in build/images/ (LOAD=1: also into the running test bed's containerd).
runtime-images: $(STAMP)
	$(BIN)/python tools/images/build_runtime_images.py $(if $(LOAD),--load)

## proto-lint: buf lint of proto/.
proto-lint: $(DEPS_DIR)/google/api/annotations.proto
	$(BIN)/buf lint

## proto-breaking: buf breaking against the previous commit (or BUF_AGAINST).
proto-breaking: $(DEPS_DIR)/google/api/annotations.proto
	tools/buf_breaking.sh $(DEPS_DIR)

## lint: ruff, mypy, the import contracts (import-linter, in pyproject.toml)
## and buf on our own code; gen/ is output and skipped.
lint: $(STAMP) proto-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## console-check: the committed console bundle is what console/src builds.
console-check: toolchains
	tools/console.sh check

## test: everything, from a fresh clone.
test: $(STAMP) lock-check gen-check lint proto-breaking toolchains exec-launcher console-check testbed-build
	@echo "dependencies: uv.lock sha256:$$(sha256sum uv.lock | cut -c1-16)… ($$(grep -c '^name = ' uv.lock) packages), installed by $$($(UV) --version)"
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -q -m "not load"
	$(MAKE) test-load
	$(MAKE) test-kubernetes

## test-load: tests that compare latencies quiet and under a flood, one at a
## time with nothing else on the machine's cores: a parallel neighbour's
## CPU would be measured as the flood's.
test-load: $(STAMP)
	$(BIN)/python -m pytest -q -p no:xdist -m load

## test-fast: the fast tier (tests/conftest.py's FAST_MODULES): core, the
## gateway, the CLI and the Kubernetes object builders against fakes of the
## ports; no PostgreSQL, pods or toolchains; under a minute. Prints its time.
test-fast: $(STAMP)
	@start=$$(date +%s%N); $(BIN)/python -m pytest -m fast -p no:xdist -q; rc=$$?; \
	  echo "fast tier: $$(( ($$(date +%s%N) - start) / 1000000 )) ms wall clock (goal: under 60 s)"; \
	  exit $$rc

## golden: rewrite the Kubernetes objects' expected files from the builders
## (tests/backends/kubernetes/golden/expected); review and commit the diff.
golden: $(STAMP)
	IGNITE_GOLDEN_UPDATE=1 $(BIN)/python -m pytest -q -p no:xdist tests/backends/kubernetes/golden

## test-kubernetes: the Kubernetes suite against a test bed it brings up and
## tears down; in one process, and one run per machine at a time (the bed's
## bridge and ports are fixed), which the lock enforces.
test-kubernetes: $(STAMP) testbed-build
	flock $(TESTBED_LOCK) env IGNITE_KUBERNETES=1 \
	  $(BIN)/python -m pytest -q -p no:xdist tests/backends/kubernetes

## toolchains: the external tools the tests drive (grpcurl, the sandbox's).
toolchains:
	tools/toolchains.sh

## grpcurl: the gRPC command-line client the README's examples use, from the
## Go module proxy into $(go env GOPATH)/bin.
grpcurl:
	tools/grpcurl.sh

## sandbox: what the pod and build sandbox needs (bubblewrap, libseccomp).
sandbox:
	@tools/sandbox.sh

## exec-launcher: the process pre-started Go and Rust pods run until they are
## given their app (runtimes/exec); rebuilt only when its sources change.
EXEC_LAUNCHER := build/runtimes/exec/ignite-exec
exec-launcher: $(EXEC_LAUNCHER)
$(EXEC_LAUNCHER): runtimes/exec/go.mod $(wildcard runtimes/exec/*.go)
	tools/exec_launcher.sh $@

## run: the whole platform on the embedded defaults (own PostgreSQL, local pods).
run: $(STAMP) sandbox exec-launcher
	@$(BIN)/python -m ignite_launcher

## bench: performance tables (see README, Performance); each script starts
## the platform it measures.
bench: $(STAMP) exec-launcher
	$(BIN)/python bench/invoke.py
	$(BIN)/python bench/http_edge.py
	$(BIN)/python bench/async_executions.py
	$(BIN)/python bench/builds.py
	$(BIN)/python bench/runtimes.py

clean:
	-for m in .state/build-volumes/*/; do umount -l "$$m" 2>/dev/null; done
	rm -rf $(VENV) build .state

## testbed-build: the Kubernetes test bed's Debian packages and its Go builds
## (Kubernetes, KEDA, helm) into a version-keyed cache outside the clone
## (TESTBED_CACHE, default /var/cache/ignite-testbed); seconds when cached.
## testbed-up: etcd, control plane, containerd, kubelet, kube-proxy and KEDA on
## loopback and the bed's own bridge; kubeconfig and env file in TESTBED_DIR
## (default /tmp/ignite-testbed). testbed-down: stops it, leaving nothing.
## testbed-smoke: brings it up, runs a pod, scales it with KEDA, tears down.
.PHONY: testbed-build testbed-up testbed-down testbed-smoke
testbed-build:
	tools/testbed/packages.sh
	tools/testbed/build.sh
testbed-up: testbed-build
	tools/testbed/up.sh
testbed-down:
	tools/testbed/down.sh
testbed-smoke: $(STAMP) testbed-build
	IGNITE_TESTBED=1 $(BIN)/python -m pytest -q -p no:xdist -s tests/testbed
