#!/usr/bin/env bash
# Tears the test bed down and leaves nothing: no processes (daemons and the
# containerd shims that outlive containerd), no mounts under the work folder
# (rootfs overlays, shm, pod volumes, network namespaces), no bridge, no
# KUBE-* iptables chains, no kubelet cgroups, the kernel settings restored
# and the work folder removed. Safe to run twice, and after a failed bring-up.
#
# Fast rather than graceful: every daemon gets SIGTERM at once (SIGKILL after
# 1 s), then the pods' processes are killed through their shims, and the
# network namespaces, mounts, addresses and cgroups they held are swept up
# here instead of by CNI; all the bed's state is thrown away anyway.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/proc.sh"

started=$SECONDS
d=$TESTBED_DIR
sock=$d/containerd/containerd.sock

stop 1 keda-adapter keda-operator kube-controller-manager kube-scheduler kubelet kube-proxy kube-apiserver

# Pods: a shim of our containerd (found by the socket it names) is the parent
# of its containers' init processes; killing those ends each pod's pid
# namespace, then the shim goes too. Shims outlive containerd, so this does
# not depend on containerd still running.
# libcni keeps a result per pod and interface in /var/lib/cni/results (not
# configurable in containerd 1.6) and drops it only on a CNI DEL, which
# killed pods never get: note our sandboxes to remove theirs below.
sandboxes=$(ls "$d/containerd/state/io.containerd.grpc.v1.cri/sandboxes" 2>/dev/null)
shims=$(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock( |$)" 2>/dev/null)
# Killed shims leave their sockets in /run/containerd/s (a path containerd
# 1.6 fixes); each task's bundle says which socket is its shim's.
shim_sockets=$(for f in "$d"/containerd/state/io.containerd.runtime.v2.task/*/*/address; do
  [ -f "$f" ] && sed 's|^unix://||; $a\' "$f"
done | sort -u)
for pid in $shims; do pkill -KILL -P "$pid" 2>/dev/null; done
for pid in $shims; do kill -KILL "$pid" 2>/dev/null; done
stop 1 containerd etcd
for ((i = 0; i < 50; i++)); do   # shims and pods gone, at most ~5 s
  pgrep -f -- "containerd-shim-runc-v2 .*-address $sock( |$)" >/dev/null || break
  sleep 0.1
done
for s in $shim_sockets; do
  case $s in /run/containerd/s/*) rm -f "$s" ;; esac
done

# kube-proxy's and kubelet's iptables chains, both families, every table.
"$here/iptables_clean.sh"

# Every mount under the work folder, deepest first (rootfs overlays, shm,
# tmpfs volumes, network namespace bind mounts).
if [ -d "$d" ]; then
  real=$(realpath "$d")
  for ((i = 0; i < 5; i++)); do
    mounts=$(awk -v p="$real/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    [ -z "$mounts" ] && break
    for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  done
fi

# The bridge (veth ends died with the pods' namespaces), and any veth left.
ip link del "$TESTBED_BRIDGE" 2>/dev/null

# The kubelet's pod cgroups (cgroup v1 with cgroupfs: one tree per
# controller); retried while the killed pods' processes finish exiting.
for ((i = 0; i < 25; i++)); do
  left=0
  for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$root" ] || continue
    find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$root" ] && left=1
  done
  [ $left = 0 ] && break
  sleep 0.2
done

# Folders outside the work folder that the daemons insist on (the kubelet's
# /var/log/containers links and its device-plugin socket, libcni's results,
# the shims' sockets in /run/containerd/s): our entries go, and the folders
# too when up.sh found them absent and they are empty now.
if [ -d /var/log/containers ]; then
  find /var/log/containers -maxdepth 1 -type l -lname "$d/*" -delete 2>/dev/null
fi
for id in $sandboxes; do
  rm -f /var/lib/cni/results/*-"$id"-*
done
if grep -qx /var/lib/kubelet "$d/absent-paths" 2>/dev/null; then
  rm -f /var/lib/kubelet/device-plugins/kubelet.sock   # fixed path in the kubelet
fi
if [ -f "$d/absent-paths" ]; then
  while IFS= read -r path; do
    [ -d "$path" ] && find "$path" -depth -type d -empty -delete 2>/dev/null
  done < "$d/absent-paths"
fi

"$here/sysctls.sh" restore
# Logs outlive the bed only when asked (up.sh asks when bring-up failed).
if [ -n "${TESTBED_KEEP_LOGS:-}" ] && [ -d "$d/logs" ]; then
  rm -rf "$d.logs" && cp -r "$d/logs" "$d.logs"
fi
rm -rf "$d"
log "test bed down in $((SECONDS - started)) s"
