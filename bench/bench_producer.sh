#!/usr/bin/env bash
# bench/bench_producer.sh [N] - sysrepl-producer throughput and latency,
# side by side with raw librdkafka production of the same bytes.
#
#   1. N changes (default 1,000,000) committed on a fresh hub store with one
#      INSERT ... SELECT generate_series (capture triggers on);
#   2. sysrepl-producer --once drains them: time from its start to "outbox
#      empty" (every record acknowledged by Kafka, every row deleted), with
#      its own split of the time (outbox read, encode, produce, delete);
#   3. bench_produce_raw produces N pre-encoded records of the same shape
#      with the same librdkafka settings: the ceiling;
#   4. latency: 1,000 changes/s for 10 s, one transaction each, while the
#      producer runs with --ack-log; commit -> delivery report, p50/p99.
#
# Needs the services of deploy/local (SRL_TEST_PG_DSN, SRL_TEST_KAFKA or
# their defaults) and a build (SRL_BUILD_DIR, default ./build) with the
# targets sysrepl, sysrepl-producer, bench_produce_raw, bench_producer_writer.
# BENCH_PRODUCER_ARGS: more producer arguments, e.g. "-X producer.linger_ms=1".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${SRL_BUILD_DIR:-$ROOT/build}"
N="${1:-1000000}"
PG_BASE="${SRL_TEST_PG_DSN:-host=127.0.0.1 port=55432 user=postgres dbname=postgres}"
KAFKA="${SRL_TEST_KAFKA:-127.0.0.1:59092}"
DB="bench_producer_$$"
DSN="${PG_BASE/dbname=postgres/dbname=$DB}"
PREFIX="bench-producer-$$-$(date +%s)"
WORK="$(mktemp -d /tmp/bench-producer.XXXXXX)"
# shellcheck disable=SC2206 # BENCH_PRODUCER_ARGS: extra args, split on spaces on purpose
PRODUCER=("$BUILD/producer/sysrepl-producer" -X "store.dsn=$DSN" -X "topic.prefix=$PREFIX"
    -X "kafka.bootstrap.servers=$KAFKA" -X instance.id=hub-bench -X stats.interval_ms=5000
    ${BENCH_PRODUCER_ARGS:-})

cleanup() {
    if [[ -n ${PID:-} ]]; then kill "$PID" 2>/dev/null || true; fi
    psql "$PG_BASE" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }

psql "$PG_BASE" -qc "CREATE DATABASE $DB"
"$BUILD/cli/sysrepl" init --dsn "$DSN" --instance-id hub-bench --role hub >/dev/null
# Topics, schemas and the first start's snapshot (of one row, so that the
# topics are not empty and the timed run does not snapshot): not timed.
psql "$DSN" -qc "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,
    scope_kind, assessed_at) VALUES ('CVE-2024-0001', 'Blocked', 'global', 0)"
"${PRODUCER[@]}" --once 2>"$WORK/setup.log"

t0=$(now)
psql "$DSN" -qc "INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,
    scope_kind, assessed_at) SELECT 'CVE-2024-' || (100000 + g), 'Blocked', 'global', 0
    FROM generate_series(1, $N) g"
t1=$(now)
"${PRODUCER[@]}" --once 2>"$WORK/drain.log"
t2=$(now)
left=$(psql "$DSN" -Atc "SELECT count(*) FROM sysrepl.outbox")
[[ $left == 0 ]] || { echo "outbox not empty: $left" >&2; exit 1; }
stopped=$(grep 'msg=stopped' "$WORK/drain.log" | tail -1)
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$stopped"; }

raw=$("$BUILD/bench/bench_produce_raw" "$KAFKA" "$PREFIX.raw" "$N")

# Latency: a running producer, a paced writer.
"${PRODUCER[@]}" --ack-log "$WORK/acks.txt" 2>"$WORK/latency.log" &
PID=$!
sleep 3
"$BUILD/bench/bench_producer_writer" "$DSN" 1000 10 >"$WORK/commits.txt"
# Delivered: the outbox is empty and (WAL capture) the slot confirmed the
# WAL written before this point.
lsn=$(psql "$DSN" -Atc "SELECT pg_current_wal_lsn()")
for _ in $(seq 100); do
    [[ $(psql "$DSN" -Atc "SELECT sysrepl.undelivered('$lsn')") == 0 ]] && break
    sleep 0.1
done
kill -TERM "$PID"
wait "$PID" || true
PID=
latency=$(python3 - "$WORK/commits.txt" "$WORK/acks.txt" <<'PY'
import sys
commits = dict(l.split() for l in open(sys.argv[1]))
lat = sorted((int(a) - int(commits[v])) / 1000.0
             for v, a in (l.split() for l in open(sys.argv[2])) if v in commits)
if not lat:
    print("latency_n=0"); sys.exit()
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print("latency_n=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f missing=%d"
      % (len(lat), p(0.5), p(0.9), p(0.99), lat[-1], len(commits) - len(lat)))
PY
)

drain_s=$(echo "$t2 - $t1" | bc -l)
rate=$(echo "$N / $drain_s" | bc -l)
raw_rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$raw")
printf 'commit of %d changes: %.2f s\n' "$N" "$(echo "$t1 - $t0" | bc -l)"
printf 'producer: %d changes drained (commit -> acknowledged -> outbox row deleted, or WAL position confirmed) in %.2f s = %.0f changes/s\n' \
    "$N" "$drain_s" "$rate"
printf '  split (ms): main thread: build=%s encode=%s produce=%s idle=%s; overlapping it: outbox reads on the server (sent -> taken)=%s, deletes on the second session=%s\n' \
    "$(field read_ms)" "$(field encode_ms)" "$(field produce_ms)" "$(field wait_ms)" "$(field query_ms)" "$(field delete_ms)"
echo "raw librdkafka (same bytes, same settings): $raw"
printf 'producer / raw = %.2f\n' "$(echo "$rate / $raw_rate" | bc -l)"
echo "latency at 1000 changes/s, commit -> delivery report: $latency"
