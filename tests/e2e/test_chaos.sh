#!/usr/bin/env bash
# test_chaos.sh - replication survives crashes: for SRL_CHAOS_SECONDS (90)
# random changes are made on the hub (CLI imports, puts, deletes) while the
# producer, the bridge and both spokes' consumers are killed with SIGKILL (or
# stopped with SIGTERM) and restarted at random, and the run's private
# PostgreSQL and Kafka are restarted now and then. Afterwards every spoke
# (one on Kafka, one through the bridge) equals the hub, there are no dead
# letters and the hub's outbox is empty. Prints how many kills and restarts
# were survived. A soak: tests/soak (SRL_CHAOS_SECONDS=1800).
set -euo pipefail
SRL_PROG=test_chaos
# shellcheck source=tests/e2e/chaos_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos_lib.sh"

chaos_setup 2000
chaos_run "$CHAOS_SECONDS"
chaos_finish
