# shellcheck shell=bash
# deploy/local/kafka_cluster.sh - the cluster mode of deploy/local/kafka
# (sourced by it when SRL_KAFKA_BROKERS is 3; never run): three KRaft nodes
# on loopback, each both broker and controller, so the controller quorum is
# the three of them (one node may be down, two may not).
#
#   node N (1..3)  client    127.0.0.1:$((SRL_KAFKA_PORT + 100 * (N - 1)))
#                  controller 127.0.0.1:$((SRL_KAFKA_CONTROLLER_PORT + 100 * (N - 1)))
#                  files      $SRL_STATE_DIR/kafka-cluster/nodeN/{data,server.properties,server.log,kafka.pid}
#   (by default 59092, 59192, 59292 and 59093, 59193, 59293)
#
# Topics get three replicas and min.insync.replicas 2 unless their creator
# says otherwise (the broker defaults below; sysrepl's own topic defaults
# follow the broker count, docs/config-reference.md), and so do the
# broker's internal topics. Each JVM gets SRL_KAFKA_HEAP (default 384m).
#
# Commands, besides start, stop, status and reset of the whole cluster:
#   start-node N      start one node, wait until it answers and is back in
#                     the cluster's metadata
#   stop-node N       SIGTERM (controlled shutdown), SIGKILL after 60 s
#   (stop sends SIGTERM to all three at once, SIGKILL after 20 s: a node
#   left without a controller quorum cannot finish its controlled shutdown)
#   kill-node N       SIGKILL, as a crash would
#   wait-replicated [SECONDS]  wait until every partition of every topic has
#                     all its replicas in sync (default 120 s): the point
#                     at which a rolling restart may take the next node
#   bootstrap         print the three client addresses, comma-separated

CLUSTER_NODES=3
CLUSTER_DIR="$SRL_STATE_DIR/kafka-cluster"
CLUSTER_HEAP=${SRL_KAFKA_HEAP:-384m}

cluster_port() { echo $((SRL_KAFKA_PORT + 100 * ($1 - 1))); }
cluster_controller_port() { echo $((SRL_KAFKA_CONTROLLER_PORT + 100 * ($1 - 1))); }
cluster_node_dir() { echo "$CLUSTER_DIR/node$1"; }
cluster_pidfile() { echo "$CLUSTER_DIR/node$1/kafka.pid"; }

cluster_bootstrap() {
    local n list=""
    for ((n = 1; n <= CLUSTER_NODES; n++)); do list+="${list:+,}127.0.0.1:$(cluster_port "$n")"; done
    echo "$list"
}

cluster_check_node() {
    [[ ${1:-} =~ ^[1-3]$ ]] || srl_die "node \"${1:-}\": expected 1, 2 or 3"
}

cluster_write_config() {
    local n=$1 dir voters="" i
    dir=$(cluster_node_dir "$n")
    for ((i = 1; i <= CLUSTER_NODES; i++)); do
        voters+="${voters:+,}$i@127.0.0.1:$(cluster_controller_port "$i")"
    done
    mkdir -p "$dir/data"
    cat >"$dir/server.properties" <<EOF
# Written by deploy/local/kafka (cluster mode) on every start; edit
# deploy/local/kafka_cluster.sh, not this file.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(cluster_port "$n"),CONTROLLER://127.0.0.1:$(cluster_controller_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(cluster_port "$n")
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
# Three replicas, two of them in sync for a write to be acknowledged
# (acks=all): one node may fail without losing or refusing anything.
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
# Three JVMs on a small machine: few threads each.
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
log.cleaner.threads=1
# Compaction is what sysrepl relies on: let tests see it within seconds.
log.cleaner.enable=true
log.cleaner.backoff.ms=1000
log.cleaner.dedupe.buffer.size=16777216
log.segment.delete.delay.ms=1000
EOF
    cat >"$dir/log4j2.properties" <<EOF
# Written by deploy/local/kafka: node $n logs to $dir/server.log (rolled at 50 MB).
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $dir/server.log
appender.file.filePattern = $dir/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
EOF
}

# cluster_java N: sets CLUSTER_JAVA to the JVM command of node N.
cluster_java() {
    local dir
    dir=$(cluster_node_dir "$1")
    CLUSTER_JAVA=(java -Xmx"$CLUSTER_HEAP" -Xms64m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties"
        -Dkafka.logs.dir="$dir" -cp "$LIBS/*")
}

# All three nodes share one cluster id, drawn once.
cluster_format() {
    local n=$1 dir cluster_id
    dir=$(cluster_node_dir "$n")
    [[ -f $dir/data/meta.properties ]] && return
    if [[ -s $CLUSTER_DIR/cluster-id ]]; then
        cluster_id=$(<"$CLUSTER_DIR/cluster-id")
    else
        cluster_id=-
        while [[ $cluster_id == -* ]]; do # see format_storage in deploy/local/kafka
            cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        done
        echo "$cluster_id" >"$CLUSTER_DIR/cluster-id"
    fi
    srl_log "formatting node $n's $dir/data (cluster id $cluster_id)"
    cluster_java "$n"
    "${CLUSTER_JAVA[@]}" kafka.tools.StorageTool format --cluster-id "$cluster_id" \
        --config "$dir/server.properties" >"$dir/format.log" 2>&1 ||
        { cat "$dir/format.log" >&2; srl_die "formatting node $n failed; see $dir/format.log"; }
}

cluster_running() { srl_pid_alive "$(cluster_pidfile "$1")"; }

# cluster_node_ready N: node N answers a metadata request and lists itself.
cluster_node_ready() {
    local port
    port=$(cluster_port "$1")
    port_taken "$port" || return 1
    kcat -b "127.0.0.1:$port" -L -m 3 -X topic.metadata.refresh.interval.ms=-1 2>/dev/null |
        grep -q "broker $1 at 127.0.0.1:$port"
}

# cluster_ready: some node answers and lists all three brokers.
cluster_ready() {
    kcat -b "$(cluster_bootstrap)" -L -m 3 -X topic.metadata.refresh.interval.ms=-1 2>/dev/null |
        grep -q " $CLUSTER_NODES brokers:"
}

# cluster_launch N: start node N's JVM (no wait).
cluster_launch() {
    local n=$1 dir port
    dir=$(cluster_node_dir "$n")
    for port in "$(cluster_port "$n")" "$(cluster_controller_port "$n")"; do
        ! port_taken "$port" ||
            srl_die "port $port on 127.0.0.1 (node $n) is taken by another process; stop it or set SRL_KAFKA_PORT / SRL_KAFKA_CONTROLLER_PORT"
    done
    cluster_write_config "$n"
    cluster_format "$n"
    # setsid: see cmd_start in deploy/local/kafka.
    cluster_java "$n"
    setsid "${CLUSTER_JAVA[@]}" kafka.Kafka "$dir/server.properties" </dev/null >"$dir/stdout.log" 2>&1 {SRL_LOCK_FD}>&- &
    echo $! >"$(cluster_pidfile "$n")"
    srl_log "node $n started, pid $!, client port $(cluster_port "$n")"
}

# cluster_wait N DEADLINE: wait until node N is ready; dies if it exits.
cluster_wait() {
    local n=$1 deadline=$2 dir
    dir=$(cluster_node_dir "$n")
    until cluster_node_ready "$n"; do
        if ! cluster_running "$n"; then
            tail -n 20 "$dir/stdout.log" "$dir/server.log" >&2 2>/dev/null || true
            rm -f "$(cluster_pidfile "$n")"
            srl_die "node $n exited during startup; see $dir/server.log and $dir/stdout.log"
        fi
        ((SECONDS < deadline)) ||
            srl_die "node $n did not answer on 127.0.0.1:$(cluster_port "$n") within $START_TIMEOUT s; see $dir/server.log"
        sleep 0.3
    done
}

cluster_start() {
    srl_lock kafka
    command -v java >/dev/null || srl_die "java not found; run deploy/local/install-deps"
    command -v kcat >/dev/null || srl_die "kcat not found; run deploy/local/install-deps"
    local t0=$SECONDS n
    for ((n = 0; n < CLUSTER_NODES; n++)); do
        srl_reserve_ports $((SRL_KAFKA_PORT + 100 * n)) $((SRL_KAFKA_CONTROLLER_PORT + 100 * n))
    done
    fetch_jars
    mkdir -p "$CLUSTER_DIR"
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        cluster_running "$n" || cluster_launch "$n"
    done
    # The nodes wait for each other's quorum: start all, then wait.
    local deadline=$((SECONDS + START_TIMEOUT))
    for ((n = 1; n <= CLUSTER_NODES; n++)); do cluster_wait "$n" "$deadline"; done
    srl_wait_until $((deadline - SECONDS > 0 ? deadline - SECONDS : 1)) cluster_ready ||
        srl_die "the nodes answer but the cluster does not list $CLUSTER_NODES brokers within $START_TIMEOUT s; see $CLUSTER_DIR/node*/server.log"
    srl_log "Kafka $(kafka_version) cluster of $CLUSTER_NODES ready on $(cluster_bootstrap) in $(srl_elapsed "$t0")"
}

cluster_start_node() {
    cluster_check_node "${1:-}"
    srl_lock kafka
    fetch_jars
    mkdir -p "$CLUSTER_DIR"
    if cluster_running "$1"; then
        srl_log "node $1 already running"
    else
        cluster_launch "$1"
    fi
    cluster_wait "$1" $((SECONDS + START_TIMEOUT))
    srl_log "node $1 ready on 127.0.0.1:$(cluster_port "$1")"
}

# cluster_signal_nodes SIGNAL TIMEOUT N...: signal the nodes, wait for all
# of them (SIGKILL after TIMEOUT seconds).
cluster_signal_nodes() {
    local sig=$1 timeout=$2 n pid pids=()
    shift 2
    for n in "$@"; do
        if cluster_running "$n"; then
            pid=$(<"$(cluster_pidfile "$n")")
            kill "-$sig" "$pid"
            pids+=("$pid")
        fi
    done
    for pid in "${pids[@]}"; do
        srl_wait_until "$timeout" bash -c "! kill -0 $pid 2>/dev/null" || {
            kill -KILL "$pid" 2>/dev/null || true
            srl_log "pid $pid did not stop within $timeout s after SIG$sig; killed it"
        }
    done
    for n in "$@"; do rm -f "$(cluster_pidfile "$n")"; done
}

cluster_stop_node() {
    cluster_check_node "${1:-}"
    srl_lock kafka
    cluster_signal_nodes "${2:-TERM}" "$STOP_TIMEOUT" "$1"
    srl_log "node $1 stopped (SIG${2:-TERM})"
}

cluster_stop() {
    srl_lock kafka
    # All at once, and SIGKILL after 20 s: a node whose controlled shutdown
    # still waits when the others' controllers are gone waits for a quorum
    # that will not come back (its log is recovered at the next start).
    cluster_signal_nodes TERM 20 1 2 3
    srl_log "cluster stopped"
}

cluster_status() {
    local n rc=0
    for ((n = 1; n <= CLUSTER_NODES; n++)); do
        if cluster_running "$n" && cluster_node_ready "$n"; then
            echo "kafka node $n: running on 127.0.0.1:$(cluster_port "$n") (pid $(<"$(cluster_pidfile "$n")")), log $(cluster_node_dir "$n")/server.log"
        else
            echo "kafka node $n: not running on 127.0.0.1:$(cluster_port "$n")"
            rc=3
        fi
    done
    return "$rc"
}

# cluster_fully_replicated: every partition's ISR has all its replicas.
cluster_fully_replicated() {
    local md
    md=$(kcat -b "$(cluster_bootstrap)" -L -m 3 2>/dev/null) || return 1
    grep -q ' brokers:' <<<"$md" || return 1
    ! grep -q 'Broker: Leader not available\|leader -1' <<<"$md" || return 1
    awk '/ partition [0-9]+, leader/ {
            r = $0; sub(/.*replicas: /, "", r); sub(/,? *isrs:.*/, "", r)
            i = $0; sub(/.*isrs: /, "", i); sub(/,? *$/, "", i)
            if (split(r, a, ",") != split(i, b, ",")) bad = 1
         }
         END { exit bad }' <<<"$md"
}

cluster_wait_replicated() {
    local timeout=${1:-120}
    srl_wait_until "$timeout" cluster_fully_replicated ||
        srl_die "some partitions still miss in-sync replicas after $timeout s (kcat -b $(cluster_bootstrap) -L)"
}

cluster_main() {
    case "${1:-}" in
        start) cluster_start ;;
        stop) cluster_stop ;;
        status) cluster_status ;;
        reset)
            cluster_stop
            rm -rf "$CLUSTER_DIR"
            srl_log "deleted $CLUSTER_DIR (jar cache in $SRL_CACHE_DIR kept)"
            ;;
        start-node) cluster_start_node "${2:-}" ;;
        stop-node) cluster_stop_node "${2:-}" TERM ;;
        kill-node) cluster_stop_node "${2:-}" KILL ;;
        wait-replicated) cluster_wait_replicated "${2:-120}" ;;
        bootstrap) cluster_bootstrap ;;
        *)
            echo "usage: SRL_KAFKA_BROKERS=3 ${0##*/} {start|stop|status|reset|start-node N|stop-node N|kill-node N|wait-replicated [SECONDS]|bootstrap}" >&2
            exit 2
            ;;
    esac
}
