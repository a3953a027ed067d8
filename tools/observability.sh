#!/usr/bin/env bash
# What the observability and console tests use from Debian: promtool (the
# `prometheus` package) checks the /metrics output, chromium is the browser
# Playwright drives headless (no browser is downloaded). Installed when
# missing; the tests that need them skip with the reason when they are not.
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "cannot install ${need[*]}: the promtool and browser tests will skip" >&2
fi
