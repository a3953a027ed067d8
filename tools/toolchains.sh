#!/usr/bin/env bash
# External tools the platform and its tests use, installed when missing:
# bubblewrap (the pod sandbox) from Debian, grpcurl from the Go module proxy.
set -euo pipefail
if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
  else
    echo "bubblewrap is missing; pods would run without a sandbox" >&2
  fi
fi
gobin=$(go env GOPATH)/bin
if [ ! -x "$gobin/grpcurl" ] && ! command -v grpcurl >/dev/null; then
  go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
fi
