#!/usr/bin/env bash
# Removes every KUBE-* iptables chain (IPv4 and IPv6, every table) and the
# rules of other chains that jump into them: kube-proxy makes the service
# chains, the kubelet its canary and firewall chains; and the bed's own
# IGNITE-TESTBED-* chains (egress.sh). Run at tear-down, after
# kube-proxy and the kubelet have stopped. Chains of anything else on the
# machine are left as they are.
#
# One iptables-restore --noflush batch per table (delete the jumps, flush,
# delete the chains): a rule-by-rule clean-up, or kube-proxy --cleanup, takes
# seconds, and kube-proxy's would miss the kubelet's chains.
set -uo pipefail
. "$(dirname "$0")/env.sh"

# batch: reads one table of iptables-save output, prints the restore batch
# that removes its KUBE-* and IGNITE-TESTBED-* chains (nothing when it has none).
batch() {
  awk '
    /^\*/ { table = $0 }
    /^:(KUBE|IGNITE-TESTBED)-/ { chains[++n] = substr($1, 2) }
    /^-A / && $2 !~ /^(KUBE|IGNITE-TESTBED)-/ && / -j (KUBE|IGNITE-TESTBED)-/ {
      sub(/^-A /, "-D "); jumps[++m] = $0
    }
    END {
      if (n == 0) exit
      print table
      for (i = 1; i <= m; i++) print jumps[i]
      for (i = 1; i <= n; i++) print "-F " chains[i]
      for (i = 1; i <= n; i++) print "-X " chains[i]
      print "COMMIT"
    }'
}

status=0
for cmd in iptables ip6tables; do
  command -v "$cmd-save" >/dev/null || continue
  for table in filter nat mangle raw; do
    script=$("$cmd-save" -t "$table" 2>/dev/null | batch)
    [ -z "$script" ] && continue
    "$cmd-restore" -w 5 --noflush <<< "$script" || { log "could not clean $cmd $table"; status=1; }
  done
done
exit $status
