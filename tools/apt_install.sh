#!/usr/bin/env bash
# Installs Debian packages that are missing, at the versions recorded in
# tools/debian-packages.txt: the recorded version while the archive still
# offers it (security updates replace old versions), else the archive's
# candidate, saying so. Packages already installed are left as they are.
#
#   tools/apt_install.sh PACKAGE...    install the missing ones
#   tools/apt_install.sh --record      rewrite the file from what is installed
set -euo pipefail
versions="$(dirname "$0")/debian-packages.txt"

recorded() { awk -v p="$1" '$1 == p { print $2 }' "$versions"; }
installed() { dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null | awk '/install ok installed/ { print $4 }'; }

if [ "${1:-}" = --record ]; then
  tmp=$(mktemp)
  grep '^#' "$versions" >"$tmp"
  for p in $(grep -v '^#' "$versions" | awk '{ print $1 }'); do
    echo "$p $(installed "$p")" >>"$tmp"
  done
  mv "$tmp" "$versions"
  exit 0
fi

missing=()
for p in "$@"; do
  [ -n "$(installed "$p")" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "cannot install ${missing[*]}: not root and no sudo" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
wanted=()
for p in "${missing[@]}"; do
  v=$(recorded "$p")
  if [ -n "$v" ] && apt-cache madison "$p" | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | grep -qxF "$v"; then
    wanted+=("$p=$v")
  else
    echo "note: $p ${v:-(unrecorded)} is not in the archive; installing its candidate" >&2
    wanted+=("$p")
  fi
done
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
