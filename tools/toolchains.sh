#!/usr/bin/env bash
# External tools the platform and its tests use, installed when missing:
# the sandbox's Debian packages (tools/sandbox.sh), promtool and chromium
# for the observability and console tests (tools/observability.sh), the
# console's npm packages (tools/console.sh), curl and openssl for the HTTP
# edge's and TLS tests, a C compiler (the Rust toolchain's linker, the
# tests' tiny image server), grpcurl from the Go module proxy. A test whose tool
# is missing fails and names the script that installs it.
set -euo pipefail
"$(dirname "$0")/apt_install.sh" curl openssl gcc libc6-dev
"$(dirname "$0")/sandbox.sh"
"$(dirname "$0")/observability.sh"
"$(dirname "$0")/console.sh"
"$(dirname "$0")/grpcurl.sh"
