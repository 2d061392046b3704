# shellcheck shell=bash
# deploy/local/topology.sh - a hub and its spokes on the local PostgreSQL and
# Kafka (deploy/local/postgres, deploy/local/kafka): stores, configs and the
# sysrepl daemons as background processes. Sourced (after lib.sh) by
# deploy/local/demo-run and tests/e2e/test_chaos.sh; never run.
#
# Everything a topology makes lives in $TOPO_DIR: <name>.conf, <name>.log,
# <name>.pid. Databases are <TOPO_DB_PREFIX>_<instance>. Daemons are started
# with setsid, so a Ctrl-C in the terminal reaches only the script, whose
# trap stops them in order (topo_stop_all).
#
# Settings (set before calling topo_setup):
#   TOPO_DIR        folder for configs, logs, pids (required)
#   TOPO_DB_PREFIX  database name prefix                  (sysrepl_topo)
#   TOPO_TOPIC      topic.prefix of every instance         (sysrepl)
#   SRL_BUILD_DIR   the build with the programs            (<repo>/build)

TOPO_DB_PREFIX="${TOPO_DB_PREFIX:-sysrepl_topo}"
TOPO_TOPIC="${TOPO_TOPIC:-sysrepl}"
TOPO_NAMES=() # daemons started, in start order

# topo_setup: checks the programs exist, creates $TOPO_DIR.
topo_setup() {
    : "${TOPO_DIR:?TOPO_DIR is not set}"
    SRL_BUILD_DIR="${SRL_BUILD_DIR:-$SRL_ROOT/build}"
    SYSREPL="$SRL_BUILD_DIR/cli/sysrepl"
    PRODUCER="$SRL_BUILD_DIR/producer/sysrepl-producer"
    CONSUMER="$SRL_BUILD_DIR/consumer/sysrepl-consumer"
    BRIDGE="$SRL_BUILD_DIR/bridge/sysrepl-bridge"
    local p
    for p in "$SYSREPL" "$PRODUCER" "$CONSUMER" "$BRIDGE"; do
        [[ -x $p ]] || srl_die "$p is not built (cmake -S $SRL_ROOT -B $SRL_BUILD_DIR -G Ninja && ninja -C $SRL_BUILD_DIR), or set SRL_BUILD_DIR"
    done
    mkdir -p "$TOPO_DIR"
    TOPO_PSQL=(env PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$SRL_PG_PORT" -U postgres)
}

topo_dsn() { printf 'host=127.0.0.1 port=%s user=postgres dbname=%s_%s' "$SRL_PG_PORT" "$TOPO_DB_PREFIX" "$1"; }
topo_db() { printf '%s_%s' "$TOPO_DB_PREFIX" "$1"; }

# topo_sql INSTANCE SQL: runs SQL in the instance's store, prints the rows
# unaligned (one value per line for one column).
topo_sql() { "${TOPO_PSQL[@]}" -At -d "$(topo_db "$1")" -c "$2"; }

# topo_store INSTANCE ROLE: a new, empty store: drops the database if it
# exists, creates it, writes $TOPO_DIR/<instance>-cli.conf (the admin CLI's
# config) and runs `sysrepl init`.
topo_store() {
    local inst=$1 role=$2 db
    db=$(topo_db "$inst")
    "${TOPO_PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" \
        -c "CREATE DATABASE \"$db\"" >/dev/null
    topo_conf "$inst-cli" instance.id="$inst" role="$role" store.dsn="\"$(topo_dsn "$inst")\"" \
        topic.prefix="$TOPO_TOPIC"
    "$SYSREPL" -c "$TOPO_DIR/$inst-cli.conf" init >>"$TOPO_DIR/cli.log" 2>&1 ||
        { tail -n 5 "$TOPO_DIR/cli.log" >&2; srl_die "sysrepl init of $inst failed; see $TOPO_DIR/cli.log"; }
}

# topo_stores INSTANCE...: topo_store for each, role hub for "hub", spoke
# for the others.
topo_stores() {
    local inst
    for inst in "$@"; do
        if [[ $inst == hub ]]; then topo_store "$inst" hub; else topo_store "$inst" spoke; fi
    done
}

# topo_conf NAME KEY=VALUE...: writes $TOPO_DIR/NAME.conf.
topo_conf() {
    local name=$1 kv
    shift
    {
        echo "# $name: written by deploy/local/topology.sh"
        for kv in "$@"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"; done
    } >"$TOPO_DIR/$name.conf"
}

# topo_cli INSTANCE ARGS...: the admin CLI on an instance's store.
topo_cli() {
    local inst=$1
    shift
    "$SYSREPL" -c "$TOPO_DIR/$inst-cli.conf" "$@"
}

# topo_start NAME PROGRAM ARGS...: starts a daemon in its own session,
# appending to $TOPO_DIR/NAME.log; its pid goes to NAME.pid.
topo_start() {
    local name=$1
    shift
    if topo_alive "$name"; then
        srl_log "$name is already running (pid $(<"$TOPO_DIR/$name.pid"))"
        return
    fi
    echo "--- $(date -u +%FT%TZ) start: $*" >>"$TOPO_DIR/$name.log"
    setsid "$@" >>"$TOPO_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$TOPO_DIR/$name.pid"
    disown # no "Killed" job notices; the pid file is how we track it
    [[ " ${TOPO_NAMES[*]} " == *" $name "* ]] || TOPO_NAMES+=("$name")
}

topo_alive() { srl_pid_alive "$TOPO_DIR/$1.pid" && ! topo_gone "$(<"$TOPO_DIR/$1.pid")"; }

# topo_check_alive NAME...: fails naming the first daemon that died, with
# the tail of its log.
topo_check_alive() {
    local name
    for name in "$@"; do
        if ! topo_alive "$name"; then
            tail -n 15 "$TOPO_DIR/$name.log" >&2 || true
            srl_die "$name is not running; see $TOPO_DIR/$name.log"
        fi
    done
}

# topo_stop NAME [TIMEOUT]: SIGTERM, wait up to TIMEOUT s (20), then
# SIGKILL. Returns 0 when it exited on its own.
topo_stop() {
    local name=$1 timeout=${2:-20} pid
    topo_alive "$name" || return 0
    pid=$(<"$TOPO_DIR/$name.pid")
    kill -TERM "$pid" 2>/dev/null || true
    if srl_wait_until "$timeout" topo_gone "$pid"; then
        rm -f "$TOPO_DIR/$name.pid"
        return 0
    fi
    srl_log "$name (pid $pid) did not stop within $timeout s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    srl_wait_until 10 topo_gone "$pid" || true
    rm -f "$TOPO_DIR/$name.pid"
    return 1
}

# topo_kill9 NAME: kill -9, as a crash would.
topo_kill9() {
    local name=$1 pid
    topo_alive "$name" || return 0
    pid=$(<"$TOPO_DIR/$name.pid")
    kill -KILL "$pid" 2>/dev/null || true
    srl_wait_until 10 topo_gone "$pid" || true
    echo "--- $(date -u +%FT%TZ) killed with SIGKILL" >>"$TOPO_DIR/$name.log"
    rm -f "$TOPO_DIR/$name.pid"
}

# A process is gone when kill -0 fails or it is a zombie of ours.
topo_gone() {
    kill -0 "$1" 2>/dev/null || return 0
    [[ $(ps -o stat= -p "$1" 2>/dev/null) == Z* ]]
}

# topo_stop_all: stops every daemon started, the last started first.
topo_stop_all() {
    local i
    for ((i = ${#TOPO_NAMES[@]} - 1; i >= 0; i--)); do
        topo_stop "${TOPO_NAMES[i]}" || true
    done
}

# topo_sanitizer_reports: fails, printing them, when a daemon's log holds
# an AddressSanitizer, LeakSanitizer or UBSan report (a build with
# -DSRL_SANITIZE=ON writes them to stderr, which is the log). Call it after
# topo_stop_all: leaks are reported when a program exits.
topo_sanitizer_reports() {
    local log found=0
    for log in "$TOPO_DIR"/*.log; do
        [[ -f $log ]] || continue
        if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$log"; then
            srl_log "sanitizer report in $log:"
            grep -A 40 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -n 80 >&2
            found=1
        fi
    done
    return "$found"
}

# topo_export INSTANCE FILE: the store's content, canonically ordered.
topo_export() {
    topo_cli "$1" export >"$2.tmp" 2>>"$TOPO_DIR/cli.log" || return 1
    LC_ALL=C sort "$2.tmp" >"$2" && rm -f "$2.tmp"
}

# topo_same HUB SPOKE: true when the two exports are identical; leaves the
# exports in $TOPO_DIR/export-<instance>.jsonl.
topo_same() {
    topo_export "$1" "$TOPO_DIR/export-$1.jsonl" && topo_export "$2" "$TOPO_DIR/export-$2.jsonl" &&
        cmp -s "$TOPO_DIR/export-$1.jsonl" "$TOPO_DIR/export-$2.jsonl"
}

# topo_outbox_empty INSTANCE: nothing waits for the producer: the outbox is
# empty and, on a hub that captures through its WAL, the slot confirms
# everything committed before the call within 5 s (the producer reports
# its position at least once a second when idle).
topo_outbox_empty() {
    local lsn
    [[ $(topo_sql "$1" "SELECT count(*) FROM sysrepl.outbox") == 0 ]] || return 1
    lsn=$(topo_sql "$1" "SELECT pg_current_wal_lsn()")
    srl_wait_until 5 topo_delivered "$1" "$lsn"
}

# topo_delivered INSTANCE LSN: everything committed before LSN is delivered
# (sysrepl.undelivered, migration 007).
topo_delivered() { [[ $(topo_sql "$1" "SELECT sysrepl.undelivered('$2')") == 0 ]]; }

# topo_dead_letters INSTANCE: how many records were dead-lettered.
topo_dead_letters() { topo_sql "$1" "SELECT count(*) FROM sysrepl.dead_letters"; }

# topo_counts INSTANCE: "types=N assessments=N policies=N".
topo_counts() {
    topo_sql "$1" "SELECT 'types=' || (SELECT count(*) FROM assessment_types) ||
                   ' assessments=' || (SELECT count(*) FROM vulnerability_assessments) ||
                   ' policies=' || (SELECT count(*) FROM policies)"
}

# topo_converged HUB SPOKE...: the hub's outbox is empty and every spoke's
# export equals the hub's.
topo_converged() {
    local hub=$1 spoke
    shift
    topo_outbox_empty "$hub" || return 1
    for spoke in "$@"; do topo_same "$hub" "$spoke" || return 1; done
}

# topo_wait_converged SECONDS HUB SPOKE...: waits; on timeout shows the
# first differences and fails.
topo_wait_converged() {
    local timeout=$1 hub=$2 spoke
    shift 2
    if srl_wait_until "$timeout" topo_converged "$hub" "$@"; then
        return 0
    fi
    srl_log "not converged within $timeout s: hub outbox $(topo_sql "$hub" 'SELECT count(*) FROM sysrepl.outbox') rows"
    for spoke in "$@"; do
        topo_same "$hub" "$spoke" && continue
        srl_log "$spoke differs from $hub ($(topo_counts "$spoke") vs $(topo_counts "$hub")); first differences:"
        diff "$TOPO_DIR/export-$hub.jsonl" "$TOPO_DIR/export-$spoke.jsonl" | head -n 6 | cut -c1-200 >&2 || true
    done
    return 1
}
