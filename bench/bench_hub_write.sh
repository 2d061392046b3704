#!/usr/bin/env bash
# bench/bench_hub_write.sh - what the hub pays for being replicated (issue 15),
# measured side by side in one sitting, through the public surface only
# (`sysrepl init`, the content tables, sysrepl-producer, sysrepl-consumer),
# so it measures whatever change capture the tree has.
#
#   SRL_BUILD_DIR=build bench/bench_hub_write.sh [--seconds 15] [--clients 4]
#       [--rate 1000] [--rounds 2] [--keys 1000000] [--bulk-rows 200000]
#       [--latency-seconds 20] [--out DIR] [--skip-throughput] [--skip-bulk]
#       [--skip-latency] [--producer-opt KEY=VALUE]...
#
#   1. throughput: two hub stores made by `sysrepl init --role hub`, one with
#      capture off (capture_off below); pgbench (-n -c C -j 2 -T S) with
#      bench/pgbench/assessment_upsert.sql (one single-row INSERT .. ON
#      CONFLICT DO UPDATE per transaction, random keys). Rows, in this order,
#      repeated --rounds times: capture off; capture on, no producer; capture
#      on with sysrepl-producer draining to Kafka. tps and ratio to capture off.
#   2. bulk: on two fresh stores (capture off / on), a 200,000-row INSERT ..
#      SELECT generate_series and a 100,000-row UPDATE, each one statement
#      (psql \timing: statement and commit); ratio on / off. --rounds times.
#   3. latency: a hub with sysrepl-producer, a spoke (`sysrepl init --role
#      spoke`) with sysrepl-consumer; pgbench at --rate transactions/s (-c C
#      -T --latency-seconds) on the hub. Hub time: clock_timestamp() in the
#      statement (the row's comment); spoke time: clock_timestamp() in a
#      bench-only row trigger on the spoke's vulnerability_assessments, when
#      the consumer applies the row. p50/p90/p99/max, and the split at the
#      Kafka ack (the producer's --ack-log).
#
# Prints a markdown summary on stdout (also DIR/summary.md); raw logs go to
# DIR (default bench/results/hub_write-<UTC time>). Needs the services of
# deploy/local (SRL_TEST_PG_DSN, SRL_TEST_KAFKA or their defaults), pgbench,
# psql, jq, and a build with sysrepl, sysrepl-producer, sysrepl-consumer.
# Databases srl_bench_hub_<pid>_* are dropped at exit (SRL_BENCH_KEEP=1 keeps
# them); the topics (prefix bench-hub-<pid>-<time>) stay, like the other
# benches'.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SRL_BUILD_DIR:-$ROOT/build}
[[ $BUILD == /* ]] || BUILD=$PWD/$BUILD
PG_BASE=${SRL_TEST_PG_DSN:-host=127.0.0.1 port=55432 user=postgres dbname=postgres}
KAFKA=${SRL_TEST_KAFKA:-127.0.0.1:59092}
SCRIPT=$ROOT/bench/pgbench/assessment_upsert.sql

SECONDS_RUN=15 CLIENTS=4 RATE=1000 ROUNDS=2 KEYS=1000000 BULK_ROWS=200000 LAT_SECONDS=20
OUT="" DO_TPS=1 DO_BULK=1 DO_LAT=1 POPTS=()
usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}
num() { # num OPTION VALUE: VALUE must be a positive integer
    [[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench_hub_write: $1: expected a positive integer, got \"$2\"" >&2; exit 2; }
    echo "$2"
}
while (($#)); do
    case $1 in
    --seconds) SECONDS_RUN=$(num "$1" "${2-}"); shift ;;
    --clients) CLIENTS=$(num "$1" "${2-}"); shift ;;
    --rate) RATE=$(num "$1" "${2-}"); shift ;;
    --rounds) ROUNDS=$(num "$1" "${2-}"); shift ;;
    --keys) KEYS=$(num "$1" "${2-}"); shift ;;
    --bulk-rows) BULK_ROWS=$(num "$1" "${2-}"); shift ;;
    --latency-seconds) LAT_SECONDS=$(num "$1" "${2-}"); shift ;;
    --out) OUT=${2:?--out: expected a directory}; shift ;;
    --skip-throughput) DO_TPS=0 ;;
    --skip-bulk) DO_BULK=0 ;;
    --skip-latency) DO_LAT=0 ;;
    --producer-opt) POPTS+=(-X "${2:?--producer-opt: expected KEY=VALUE}"); shift ;;
    -h | --help) usage ;;
    *) echo "bench_hub_write: unknown argument \"$1\" (see --help)" >&2; exit 2 ;;
    esac
    shift
done
((KEYS <= 8999999)) || { echo "bench_hub_write: --keys: at most 8999999 (7-digit CVE numbers), got $KEYS" >&2; exit 2; }
((BULK_ROWS <= 8999999)) || { echo "bench_hub_write: --bulk-rows: at most 8999999, got $BULK_ROWS" >&2; exit 2; }
for tool in pgbench psql jq; do
    command -v "$tool" >/dev/null || { echo "bench_hub_write: $tool not found (deploy/local/install-deps)" >&2; exit 1; }
done
SYSREPL=$BUILD/cli/sysrepl
PRODUCER_BIN=$BUILD/producer/sysrepl-producer
CONSUMER_BIN=$BUILD/consumer/sysrepl-consumer
for bin in "$SYSREPL" "$PRODUCER_BIN" "$CONSUMER_BIN"; do
    [[ -x $bin ]] || { echo "bench_hub_write: $bin not built (SRL_BUILD_DIR=$BUILD)" >&2; exit 1; }
done
OUT=${OUT:-$ROOT/bench/results/hub_write-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

TAG=srl_bench_hub_$$
PREFIX=bench-hub-$$-$(date +%s)
DBS=()
PIDS=()
cleanup() {
    local pid db
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ ${SRL_BENCH_KEEP:-0} != 1 ]]; then
        for db in "${DBS[@]}"; do
            psql "$PG_BASE" -qXc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
        done
    fi
}
trap cleanup EXIT
trap 'log "failed at line $LINENO (exit $?)"' ERR
log() { echo "bench_hub_write: $*" >&2; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
dsn_of() { echo "${PG_BASE/dbname=postgres/} dbname=$1"; }
sql() { psql "$1" -qXAt -v ON_ERROR_STOP=1 -c "$2"; }

# ---------------------------------------------------------------------------
# The three things that depend on how the tree captures changes. Everything
# else goes through the public surface.

# capture_off DSN: make a hub store write its content tables without
# capture, the reference point ("the sysrepl triggers disabled"). Today
# capture (stamp, outbox rows, NOTIFY) is the content tables' triggers; if
# it stops being triggers (logical decoding), change this one function.
capture_off() {
    sql "$1" "ALTER TABLE assessment_types DISABLE TRIGGER USER;
              ALTER TABLE vulnerability_assessments DISABLE TRIGGER USER;
              ALTER TABLE policies DISABLE TRIGGER USER;
              SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
              WHERE database = current_database()" >/dev/null
}

# hub_pending DSN: changes captured and not yet delivered, as `sysrepl status
# --json` reports them (outbox.depth).
# With WAL capture there is no row count: pending is the outbox plus, while
# the store's slot has not confirmed the WAL written before the call (it
# does within about a second once idle), 1 (sysrepl.undelivered).
hub_pending() {
    local n lsn i
    n=$("$SYSREPL" status --json --dsn "$1" | jq -r '.outbox.depth')
    [[ $n == 0 ]] || { echo "$n"; return; }
    lsn=$(psql "$1" -qXtAc "SELECT pg_current_wal_lsn()")
    for ((i = 0; i < 30; i++)); do
        n=$(psql "$1" -qXtAc "SELECT sysrepl.undelivered('$lsn')")
        ((n == 0)) && break
        sleep 0.1
    done
    echo "$n"
}

# new_store NAME ROLE [off]: a database made by `sysrepl init --role ROLE`
# (capture off with "off"); its DSN in $STORE_DSN (not printed: the
# database list of the exit trap must be this shell's).
new_store() {
    local db=${TAG}_$1
    STORE_DSN=$(dsn_of "$db")
    psql "$PG_BASE" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
    DBS+=("$db")
    "$SYSREPL" init --dsn "$STORE_DSN" --instance-id "bench-$1" --role "$2" >/dev/null
    if [[ ${3:-} == off ]]; then capture_off "$STORE_DSN"; fi
}
# ---------------------------------------------------------------------------

# producer_args NAME DSN: sysrepl-producer's arguments for a store (its
# own topic prefix), in PARGS.
producer_args() {
    PARGS=(-X "instance.id=bench-$1" -X "store.dsn=$2" -X "topic.prefix=$PREFIX-$1"
        -X "kafka.bootstrap.servers=$KAFKA" -X stats.interval_ms=5000 ${POPTS[@]+"${POPTS[@]}"})
}
# producer_once LOG: sysrepl-producer --once with PARGS (the first start:
# creates the topics, publishes the seed); stops the bench if it fails.
producer_once() {
    "$PRODUCER_BIN" "${PARGS[@]}" --once >"$1" 2>&1 ||
        { log "sysrepl-producer --once failed, see $1"; tail -5 "$1" >&2; exit 1; }
}
# start_daemon LOG BIN ARGS...: in the background, output to LOG; its pid
# in PIDS (stopped by the exit trap) and in $LAST_PID.
start_daemon() {
    local logf=$1
    shift
    "$@" >"$logf" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}
stop_daemon() { # stop_daemon PID
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local keep=() pid
    for pid in "${PIDS[@]}"; do [[ $pid == "$1" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}
# wait_drained DSN PID LIMIT_S: until hub_pending is 0; fails when the
# producer died or LIMIT_S passed.
wait_drained() {
    local i n
    for ((i = 0; i < $3 * 10; i++)); do
        n=$(hub_pending "$1")
        [[ $n == 0 ]] && return 0
        kill -0 "$2" 2>/dev/null || { log "producer exited with $n changes pending"; return 1; }
        sleep 0.1
    done
    log "still $n changes pending after $3 s"
    return 1
}

# seed DSN: the type the script names and one assessment; on a capture-on
# hub, sysrepl-producer --once then publishes them (its first start, so the
# topics exist and later starts do not snapshot).
seed() {
    sql "$1" "INSERT INTO assessment_types (name, severity_class) VALUES ('Blocked', 'severe');
              INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type,
                  scope_kind, assessed_at) VALUES ('CVE-2024-0001', 'Blocked', 'global', 0)"
}

# pgbench_run DSN LOG [more pgbench args]: after a CHECKPOINT, pgbench with
# the script; appends its output to LOG, prints the tps.
pgbench_run() {
    local dsn=$1 logf=$2
    shift 2
    sql "$dsn" "CHECKPOINT"
    echo "load before: $(load)" >>"$logf"
    pgbench -n -c "$CLIENTS" -j 2 -f "$SCRIPT" -D "keys=$KEYS" "$@" "$dsn" >>"$logf" 2>&1 ||
        { log "pgbench failed, see $logf"; tail -5 "$logf" >&2; return 1; }
    echo "load after: $(load)" >>"$logf"
    sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$logf" | head -1
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
fmt0() { awk -v a="$1" 'BEGIN { printf "%.0f", a }'; }

{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(nproc) cores, $(awk '/MemTotal/ {print int($2/1024/1024) " GiB"}' /proc/meminfo)"
    echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "load: $(load)"
    echo "build: $BUILD"
    echo "args: seconds=$SECONDS_RUN clients=$CLIENTS rate=$RATE rounds=$ROUNDS keys=$KEYS bulk_rows=$BULK_ROWS latency_seconds=$LAT_SECONDS"
    echo "pgbench: $(pgbench --version)"
    echo "server: $(sql "$PG_BASE" "SELECT version()")"
    sql "$PG_BASE" "SELECT name || ' = ' || setting FROM pg_settings WHERE name IN
        ('fsync', 'synchronous_commit', 'shared_buffers', 'wal_level', 'max_wal_size',
         'checkpoint_timeout', 'full_page_writes', 'wal_sync_method')"
} >"$OUT/machine.txt"
SUMMARY=$OUT/summary.md
{
    echo "# Hub write cost of replication (issue 15), $(date -u +%FT%TZ)"
    echo
    echo "\`bench/bench_hub_write.sh --seconds $SECONDS_RUN --clients $CLIENTS --rate $RATE --rounds $ROUNDS\`," \
        "git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, load at start $(load)"
} >"$SUMMARY"

# ---------------------------------------------------------------------------
# 1. Single-row transactions: capture off / on / on + producer.
if ((DO_TPS)); then
    log "throughput: 2 stores, $ROUNDS rounds of 3 x ${SECONDS_RUN} s (load $(load))"
    new_store tps_off hub off
    OFF=$STORE_DSN
    new_store tps_on hub
    ON=$STORE_DSN
    seed "$OFF"
    seed "$ON"
    producer_args tps_on "$ON"
    producer_once "$OUT/producer-setup.log"
    declare -A TPS=() LOAD=()
    CATCHUP=()
    for ((r = 1; r <= ROUNDS; r++)); do
        TPS[off,$r]=$(pgbench_run "$OFF" "$OUT/pgbench-off-$r.log" -T "$SECONDS_RUN")
        LOAD[off,$r]=$(cut -d' ' -f1 /proc/loadavg)
        log "round $r: capture off: ${TPS[off,$r]} tps (load $(load))"
        TPS[on,$r]=$(pgbench_run "$ON" "$OUT/pgbench-on-$r.log" -T "$SECONDS_RUN")
        LOAD[on,$r]=$(cut -d' ' -f1 /proc/loadavg)
        log "round $r: capture on, no producer: ${TPS[on,$r]} tps (load $(load))"
        # The producer first drains what the previous row left (untimed).
        start_daemon "$OUT/producer-tps-$r.log" "$PRODUCER_BIN" "${PARGS[@]}"
        ppid=$LAST_PID
        t0=$SECONDS
        wait_drained "$ON" "$ppid" 300
        echo "producer: backlog of the previous row drained in $((SECONDS - t0)) s before the run" >"$OUT/pgbench-on-producer-$r.log"
        TPS[prod,$r]=$(pgbench_run "$ON" "$OUT/pgbench-on-producer-$r.log" -T "$SECONDS_RUN")
        LOAD[prod,$r]=$(cut -d' ' -f1 /proc/loadavg)
        t0=$SECONDS
        wait_drained "$ON" "$ppid" 300
        CATCHUP[r]=$((SECONDS - t0))
        echo "producer: caught up $((SECONDS - t0)) s after the run (load $(load))" >>"$OUT/pgbench-on-producer-$r.log"
        stop_daemon "$ppid"
        log "round $r: capture on + producer: ${TPS[prod,$r]} tps (load $(load))"
    done
    {
        echo
        echo "## Single-row transactions (pgbench -n -c $CLIENTS -j 2 -T $SECONDS_RUN, bench/pgbench/assessment_upsert.sql)"
        echo
        echo "| hub | $(for ((r = 1; r <= ROUNDS; r++)); do printf 'round %d tps (load) | ' "$r"; done)ratio to capture off, per round |"
        echo "|---|$(for ((r = 1; r <= ROUNDS; r++)); do printf -- '---|'; done)---|"
        for row in off on prod; do
            case $row in
            off) name="capture off" ;;
            on) name="capture on, no producer" ;;
            prod) name="capture on, sysrepl-producer draining to Kafka" ;;
            esac
            cells="" ratios=""
            for ((r = 1; r <= ROUNDS; r++)); do
                cells+="$(fmt0 "${TPS[$row,$r]}") (${LOAD[$row,$r]}) | "
                ratios+="${ratios:+ / }$(ratio "${TPS[$row,$r]}" "${TPS[off,$r]}")"
            done
            echo "| $name | $cells$ratios |"
        done
        echo
        catchup=""
        for ((r = 1; r <= ROUNDS; r++)); do catchup+="${catchup:+ / }${CATCHUP[$r]} s"; done
        echo "(load): the 1-minute load average at the end of the run. Goal: capture on + producer >= 0.80x capture off. The producer caught up" \
            "$catchup after the end of the run, round by round (0 s: it kept up)."
    } >>"$SUMMARY"
fi

# ---------------------------------------------------------------------------
# 2. Bulk statements, fresh stores each round.
if ((DO_BULK)); then
    half=$((BULK_ROWS / 2))
    log "bulk: $BULK_ROWS-row INSERT, $half-row UPDATE, $ROUNDS rounds (load $(load))"
    bulk_run() { # bulk_run DSN LOG: prints "insert_ms update_ms"
        local logf=$2
        psql "$1" -X -v ON_ERROR_STOP=1 >"$logf" 2>&1 <<SQL
CHECKPOINT;
\\timing on
INSERT INTO vulnerability_assessments (vulnerability_id, assessment_type, scope_kind, assessed_at, comment)
    SELECT 'CVE-2025-' || (1000000 + g), 'Blocked', 'global', 1700000000000, 'bulk'
    FROM generate_series(1, $BULK_ROWS) g;
\\timing off
CHECKPOINT;
\\timing on
UPDATE vulnerability_assessments SET comment = 'bulk update', assessed_at = 1700000000001
    WHERE vulnerability_id BETWEEN 'CVE-2025-1000001' AND 'CVE-2025-$((1000000 + half))';
\\timing off
SQL
        if ! grep -q "^INSERT 0 $BULK_ROWS\$" "$logf" || ! grep -q "^UPDATE $half\$" "$logf"; then
            log "bulk: unexpected row counts, see $logf"
            return 1
        fi
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$logf" | tr '\n' ' '
    }
    declare -A BULK=()
    for ((r = 1; r <= ROUNDS; r++)); do
        for mode in off on; do
            new_store "bulk_${mode}_$r" hub "$mode"
            dsn=$STORE_DSN
            seed "$dsn"
            BULK[$mode,$r]=$(bulk_run "$dsn" "$OUT/bulk-$mode-$r.log")
            log "round $r: capture $mode: insert / update ms: ${BULK[$mode,$r]} (load $(load))"
            psql "$PG_BASE" -qXc "DROP DATABASE ${TAG}_bulk_${mode}_$r" >/dev/null
        done
    done
    {
        echo
        printf '%s\n' '## Bulk statements (one statement each, psql \timing, fresh stores, no producer)'
        echo
        echo "| round | $BULK_ROWS-row INSERT off / on (ms) | ratio | $half-row UPDATE off / on (ms) | ratio |"
        echo "|---|---|---|---|---|"
        for ((r = 1; r <= ROUNDS; r++)); do
            read -r i_off u_off <<<"${BULK[off,$r]}"
            read -r i_on u_on <<<"${BULK[on,$r]}"
            echo "| $r | $(fmt0 "$i_off") / $(fmt0 "$i_on") | $(ratio "$i_on" "$i_off") | $(fmt0 "$u_off") / $(fmt0 "$u_on") | $(ratio "$u_on" "$u_off") |"
        done
        echo
        echo "Goal: a $BULK_ROWS-row statement with capture <= 1.2x without."
    } >>"$SUMMARY"
fi

# ---------------------------------------------------------------------------
# 3. Latency: hub commit -> spoke apply at --rate single-row transactions/s.
if ((DO_LAT)); then
    log "latency: $RATE tx/s from $CLIENTS clients for $LAT_SECONDS s (load $(load))"
    new_store lat_hub hub
    HUB=$STORE_DSN
    new_store lat_spoke spoke
    SPOKE=$STORE_DSN
    # Bench-only: the spoke's commit time of each row. The pgbench script puts
    # the hub's clock in comment; rows without it (the seed) are skipped. A
    # deferred constraint trigger runs as the consumer's transaction commits
    # (after its rows, offsets and log): only the commit record's flush is
    # left out. ENABLE ALWAYS: it fires whatever session_replication_role.
    sql "$SPOKE" "CREATE TABLE bench_arrival (key text, version bigint,
                      sent double precision, at double precision);
        CREATE FUNCTION bench_arrival() RETURNS trigger LANGUAGE plpgsql AS \$\$
        BEGIN
            IF NEW.comment ~ '^[0-9]+\.[0-9]+\$' THEN
                INSERT INTO bench_arrival VALUES (NEW.key, NEW.version,
                    NEW.comment::double precision, extract(epoch FROM clock_timestamp()));
            END IF;
            RETURN NULL;
        END \$\$;
        CREATE CONSTRAINT TRIGGER bench_arrival AFTER INSERT OR UPDATE ON vulnerability_assessments
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_arrival();
        ALTER TABLE vulnerability_assessments ENABLE ALWAYS TRIGGER bench_arrival"
    seed "$HUB"
    producer_args lat_hub "$HUB"
    producer_once "$OUT/producer-lat-setup.log"
    start_daemon "$OUT/producer-lat.log" "$PRODUCER_BIN" "${PARGS[@]}" --ack-log "$OUT/acks.txt"
    ppid=$LAST_PID
    start_daemon "$OUT/consumer-lat.log" "$CONSUMER_BIN" -X instance.id=bench-lat_spoke \
        -X "store.dsn=$SPOKE" -X "topic.prefix=$PREFIX-lat_hub" -X "kafka.bootstrap.servers=$KAFKA" \
        -X stats.interval_ms=5000
    cpid=$LAST_PID
    for ((i = 0; i < 600; i++)); do
        [[ $(sql "$SPOKE" "SELECT count(*) FROM vulnerability_assessments") == 1 ]] && break
        kill -0 "$cpid" 2>/dev/null || { log "consumer exited, see $OUT/consumer-lat.log"; exit 1; }
        sleep 0.1
    done
    [[ $(sql "$SPOKE" "SELECT count(*) FROM vulnerability_assessments") == 1 ]] ||
        { log "the spoke did not get the seed row in 60 s, see $OUT/consumer-lat.log"; exit 1; }
    pgbench_run "$HUB" "$OUT/pgbench-latency.log" -R "$RATE" -T "$LAT_SECONDS" >/dev/null
    lat_tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/pgbench-latency.log" | head -1)
    # Until the hub's last change (highest version) has arrived on the spoke.
    last=$(sql "$HUB" "SELECT max(version) FROM vulnerability_assessments")
    for ((i = 0; i < 1200; i++)); do
        [[ $(sql "$SPOKE" "SELECT count(*) FROM bench_arrival WHERE version = $last") == 1 ]] && break
        sleep 0.1
    done
    [[ $(sql "$SPOKE" "SELECT count(*) FROM bench_arrival WHERE version = $last") == 1 ]] ||
        log "latency: version $last did not arrive within 120 s; counting what did"
    stop_daemon "$ppid"
    stop_daemon "$cpid"
    sql "$SPOKE" "CREATE TABLE bench_ack (version bigint, us bigint)"
    sql "$SPOKE" "\\copy bench_ack FROM '$OUT/acks.txt' WITH (DELIMITER ' ')"
    sql "$SPOKE" "SELECT key, version, sent, at FROM bench_arrival ORDER BY sent" >"$OUT/arrivals.txt"
    txs=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$OUT/pgbench-latency.log")
    stats=$(sql "$SPOKE" "SELECT count(*),
            round((percentile_cont(0.5) WITHIN GROUP (ORDER BY (at - sent) * 1000))::numeric, 1),
            round((percentile_cont(0.9) WITHIN GROUP (ORDER BY (at - sent) * 1000))::numeric, 1),
            round((percentile_cont(0.99) WITHIN GROUP (ORDER BY (at - sent) * 1000))::numeric, 1),
            round(max((at - sent) * 1000)::numeric, 1)
        FROM bench_arrival")
    split=$(sql "$SPOKE" "SELECT count(*),
            round((percentile_cont(0.5) WITHIN GROUP (ORDER BY us / 1e3 - sent * 1e3))::numeric, 1),
            round((percentile_cont(0.99) WITHIN GROUP (ORDER BY us / 1e3 - sent * 1e3))::numeric, 1),
            round((percentile_cont(0.5) WITHIN GROUP (ORDER BY at * 1e3 - us / 1e3))::numeric, 1),
            round((percentile_cont(0.99) WITHIN GROUP (ORDER BY at * 1e3 - us / 1e3))::numeric, 1)
        FROM bench_arrival JOIN bench_ack USING (version)")
    IFS='|' read -r n p50 p90 p99 pmax <<<"$stats"
    IFS='|' read -r ns a50 a99 c50 c99 <<<"$split"
    lag=$(sed -n 's/^rate limit schedule lag: \(.*\)$/\1/p' "$OUT/pgbench-latency.log")
    log "latency: $lat_tps tps, arrived $n, p50 $p50 p90 $p90 p99 $p99 max $pmax ms"
    {
        echo
        echo "## Latency, hub statement -> spoke commit (pgbench -R $RATE -c $CLIENTS -j 2 -T $LAT_SECONDS)"
        echo
        echo "| achieved tps | transactions / arrivals | p50 | p90 | p99 | max | hub -> Kafka ack p50 / p99 | ack -> spoke commit p50 / p99 |"
        echo "|---|---|---|---|---|---|---|---|"
        echo "| $(fmt0 "$lat_tps") | $txs / $n | $p50 ms | $p90 ms | $p99 ms | $pmax ms | $a50 / $a99 ms | $c50 / $c99 ms ($ns joined) |"
        echo
        echo "pgbench schedule lag: ${lag:-n/a}. Goal: $RATE/s sustained, p50 <= 10 ms, p99 <= 50 ms." \
            "Arrivals: versions committed on the spoke (a key changed again before the producer read it is published once)."
    } >>"$SUMMARY"
fi

echo >>"$SUMMARY"
echo "Load at end: $(load). Raw logs: pgbench-*.log, bulk-*.log, producer-*.log, consumer-lat.log, acks.txt, arrivals.txt, machine.txt." >>"$SUMMARY"
cat "$SUMMARY"
