#!/usr/bin/env bash
# test_kafka_cluster.sh - replication rides out broker failures on a real
# 3-broker KRaft cluster (deploy/local/kafka, SRL_KAFKA_BROKERS=3, private
# to the run): while 100,000 changes are committed on the hub (inserts,
# updates and deletes of assessments, 500 per transaction), the leader of
# the busiest partition is killed with SIGKILL and restarted, then all three
# brokers are restarted one by one (each back in sync before the next).
# Afterwards every spoke (spoke1 on Kafka, spoke2 through the bridge)
# equals the hub, nothing is left in the outbox, no dead letters, and the
# version of an assessment on a spoke (row or tombstone) never went down in
# any of the samples taken all along. The topics sysrepl created have
# three replicas and min.insync.replicas 2 by default.
#
# Settings: SRL_CLUSTER_CHANGES (100000; the issue's figure), and those of
# chaos_lib.sh (SRL_CHAOS_KEEP=1 keeps the run folder).
set -euo pipefail
SRL_PROG=test_kafka_cluster
# shellcheck source=tests/e2e/chaos_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/chaos_lib.sh"
chaos_use_kafka_cluster

CHANGES=${SRL_CLUSTER_CHANGES:-100000}
PER_TX=500 # 250 inserts, 200 updates, 50 deletes
KAFKA="$CHAOS_ROOT/deploy/local/kafka"

chaos_setup 2000

# ---- topic defaults on a cluster --------------------------------------------
for topic in "$TOPO_TOPIC.vulnerability-assessments" "$TOPO_TOPIC.policies"; do
    got=$("$SRL_BUILD_DIR/tests/tools/srl-topic-describe" "$CHAOS_KAFKA_BOOTSTRAP" "$topic")
    [[ $got == "replicas=3 min.insync.replicas=2 cleanup.policy=compact" ]] ||
        srl_die "topic $topic: expected three replicas and min.insync.replicas 2 by default, got: $got"
done
srl_log "topics have 3 replicas and min.insync.replicas 2"

# ---- the version sampler ----------------------------------------------------
# Every 2 s, each spoke's assessment versions (the row's, or the tombstone's
# once deleted) go to a file; check_versions compares them in order.
SAMPLES="$TOPO_DIR/versions"
mkdir -p "$SAMPLES"
sample_versions() {
    local i=0 spoke
    while [[ ! -e $SAMPLES/stop ]]; do
        for spoke in spoke1 spoke2; do
            topo_sql "$spoke" "COPY (SELECT key, max(version) FROM (
                SELECT key, version FROM vulnerability_assessments
                UNION ALL SELECT key, version FROM sysrepl.tombstones WHERE kind = 1) v
                GROUP BY key) TO STDOUT" >"$SAMPLES/$spoke.$(printf '%05d' "$i")" 2>/dev/null || true
        done
        i=$((i + 1))
        sleep 2
    done
}
sample_versions &
SAMPLER=$!
WORKLOAD=
# The sampler and the workload end with the run, whatever its outcome;
# chaos_cleanup then stops the rest and exits with the run's status.
# shellcheck disable=SC2329 # invoked by the EXIT trap
cluster_cleanup() {
    local rc=$?
    set +e
    kill "$SAMPLER" ${WORKLOAD:+"$WORKLOAD"} 2>/dev/null
    (exit "$rc")
    chaos_cleanup
}
trap cluster_cleanup EXIT

# ---- the workload -----------------------------------------------------------
# Straight SQL on the hub store (the CLI's per-change cost would make 100,000
# changes take many minutes): each transaction inserts new assessments and
# updates and deletes random existing ones, so the spokes see every kind of
# change, each captured (outbox or WAL, producer.capture) and published
# by the producer. Paced 0.3 s apart, the 200 transactions last about 70 s,
# longer than the faults take here (about 50-65 s), so the rolling restart
# happens under load too.
v0=$(topo_sql hub "SELECT last_value FROM sysrepl.sysrepl_version")
{
    for ((tx = 0; tx < CHANGES / PER_TX; tx++)); do
        cat <<SQL
BEGIN;
INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type, scope_kind, comment, assessed_at)
    SELECT 'CVE-2031-' || (100000 + $tx * 1000 + g), 'Blocked', 'global', 'cluster test', 0
    FROM generate_series(1, 250) g;
UPDATE vulnerability_assessments SET comment = md5(random()::text)
    WHERE key IN (SELECT key FROM vulnerability_assessments ORDER BY random() LIMIT 200);
DELETE FROM vulnerability_assessments
    WHERE key IN (SELECT key FROM vulnerability_assessments ORDER BY random() LIMIT 50);
COMMIT;
SELECT pg_sleep(0.3);
SQL
    done
} >"$TOPO_DIR/workload.sql"
"${TOPO_PSQL[@]}" -d "$(topo_db hub)" -o /dev/null -f "$TOPO_DIR/workload.sql" >"$TOPO_DIR/workload.log" 2>&1 &
WORKLOAD=$!
t_work=$SECONDS
srl_log "workload of $CHANGES changes started"

# ---- the faults ---------------------------------------------------------------
# The busiest partition: the highest end offset among the assessments'.
busiest_leader() {
    local topic="$TOPO_TOPIC.vulnerability-assessments" part
    part=$(kcat -b "$CHAOS_KAFKA_BOOTSTRAP" -Q -t "$topic:0:-1" -t "$topic:1:-1" -t "$topic:2:-1" 2>/dev/null |
        sed -n 's/.*\[\([0-9]*\)\] offset \([0-9]*\)/\2 \1/p' | sort -n | tail -1 | cut -d' ' -f2)
    [[ -n $part ]] || return 1
    kcat -b "$CHAOS_KAFKA_BOOTSTRAP" -L -t "$topic" 2>/dev/null |
        sed -n "s/.*partition $part, leader \([0-9]*\),.*/\1/p"
}
sleep 8
leader=$(busiest_leader) || true
[[ $leader =~ ^[1-3]$ ]] || srl_die "could not find the leader of the busiest partition (got \"$leader\")"
srl_log "kill -9 node $leader, the leader of the busiest partition"
"$KAFKA" kill-node "$leader"
CHAOS_KAFKA_RESTARTS=$((CHAOS_KAFKA_RESTARTS + 1))
sleep 3
chaos_revive
"$KAFKA" start-node "$leader"
"$KAFKA" wait-replicated 120
chaos_revive
for node in 1 2 3; do
    srl_log "rolling restart: node $node"
    "$KAFKA" stop-node "$node"
    "$KAFKA" start-node "$node"
    "$KAFKA" wait-replicated 120
    CHAOS_KAFKA_RESTARTS=$((CHAOS_KAFKA_RESTARTS + 1))
    chaos_revive
done
if kill -0 "$WORKLOAD" 2>/dev/null; then
    srl_log "faults done $((SECONDS - t_work)) s into the workload, which still runs"
else
    srl_log "faults done $((SECONDS - t_work)) s after the workload started; it ended before them (a slow machine)"
fi

wait "$WORKLOAD" || { tail -n 5 "$TOPO_DIR/workload.log" >&2; srl_die "the workload failed on the hub"; }
made=$(($(topo_sql hub "SELECT last_value FROM sysrepl.sysrepl_version") - v0))
((made >= CHANGES)) || srl_die "the workload made $made changes, expected $CHANGES"
CHAOS_CHANGES=$made
srl_log "workload done: $made changes in $((SECONDS - t_work)) s"

chaos_finish
CHAOS_OK=0 # not yet: the version rule is still to be checked
touch "$SAMPLES/stop"
wait "$SAMPLER" || true

# ---- the version rule -------------------------------------------------------
for spoke in spoke1 spoke2; do
    python3 - "$spoke" "$SAMPLES"/"$spoke".* <<'PY' || srl_die "$spoke: an assessment's version went down"
import sys
spoke, files = sys.argv[1], sys.argv[2:]
seen, bad = {}, 0
for f in files:
    for line in open(f):
        key, version = line.rstrip("\n").split("\t")
        version = int(version)
        if version < seen.get(key, 0):
            bad += 1
            if bad <= 5:
                print("%s: %s went from version %d to %d in %s" % (spoke, key, seen[key], version, f))
        seen[key] = max(version, seen.get(key, 0))
print("%s: %d samples, %d keys, versions never went down: %s" % (spoke, len(files), len(seen), bad == 0))
sys.exit(1 if bad or len(files) < 3 else 0)
PY
done
# chaos_finish counted daemons that exited on their own; a broker failure
# must not make any of them give up.
((${#CHAOS_UNEXPECTED[@]} == 0)) || srl_die "daemons exited on their own during the broker failures: ${!CHAOS_UNEXPECTED[*]}"
CHAOS_OK=1
srl_log "OK"
