#!/usr/bin/env bash
# What the observability and console tests use from Debian: promtool (the
# `prometheus` package) checks the /metrics output, chromium is the browser
# Playwright drives headless (no browser is downloaded). Installed when
# missing; the tests that need them fail, naming this script, when they are not.
set -euo pipefail
"$(dirname "$0")/apt_install.sh" prometheus chromium
