#!/usr/bin/env bash
# test_chaos_bridge_outage.sh - a spoke that pulls through the bridge
# (transport http) rides out a bridge outage: the bridge is stopped for a
# while (SIGKILL, then down ~20 s) as the hub keeps changing and the spoke's
# consumer keeps retrying, killed now and then itself; then the bridge comes
# back. Afterwards both spokes equal the hub, no dead letters, outbox empty,
# and the http spoke's consumer never gave up (it is still running).
set -euo pipefail
SRL_PROG=test_chaos_bridge_outage
# shellcheck source=tests/e2e/chaos_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos_lib.sh"

chaos_setup 1000
outages=${SRL_CHAOS_OUTAGES:-2}
for ((i = 1; i <= outages; i++)); do
    srl_log "bridge outage $i of $outages: killing the bridge"
    topo_kill9 bridge
    CHAOS_KILLS[bridge]=$((${CHAOS_KILLS[bridge]:-0} + 1))
    CHAOS_PAUSED=bridge # chaos_revive leaves it down
    chaos_run 20 producer spoke1 spoke2
    topo_check_alive spoke2 # retrying, not exited
    CHAOS_PAUSED=
    chaos_start bridge
    CHAOS_RESTARTS[bridge]=$((${CHAOS_RESTARTS[bridge]:-0} + 1))
    srl_log "bridge back; waiting for spoke2 to catch up"
    topo_wait_converged 120 hub spoke1 spoke2 || srl_die "spoke2 did not catch up after bridge outage $i"
done
chaos_finish
