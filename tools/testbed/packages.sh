#!/usr/bin/env bash
# Debian packages the test bed runs on: the container runtime (containerd,
# runc, CNI plugins), etcd, the networking tools kube-proxy drives, busybox
# for the pods' image, and jq/openssl for the scripts. Installed only when
# one is missing, so a second run costs one dpkg query.
#
# These machines have no init system, so the packages' own services never
# start; the bed runs its own containerd and etcd under its work folder.
set -euo pipefail
. "$(dirname "$0")/env.sh"

packages=(etcd-server containerd runc containernetworking-plugins iptables
          conntrack busybox-static jq openssl iproute2 ethtool socat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || die "needs root to install: ${missing[*]}"
log "installing ${missing[*]}"
# policy-rc.d keeps any maintainer script from trying to start a service.
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
