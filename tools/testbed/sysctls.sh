#!/usr/bin/env bash
# Saves (before bring-up) and restores (at tear-down) the kernel settings
# that the bed or its daemons change: kubelet tunes overcommit and panic
# settings, the bed turns on forwarding and bridge netfilter for service
# traffic. The machine is shared, so tear-down puts every one of them back.
#
# usage: sysctls.sh save|restore
set -euo pipefail
. "$(dirname "$0")/env.sh"

saved=$TESTBED_DIR/sysctls.saved
keys=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
      kernel.keys.root_maxkeys kernel.keys.root_maxbytes
      net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables
      net.bridge.bridge-nf-call-ip6tables net.ipv4.conf.all.route_localnet)
case ${1:-} in
  save)
    mkdir -p "$TESTBED_DIR"
    : > "$saved.tmp"
    for k in "${keys[@]}"; do
      v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v" >> "$saved.tmp"
    done
    mv "$saved.tmp" "$saved"
    ;;
  restore)
    [ -f "$saved" ] || exit 0
    while IFS= read -r line; do
      sysctl -qw "$line" 2>/dev/null || log "could not restore $line"
    done < "$saved"
    ;;
  *) die "usage: sysctls.sh save|restore" ;;
esac
