# shellcheck shell=bash
# tests/e2e/chaos_lib.sh - shared by the chaos tests (sourced, not a test:
# only tests/e2e/test_*.sh are registered).
#
# A chaos run owns PRIVATE services: its own PostgreSQL and Kafka (the
# deploy/local scripts with their own SRL_STATE_DIR and ports; the Kafka
# jars come from the shared SRL_CACHE_DIR), so it may restart them while the
# shared ones serve other tests. On them it builds a hub (producer + bridge)
# and two spokes: spoke1 reads Kafka, spoke2 pulls through the bridge.
#
# Settings (environment):
#   SRL_CHAOS_SECONDS  how long the chaos lasts          (90)
#   SRL_CHAOS_SEED     RANDOM seed, to replay a run      (the pid)
#   SRL_CHAOS_KEEP     1: keep the run folder (logs, data) even on success
#   SRL_BUILD_DIR      the build with the programs (ctest sets it)
#   SRL_CHAOS_SPOKE2_TRANSPORT  http (default) or kafka: spoke2 without the bridge

CHAOS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# The shared cache, decided before lib.sh sees our private SRL_STATE_DIR.
export SRL_CACHE_DIR="${SRL_CACHE_DIR:-${SRL_STATE_DIR:-$CHAOS_ROOT/.state}/cache}"
export SRL_BUILD_DIR="${SRL_BUILD_DIR:-$CHAOS_ROOT/build}"
CHAOS_SECONDS="${SRL_CHAOS_SECONDS:-90}"
CHAOS_SEED="${SRL_CHAOS_SEED:-$$}"
RANDOM=$CHAOS_SEED

# Under /var/tmp: when run as root, the private PostgreSQL runs as user
# postgres, which must be able to reach its folder.
CHAOS_DIR=$(mktemp -d /var/tmp/sysrepl-chaos.XXXXXX)
chmod 755 "$CHAOS_DIR"
export SRL_STATE_DIR="$CHAOS_DIR/state"

# chaos_free_port: a TCP port nothing listens on (and not handed out yet).
CHAOS_PORTS=" "
chaos_free_port() {
    local port listening
    listening=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ')
    while :; do
        port=$((20000 + RANDOM % 12000))
        [[ " $listening " == *" $port "* || $CHAOS_PORTS == *" $port "* ]] && continue
        CHAOS_PORTS+="$port "
        echo "$port"
        return
    done
}
SRL_PG_PORT=$(chaos_free_port)
SRL_KAFKA_PORT=$(chaos_free_port)
SRL_KAFKA_CONTROLLER_PORT=$(chaos_free_port)
CHAOS_BRIDGE_PORT=$(chaos_free_port)
export SRL_PG_PORT SRL_KAFKA_PORT SRL_KAFKA_CONTROLLER_PORT

# One broker, whatever the caller's environment says, unless the test asks
# for the cluster.
export SRL_KAFKA_BROKERS=1
CHAOS_KAFKA_BOOTSTRAP="127.0.0.1:$SRL_KAFKA_PORT"

# chaos_use_kafka_cluster: the run's private Kafka becomes the 3-node
# cluster of deploy/local/kafka (SRL_KAFKA_BROKERS=3), whose nodes listen on
# the chosen ports +0, +100, +200; call it before chaos_setup.
chaos_use_kafka_cluster() {
    local listening p o ok
    listening=" $(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | tr '\n' ' ') "
    for p in SRL_KAFKA_PORT SRL_KAFKA_CONTROLLER_PORT; do
        while :; do
            printf -v "$p" '%s' "$(chaos_free_port)"
            ok=1
            for o in 100 200; do
                [[ $listening == *" $((${!p} + o)) "* || $CHAOS_PORTS == *" $((${!p} + o)) "* ]] && ok=0
            done
            ((ok)) && break
        done
        CHAOS_PORTS+="$((${!p} + 100)) $((${!p} + 200)) "
    done
    export SRL_KAFKA_BROKERS=3 SRL_KAFKA_PORT SRL_KAFKA_CONTROLLER_PORT
    CHAOS_KAFKA_BOOTSTRAP="127.0.0.1:$SRL_KAFKA_PORT,127.0.0.1:$((SRL_KAFKA_PORT + 100)),127.0.0.1:$((SRL_KAFKA_PORT + 200))"
}

# shellcheck source=deploy/local/lib.sh
source "$CHAOS_ROOT/deploy/local/lib.sh"
# shellcheck source=deploy/local/topology.sh
source "$CHAOS_ROOT/deploy/local/topology.sh"
SRL_PROG=${SRL_PROG:-chaos}

TOPO_DIR="$CHAOS_DIR/run"
TOPO_DB_PREFIX=chaos
TOPO_TOPIC=chaos
CHAOS_DAEMONS=(producer bridge spoke1 spoke2)

# Counters for the report.
declare -A CHAOS_KILLS=() CHAOS_RESTARTS=() CHAOS_UNEXPECTED=()
CHAOS_CHANGES=0
CHAOS_PG_RESTARTS=0
CHAOS_KAFKA_RESTARTS=0
CHAOS_OK=0

chaos_cleanup() {
    local rc=$?
    set +e
    topo_stop_all 2>/dev/null
    "$CHAOS_ROOT/deploy/local/kafka" stop >/dev/null 2>&1
    "$CHAOS_ROOT/deploy/local/postgres" stop >/dev/null 2>&1
    if ((CHAOS_OK)) && [[ ${SRL_CHAOS_KEEP:-0} != 1 ]]; then
        rm -rf "$CHAOS_DIR"
    else
        echo "chaos: kept $CHAOS_DIR (logs in $TOPO_DIR; replay with SRL_CHAOS_SEED=$CHAOS_SEED)" >&2
    fi
    exit "$rc"
}
trap chaos_cleanup EXIT
trap 'exit 130' INT TERM

# chaos_start NAME: (re)starts one daemon of the topology.
chaos_start() {
    case $1 in
        producer) topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf" ;;
        bridge) topo_start bridge "$BRIDGE" -c "$TOPO_DIR/bridge.conf" ;;
        spoke1) topo_start spoke1 "$CONSUMER" -c "$TOPO_DIR/spoke1.conf" ;;
        spoke2) topo_start spoke2 "$CONSUMER" -c "$TOPO_DIR/spoke2.conf" ;;
        *) srl_die "unknown daemon $1" ;;
    esac
}

# chaos_setup SAMPLE_SIZE: private services, stores, daemons, a first sample
# imported on the hub.
chaos_setup() {
    local n=${1:-2000} t0=$SECONDS api_key
    srl_log "run folder $CHAOS_DIR, seed $CHAOS_SEED, chaos for $CHAOS_SECONDS s"
    srl_log "private PostgreSQL on $SRL_PG_PORT, Kafka on $CHAOS_KAFKA_BOOTSTRAP"
    "$CHAOS_ROOT/deploy/local/postgres" start
    "$CHAOS_ROOT/deploy/local/kafka" start
    topo_setup
    topo_store hub hub
    topo_store spoke1 spoke
    topo_store spoke2 spoke

    api_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    printf '%s' "$api_key" | "$BRIDGE" --hash-key - --name spoke2 --perms pull >"$TOPO_DIR/bridge-keys"
    local kafka="kafka.bootstrap.servers=$CHAOS_KAFKA_BOOTSTRAP"
    local common=(topic.prefix="$TOPO_TOPIC" log.level=info stats.interval_ms=5s)
    topo_conf producer instance.id=hub role=hub store.dsn="\"$(topo_dsn hub)\"" "$kafka" "${common[@]}"
    topo_conf bridge instance.id=hub role=hub "$kafka" "${common[@]}" \
        bridge.listen=127.0.0.1 bridge.port="$CHAOS_BRIDGE_PORT" bridge.plain_http=true \
        bridge.keys_file="$TOPO_DIR/bridge-keys"
    topo_conf spoke1 instance.id=spoke1 role=spoke store.dsn="\"$(topo_dsn spoke1)\"" "$kafka" "${common[@]}"
    if [[ ${SRL_CHAOS_SPOKE2_TRANSPORT:-http} == http ]]; then
        topo_conf spoke2 instance.id=spoke2 role=spoke store.dsn="\"$(topo_dsn spoke2)\"" "${common[@]}" \
            transport=http bridge.url="http://127.0.0.1:$CHAOS_BRIDGE_PORT" bridge.api_key="$api_key" \
            bridge.timeout_ms=10s
    else # debugging without the bridge in the path
        topo_conf spoke2 instance.id=spoke2 role=spoke store.dsn="\"$(topo_dsn spoke2)\"" "$kafka" "${common[@]}"
    fi

    local d
    for d in "${CHAOS_DAEMONS[@]}"; do chaos_start "$d"; done
    sleep 2
    # One more try for a daemon that stopped at start (new topics settling),
    # as systemd's Restart=on-failure would.
    for d in "${CHAOS_DAEMONS[@]}"; do
        topo_alive "$d" || { srl_log "$d exited at start; starting it again"; chaos_start "$d"; }
    done
    sleep 2
    topo_check_alive "${CHAOS_DAEMONS[@]}"

    "$CHAOS_ROOT/deploy/local/demo-data" --assessments "$n" --seed "$CHAOS_SEED" >"$TOPO_DIR/sample.jsonl"
    topo_cli hub import "$TOPO_DIR/sample.jsonl" >>"$TOPO_DIR/cli.log" 2>&1 ||
        { tail -n 5 "$TOPO_DIR/cli.log" >&2; srl_die "importing the sample failed"; }
    topo_wait_converged 120 hub spoke1 spoke2 || srl_die "the first sync did not converge"
    srl_log "set up and first sync of $(topo_counts hub) in $(srl_elapsed "$t0")"
}

# ---- the changes made on the hub (all through the admin CLI) ------------

# chaos_change: one random change on the hub.
chaos_change() {
    local r=$((RANDOM % 10)) f="$TOPO_DIR/change.jsonl"
    if ((r < 5)); then
        # Re-import a random slice of the hub's content, edited, plus new
        # assessments: updates and inserts in one transaction.
        topo_export hub "$TOPO_DIR/hub-now.jsonl" || return 0
        python3 "$CHAOS_ROOT/tests/e2e/chaos_mutate.py" --seed "$RANDOM" --new $((RANDOM % 40)) \
            <"$TOPO_DIR/hub-now.jsonl" >"$f"
        topo_cli hub import "$f" >>"$TOPO_DIR/cli.log" 2>&1 && CHAOS_CHANGES=$((CHAOS_CHANGES + 1))
    elif ((r < 8)); then
        # Delete a few random assessments, one CLI call each.
        local key
        while IFS= read -r key; do
            topo_cli hub assessment delete "$key" >>"$TOPO_DIR/cli.log" 2>&1 &&
                CHAOS_CHANGES=$((CHAOS_CHANGES + 1))
        done < <(topo_sql hub "SELECT key FROM vulnerability_assessments ORDER BY random() LIMIT $((1 + RANDOM % 8))")
    else
        # Put one policy or one custom type, edited.
        topo_export hub "$TOPO_DIR/hub-now.jsonl" || return 0
        python3 "$CHAOS_ROOT/tests/e2e/chaos_mutate.py" --seed "$RANDOM" --one-small \
            <"$TOPO_DIR/hub-now.jsonl" >"$f"
        [[ -s $f ]] && topo_cli hub import "$f" >>"$TOPO_DIR/cli.log" 2>&1 &&
            CHAOS_CHANGES=$((CHAOS_CHANGES + 1))
    fi
    return 0
}

# ---- the faults ------------------------------------------------------------

chaos_kill_restart() {
    local d=${CHAOS_DAEMONS[RANDOM % ${#CHAOS_DAEMONS[@]}]}
    topo_alive "$d" || return 0
    topo_kill9 "$d"
    CHAOS_KILLS[$d]=$((${CHAOS_KILLS[$d]:-0} + 1))
    sleep "0.$((RANDOM % 10))"
    chaos_start "$d"
    CHAOS_RESTARTS[$d]=$((${CHAOS_RESTARTS[$d]:-0} + 1))
}

chaos_term_restart() {
    local d=${CHAOS_DAEMONS[RANDOM % ${#CHAOS_DAEMONS[@]}]}
    topo_stop "$d" 30 || srl_log "$d needed SIGKILL after SIGTERM"
    chaos_start "$d"
    CHAOS_RESTARTS[$d]=$((${CHAOS_RESTARTS[$d]:-0} + 1))
}

chaos_restart_postgres() {
    "$CHAOS_ROOT/deploy/local/postgres" stop >/dev/null 2>&1
    sleep "$((1 + RANDOM % 3))"
    "$CHAOS_ROOT/deploy/local/postgres" start >/dev/null 2>&1 || srl_die "private PostgreSQL did not restart"
    CHAOS_PG_RESTARTS=$((CHAOS_PG_RESTARTS + 1))
}

chaos_restart_kafka() {
    "$CHAOS_ROOT/deploy/local/kafka" stop >/dev/null 2>&1
    sleep "$((1 + RANDOM % 3))"
    "$CHAOS_ROOT/deploy/local/kafka" start >/dev/null 2>&1 || srl_die "private Kafka did not restart"
    CHAOS_KAFKA_RESTARTS=$((CHAOS_KAFKA_RESTARTS + 1))
}

# chaos_revive: a daemon that died without being killed is restarted and
# counted (systemd would restart it too; the report shows it).
chaos_revive() {
    local d
    for d in "${CHAOS_DAEMONS[@]}"; do
        topo_alive "$d" && continue
        [[ ${CHAOS_PAUSED:-} == "$d" ]] && continue
        CHAOS_UNEXPECTED[$d]=$((${CHAOS_UNEXPECTED[$d]:-0} + 1))
        srl_log "$d exited on its own; restarting it. Its last lines:"
        tail -n 3 "$TOPO_DIR/$d.log" | cut -c1-300 >&2 || true
        chaos_start "$d"
    done
}

# chaos_run SECONDS [DAEMONS...]: random changes and faults until the time is
# up. Every 25 s one of the private services restarts, PostgreSQL and Kafka
# in turn.
CHAOS_NEXT_SERVICE=pg
chaos_run() {
    local seconds=$1 deadline=$((SECONDS + $1)) r next_service=$((SECONDS + 10))
    shift
    ((${#@})) && CHAOS_DAEMONS=("$@")
    srl_log "chaos for $seconds s on ${CHAOS_DAEMONS[*]}"
    while ((SECONDS < deadline)); do
        r=$((RANDOM % 100))
        if ((r < 50)); then
            chaos_change
        elif ((r < 75)); then
            chaos_kill_restart
        elif ((r < 85)); then
            chaos_term_restart
        elif ((SECONDS >= next_service)); then
            if [[ $CHAOS_NEXT_SERVICE == pg ]]; then
                chaos_restart_postgres
                CHAOS_NEXT_SERVICE=kafka
            else
                chaos_restart_kafka
                CHAOS_NEXT_SERVICE=pg
            fi
            next_service=$((SECONDS + 25))
        else
            sleep "0.$((RANDOM % 10))"
        fi
        chaos_revive
    done
}

# chaos_finish: every daemon up, then every spoke equals the hub, no dead
# letters, the outbox empty; prints the report.
chaos_finish() {
    local d t0=$SECONDS failed=0
    CHAOS_DAEMONS=(producer bridge spoke1 spoke2)
    chaos_revive
    srl_log "chaos over; waiting for the spokes to converge"
    topo_wait_converged 240 hub spoke1 spoke2 || failed=1
    topo_outbox_empty hub || { srl_log "hub outbox not empty"; failed=1; }
    for d in spoke1 spoke2; do
        local n
        n=$(topo_dead_letters "$d")
        if [[ $n != 0 ]]; then
            srl_log "$d has $n dead letters:"
            topo_sql "$d" "SELECT topic, partition, record_offset, reason FROM sysrepl.dead_letters LIMIT 5" >&2
            failed=1
        fi
    done
    echo "chaos report (seed $CHAOS_SEED, $CHAOS_SECONDS s):"
    echo "  hub changes made:           $CHAOS_CHANGES"
    for d in producer bridge spoke1 spoke2; do
        printf '  %-8s kill -9: %3d  restarts: %3d  exited on its own: %d\n' "$d" \
            "${CHAOS_KILLS[$d]:-0}" "${CHAOS_RESTARTS[$d]:-0}" "${CHAOS_UNEXPECTED[$d]:-0}"
    done
    echo "  PostgreSQL restarts:        $CHAOS_PG_RESTARTS"
    echo "  Kafka restarts:             $CHAOS_KAFKA_RESTARTS"
    echo "  final content:              $(topo_counts hub)"
    echo "  converged after the chaos:  $(srl_elapsed "$t0")"
    ((failed == 0)) || srl_die "FAILED: the spokes do not mirror the hub (see above; logs in $TOPO_DIR)"
    echo "  every spoke equals the hub, no dead letters, outbox empty: OK"
    CHAOS_OK=1
}
