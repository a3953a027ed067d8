#!/usr/bin/env bash
# Debian packages the test bed runs on: the container runtime (containerd,
# runc, CNI plugins), etcd, the networking tools kube-proxy drives, busybox
# for the pods' image, and jq/openssl for the scripts. Installed only when
# one is missing (at the versions tools/debian-packages.txt records), so a
# second run costs one dpkg query per package.
#
# These machines have no init system, so the packages' own services never
# start; the bed runs its own containerd and etcd under its work folder.
set -euo pipefail
. "$(dirname "$0")/env.sh"

packages=(etcd-server containerd runc containernetworking-plugins iptables
          conntrack busybox-static jq openssl iproute2 ethtool socat)
"$(dirname "$0")/../apt_install.sh" "${packages[@]}"
