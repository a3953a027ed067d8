#!/usr/bin/env bash
# External tools the platform and its tests use, installed when missing:
# the sandbox's Debian packages (tools/sandbox.sh), promtool and chromium
# for the observability and console tests (tools/observability.sh), the
# console's npm packages (tools/console.sh), grpcurl from the Go module proxy.
set -euo pipefail
"$(dirname "$0")/sandbox.sh"
"$(dirname "$0")/observability.sh"
"$(dirname "$0")/console.sh"
"$(dirname "$0")/grpcurl.sh"
