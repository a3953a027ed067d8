#!/usr/bin/env bash
# The web console's JavaScript tools (console/package.json, locked by
# console/package-lock.json): vite builds the page, playwright-core drives
# Debian's chromium in the browser tests. `tools/console.sh` installs them
# when missing; `tools/console.sh build` also rebuilds
# ignite_gateway/console/static/ (committed, so the gateway and `make run`
# need no Node.js), and `tools/console.sh check` fails when that bundle is
# not what the sources build (`make test` runs it).
set -euo pipefail
cd "$(dirname "$0")/../console"
if ! command -v npm >/dev/null; then
  echo "npm is missing: install Node.js (the console's bundle check and browser test need it)" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/vite ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
case "${1:-}" in
  build) npx vite build ;;
  # The committed bundle is what the sources build (as gen/ is for protos).
  check)
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    npx vite build --logLevel error --outDir "$out" --emptyOutDir
    if ! diff -r "$out" ../ignite_gateway/console/static >/dev/null; then
      echo "ignite_gateway/console/static/ is stale: run tools/console.sh build" >&2
      exit 1
    fi
    echo "console bundle is fresh"
    ;;
esac
