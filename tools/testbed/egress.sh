#!/usr/bin/env bash
# Keeps the pods' traffic on the bed's bridge. Service traffic between pods
# is routed by the host (ip_forward=1), which would also forward anything a
# pod sends elsewhere (a DNS query to the absent cluster DNS, a test's stray
# request) out of the machine's own interface. One chain of ours in FORWARD
# rejects every packet that comes from the bridge and would leave by
# another interface. Tear-down (iptables_clean.sh) removes the chain.
set -euo pipefail
. "$(dirname "$0")/env.sh"

chain=IGNITE-TESTBED-EGRESS
iptables -w 5 -N "$chain"
iptables -w 5 -A "$chain" -i "$TESTBED_BRIDGE" ! -o "$TESTBED_BRIDGE" -j REJECT --reject-with icmp-net-prohibited
iptables -w 5 -I FORWARD 1 -j "$chain"
