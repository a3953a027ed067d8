#!/usr/bin/env bash
# grpcurl, the gRPC command-line client of the README's examples, installed
# when missing from the Go module proxy into $(go env GOPATH)/bin (pinned).
set -euo pipefail
gobin=$(go env GOPATH)/bin
if [ -x "$gobin/grpcurl" ] || command -v grpcurl >/dev/null; then
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "grpcurl needs Go to install (https://go.dev/dl), or a release of fullstorydev/grpcurl" >&2
  exit 1
fi
go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4
echo "grpcurl installed in $gobin (add it to PATH)" >&2
