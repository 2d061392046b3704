#!/usr/bin/env bash
# e2e: a hub and a spoke whose stores are reached over TLS with a password,
# as in production (issue 14). A PRIVATE PostgreSQL (deploy/local/postgres
# with SRL_PG_TLS=1, its own state folder and a free port: its own CA and
# server certificate, hostssl + scram-sha-256 for the role sysrepl) and the
# shared Kafka (SRL_TEST_KAFKA).
#   1. `sysrepl init`, sysrepl-producer and sysrepl-consumer run with
#      store.dsn "... user=sysrepl sslmode=verify-full sslrootcert=<ca>" and
#      the password in PGPASSFILE only: the hub's content and later changes
#      reach the spoke, and every session of theirs is encrypted.
#   2. sslmode=verify-full against a wrong CA: sysrepl-consumer exits 3 at
#      start (it does not wait as for a store that is away) with one error
#      line naming the certificate problem; so do sysrepl-producer and
#      `sysrepl status`. Plain TCP for the role is refused the same way.
#   3. No program and not the server logged the password.
set -euo pipefail
SRL_PROG=test_pg_tls

if [[ -z ${SRL_TEST_KAFKA:-} ]]; then
    echo "SKIP: SRL_TEST_KAFKA is not set (eval \"\$(deploy/local/env)\")"
    exit 77
fi
command -v openssl >/dev/null || { echo "SKIP: no openssl (deploy/local/install-deps)"; exit 77; }
SRC=${SRL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export SRL_BUILD_DIR=${SRL_BUILD_DIR:-$SRC/build}

# The private PostgreSQL: under /var/tmp (as root it runs as the user
# postgres, which must reach its folder), on a port nothing listens on.
RUN_DIR=$(mktemp -d /var/tmp/sysrepl-pgtls.XXXXXX)
chmod 755 "$RUN_DIR"
export SRL_STATE_DIR=$RUN_DIR/state SRL_PG_TLS=1 SRL_PG_SHARED_BUFFERS=128MB
SRL_PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SRL_PG_PORT
# shellcheck source=deploy/local/lib.sh
source "$SRC/deploy/local/lib.sh"
# shellcheck source=deploy/local/topology.sh
source "$SRC/deploy/local/topology.sh"
TOPO_DIR=$RUN_DIR/run
TOPO_DB_PREFIX=srl_pgtls
TOPO_TOPIC=pgtls-$$-$(date +%s%N | tail -c 8)
OK=0

cleanup() {
    local rc=$?
    set +e
    topo_stop_all 2>/dev/null
    "$SRC/deploy/local/postgres" stop >/dev/null 2>&1
    if ((OK)); then
        rm -rf "$RUN_DIR"
    else
        for n in producer spoke; do
            [[ -f $TOPO_DIR/$n.log ]] && { echo "--- tail of $n.log"; tail -n 15 "$TOPO_DIR/$n.log"; }
        done
        echo "kept $RUN_DIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*"
    exit 1
}

t0=$SECONDS
"$SRC/deploy/local/postgres" start
topo_setup
CA=$SRL_STATE_DIR/pg-tls/ca.crt
export PGPASSFILE=$SRL_STATE_DIR/pg-tls/passfile
[[ -r $CA && -r $PGPASSFILE ]] || fail "deploy/local/postgres with SRL_PG_TLS=1 made no $CA or $PGPASSFILE"
PASSWORD=$(awk -F: 'NR == 1 { print $5 }' "$PGPASSFILE")
[[ -n $PASSWORD ]] || fail "no password in $PGPASSFILE"

tls_dsn() { # tls_dsn INSTANCE [CA]: the store's DSN for the role sysrepl, over TLS
    printf 'host=127.0.0.1 port=%s dbname=%s user=sysrepl sslmode=verify-full sslrootcert=%s' \
        "$SRL_PG_PORT" "$(topo_db "$1")" "${2:-$CA}"
}

# tls_store INSTANCE ROLE: a database owned by sysrepl (made by the
# superuser), the CLI's config with the TLS DSN, `sysrepl init` over TLS.
tls_store() {
    local inst=$1 role=$2
    "${TOPO_PSQL[@]}" -d postgres -c "CREATE DATABASE \"$(topo_db "$inst")\" OWNER sysrepl" >/dev/null
    topo_conf "$inst-cli" instance.id="$inst" role="$role" store.dsn="\"$(tls_dsn "$inst")\"" \
        topic.prefix="$TOPO_TOPIC"
    topo_cli "$inst" init >>"$TOPO_DIR/cli.log" 2>&1 ||
        { tail -n 5 "$TOPO_DIR/cli.log"; fail "sysrepl init of $inst over TLS failed"; }
}
tls_store hub hub
tls_store spoke spoke

# ---- 1. replication over TLS --------------------------------------------
kafka=kafka.bootstrap.servers=$SRL_TEST_KAFKA
common=(topic.prefix="$TOPO_TOPIC" log.level=info)
topo_conf producer instance.id=hub role=hub store.dsn="\"$(tls_dsn hub)\"" "$kafka" "${common[@]}"
topo_conf spoke instance.id=spoke role=spoke store.dsn="\"$(tls_dsn spoke)\"" "$kafka" "${common[@]}"
topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf"
topo_start spoke "$CONSUMER" -c "$TOPO_DIR/spoke.conf"
sleep 1
topo_check_alive producer spoke
echo "ok: private PostgreSQL with TLS on $SRL_PG_PORT, producer and consumer running ($(srl_elapsed "$t0"))"

"$SRC/deploy/local/demo-data" --assessments 300 --seed 14 >"$TOPO_DIR/sample.jsonl"
topo_cli hub import "$TOPO_DIR/sample.jsonl" >>"$TOPO_DIR/cli.log" 2>&1 ||
    { tail -n 5 "$TOPO_DIR/cli.log"; fail "importing the sample on the hub failed"; }
topo_wait_converged 60 hub spoke || { topo_check_alive producer spoke; fail "first load: the spoke did not converge"; }
echo "ok (first load): the spoke equals the hub, $(topo_counts hub) ($(srl_elapsed "$t0"))"

# Every session of the role sysrepl (the daemons' among them) is encrypted.
sessions=$(topo_sql hub "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
    FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'sysrepl'")
read -r n_tls n_plain <<<"${sessions//|/ }"
((n_tls >= 2 && n_plain == 0)) || fail "sessions of sysrepl: $n_tls over TLS, $n_plain without; want >= 2 and 0"
echo "ok: $n_tls sessions of the role sysrepl, all over TLS"

mapfile -t akeys < <(topo_sql hub "SELECT key FROM vulnerability_assessments ORDER BY key LIMIT 5")
for k in "${akeys[@]}"; do topo_cli hub assessment delete "$k" >/dev/null; done
topo_cli hub policy put '{"name":"TLS Test","description":"put by the test","feeds":[]}' >/dev/null
topo_wait_converged 60 hub spoke || { topo_check_alive producer spoke; fail "changes: the spoke did not converge"; }
topo_check_alive producer spoke
[[ $(topo_dead_letters spoke) == 0 ]] || fail "dead letters on the spoke"
echo "ok (changes and deletes): the spoke equals the hub, $(topo_counts hub) ($(srl_elapsed "$t0"))"
topo_stop spoke || fail "sysrepl-consumer did not stop on SIGTERM"
topo_stop producer || fail "sysrepl-producer did not stop on SIGTERM"

# ---- 2. a wrong CA, plain TCP -------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=not the server's CA" \
    -keyout "$RUN_DIR/wrong-ca.key" -out "$RUN_DIR/wrong-ca.crt" >/dev/null 2>&1
wrong_dsn=$(tls_dsn spoke "$RUN_DIR/wrong-ca.crt")

# expect_store_refused WHAT LOG PATTERN CMD...: CMD exits 3 within 30 s, and
# its log has exactly one error line, which matches PATTERN.
expect_store_refused() {
    local what=$1 log=$2 pattern=$3 rc=0 errors
    shift 3
    timeout 30 "$@" >"$log" 2>&1 || rc=$?
    [[ $rc == 3 ]] || { cat "$log"; fail "$what: exit status $rc, want 3 (124: it waited instead)"; }
    errors=$(grep -c -e 'level=error' -e '^sysrepl' "$log" || true)
    [[ $errors == 1 ]] || { cat "$log"; fail "$what: $errors error lines, want 1"; }
    grep -E -e "$pattern" "$log" | grep -q -e 'level=error' -e '^sysrepl' ||
        { cat "$log"; fail "$what: the error line does not match /$pattern/"; }
    echo "ok ($what): exit 3: $(grep -m1 -o -E "${pattern}[^\"]*" "$log" | cut -c1-120)"
}
expect_store_refused "consumer, wrong CA" "$TOPO_DIR/wrong-ca-consumer.log" 'certificate verify failed' \
    "$CONSUMER" -c "$TOPO_DIR/spoke.conf" -X store.dsn="$wrong_dsn"
expect_store_refused "producer, wrong CA" "$TOPO_DIR/wrong-ca-producer.log" 'certificate verify failed' \
    "$PRODUCER" -c "$TOPO_DIR/producer.conf" -X store.dsn="$(tls_dsn hub "$RUN_DIR/wrong-ca.crt")"
expect_store_refused "sysrepl status, wrong CA" "$TOPO_DIR/wrong-ca-status.log" 'certificate verify failed' \
    "$SYSREPL" -c "$TOPO_DIR/spoke-cli.conf" -X store.dsn="$wrong_dsn" status
expect_store_refused "consumer, no TLS" "$TOPO_DIR/plain-consumer.log" 'pg_hba.conf rejects connection' \
    "$CONSUMER" -c "$TOPO_DIR/spoke.conf" \
    -X store.dsn="host=127.0.0.1 port=$SRL_PG_PORT dbname=$(topo_db spoke) user=sysrepl sslmode=disable"

# ---- 3. the password is in no log ---------------------------------------
if grep -rlF -- "$PASSWORD" "$TOPO_DIR" "$SRL_STATE_DIR/pg/server.log" ${SRL_LOG_DIR:+"$SRL_LOG_DIR"}; then
    fail "the password of the role sysrepl is in the log files above"
fi
echo "ok: the password is in no program's log nor the server's"

OK=1
echo "PASS ($(srl_elapsed "$t0"))"
