#!/usr/bin/env bash
# The web console's JavaScript tools (console/package.json, locked by
# console/package-lock.json): vite builds the page, playwright-core drives
# Debian's chromium in the browser tests. `tools/console.sh` installs them
# when missing; `tools/console.sh build` also rebuilds
# ignite_gateway/console/static/ (committed, so the gateway and `make run`
# need no Node.js).
set -euo pipefail
cd "$(dirname "$0")/../console"
if ! command -v npm >/dev/null; then
  echo "npm is missing: the console's browser tests will skip" >&2
  exit 0
fi
if [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/vite ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
if [ "${1:-}" = build ]; then
  npx vite build
fi
