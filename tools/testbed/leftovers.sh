#!/usr/bin/env bash
# Lists what a test bed left on the machine, one line each, and exits 1 if
# anything is left: processes started from the bed's binaries or naming its
# work folder, mounts under the work folder, named network namespaces made by
# CNI, the bridge, KUBE-* (and the bed's IGNITE-TESTBED-*) iptables chains, the kubelet's cgroups, the work
# folder itself. Tear-down must make this print nothing.
set -uo pipefail
. "$(dirname "$0")/env.sh"

found=0
report() { echo "$1"; found=1; }

for pid in $(pgrep -f -- "$TESTBED_DIR/|$TESTBED_CACHE/[^/ ]+/bin/" 2>/dev/null); do
  [ "$pid" = $$ ] && continue
  report "process $pid: $(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | cut -c1-150)"
done
real=$(realpath -m "$TESTBED_DIR")
awk -v p="$real/" 'index($5, p) == 1 {print "mount " $5}' /proc/self/mountinfo | while read -r m; do echo "$m"; done | grep . && found=1
for ns in /run/netns/cni-*; do [ -e "$ns" ] && report "netns $ns"; done
ip link show "$TESTBED_BRIDGE" >/dev/null 2>&1 && report "bridge $TESTBED_BRIDGE"
for cmd in iptables-save ip6tables-save; do
  command -v "$cmd" >/dev/null || continue
  chains=$("$cmd" 2>/dev/null | sed -nE 's/^:((KUBE|IGNITE-TESTBED)-[^ ]*).*/\1/p' | tr '\n' ' ')
  [ -n "$chains" ] && report "$cmd chains: $chains"
done
for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do [ -d "$c" ] && report "cgroup $c"; done
# Shim sockets nothing listens on any more (a killed shim's leftovers).
if [ -d /run/containerd/s ]; then
  listening=$(ss -xlH 2>/dev/null | awk '{print $5}')
  for s in /run/containerd/s/*; do
    [ -S "$s" ] && ! grep -qxF "$s" <<< "$listening" && report "stale shim socket $s"
  done
fi
for f in /var/lib/cni/results/"$TESTBED_CNI_NAME"-*; do [ -e "$f" ] && report "CNI result $f"; done
[ -e /var/lib/kubelet/device-plugins/kubelet.sock ] && report "kubelet socket /var/lib/kubelet/device-plugins/kubelet.sock"
[ -e "$TESTBED_DIR" ] && report "folder $TESTBED_DIR"
exit $found
