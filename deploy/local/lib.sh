# shellcheck shell=bash
# Shared by the deploy/local scripts, tests/run and deploy/demo (sourced,
# never run). Defines where state lives, the service ports, and small helpers.
#
# Settings (environment, all optional):
#   SRL_STATE_DIR              state: databases, broker logs  (<repo>/.state)
#   SRL_CACHE_DIR              downloads: broker jars          ($SRL_STATE_DIR/cache)
#   SRL_PG_PORT                private PostgreSQL              (55432)
#   SRL_KAFKA_PORT             Kafka client listener           (59092)
#   SRL_KAFKA_CONTROLLER_PORT  Kafka KRaft controller          (59093)
#   SRL_PG_TLS                 1: PostgreSQL with TLS and a password role (0)

SRL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRL_STATE_DIR="${SRL_STATE_DIR:-$SRL_ROOT/.state}"
SRL_CACHE_DIR="${SRL_CACHE_DIR:-$SRL_STATE_DIR/cache}"
SRL_PG_PORT="${SRL_PG_PORT:-55432}"
SRL_KAFKA_PORT="${SRL_KAFKA_PORT:-59092}"
SRL_KAFKA_CONTROLLER_PORT="${SRL_KAFKA_CONTROLLER_PORT:-59093}"
SRL_VENV="$SRL_STATE_DIR/venv" # Python with fastavro and confluent-kafka (install-deps)
export SRL_ROOT SRL_STATE_DIR SRL_CACHE_DIR SRL_PG_PORT SRL_KAFKA_PORT SRL_KAFKA_CONTROLLER_PORT SRL_VENV

srl_log() { printf '%s: %s\n' "${SRL_PROG:-${0##*/}}" "$*" >&2; }
srl_die() { srl_log "error: $*"; exit 1; }

# srl_wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it
# succeeds; returns 1 if it still fails after SECONDS.
srl_wait_until() {
    local timeout=$1
    shift
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# srl_lock NAME: holds an exclusive lock on $SRL_STATE_DIR/NAME.lock until the
# calling script exits, so two start/stop calls on one service never race.
srl_lock() {
    [[ -z ${SRL_LOCK_FD:-} ]] || return 0 # already held by this script
    mkdir -p "$SRL_STATE_DIR"
    exec {SRL_LOCK_FD}>"$SRL_STATE_DIR/$1.lock"
    flock -w 300 "$SRL_LOCK_FD" || srl_die "could not lock $SRL_STATE_DIR/$1.lock within 300 s"
}

# srl_pid_alive PIDFILE: true if the file names a running process.
srl_pid_alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# srl_free_port: a TCP port on 127.0.0.1 nothing listens on now.
srl_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# srl_reserve_ports PORT...: keeps the kernel from giving these ports to
# outgoing connections as their local end. Linux's ephemeral range
# (32768-60999) holds the default service ports, and on a busy machine a
# client socket once took a service's port just before the service bound
# it. Needs root (writes ip_local_reserved_ports); otherwise does nothing.
srl_reserve_ports() {
    local f=/proc/sys/net/ipv4/ip_local_reserved_ports cur p
    [[ -w $f ]] || return 0
    cur=$(<"$f") || return 0
    for p in "$@"; do
        [[ ",$cur," == *",$p,"* ]] || cur=${cur:+$cur,}$p
    done
    printf '%s\n' "$cur" 2>/dev/null >"$f" || true
}

srl_elapsed() { printf '%d s' $((SECONDS - ${1:-0})); }
