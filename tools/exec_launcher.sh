#!/usr/bin/env bash
# Builds the exec launcher (runtimes/exec, standard library only) into $1:
# the process the local backend pre-starts for Go and Rust pods. A static
# linux/amd64 binary, made with the same Go toolchain the Go pipeline uses
# (on PATH, else /usr/local/go); make rebuilds it only when its sources
# change. Without Go it is skipped, and those pods start without a pool.
set -euo pipefail
out=$(realpath -m "$1")
go=$(command -v go || echo /usr/local/go/bin/go)
if [ ! -x "$go" ]; then
  echo "no Go toolchain: Go and Rust pods will start without a pre-started pool" >&2
  exit 0
fi
mkdir -p "$(dirname "$out")"
# Concurrent builds (parallel test workers) each write a file of their own,
# and the last rename wins: the binary is never seen half-written.
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cd "$(dirname "$0")/../runtimes/exec"
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
  "$go" build -trimpath -ldflags='-s -w' -o "$tmp" .
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
