#!/usr/bin/env bash
# e2e: a hub and a spoke that reach Kafka over SASL_SSL with least-privilege
# ACLs, as in production (issue 14). A PRIVATE broker (deploy/local/kafka
# with SRL_KAFKA_SECURITY=sasl_ssl, its own state folder and free ports: its
# own CA and broker certificate, the users admin, hub, spoke, bridge, the
# StandardAuthorizer) and the shared PostgreSQL (SRL_TEST_PG_DSN).
#   1. The ACLs of docs/operations.md ("Kafka with TLS, SASL and ACLs"),
#      exactly those, are granted with kafka-acls; sysrepl-producer (user
#      hub), sysrepl-consumer (user spoke) and sysrepl-bridge (user bridge)
#      run with the password in a file (kafka.sasl.password = @FILE): a
#      Kafka spoke and an http spoke (through the bridge) converge to the hub.
#   2. A wrong password, an unknown user, an untrusted CA, a host name not
#      in the certificate, a missing ACL (topic Create, topic Describe, the
#      spoke's group, the producer's reader group): each program exits 1 at start with one
#      error line naming the cause.
#   3. The hub's and the spoke's passwords changed on the broker under the
#      running producer and consumer: each logs the refusal, `sysrepl status`
#      shows it, each keeps retrying, and the spoke converges once the
#      passwords work again.
#   4. No program's log line and no broker log holds a password.
set -euo pipefail
SRL_PROG=test_kafka_sasl_ssl

if [[ -z ${SRL_TEST_PG_DSN:-} ]]; then
    echo "SKIP: SRL_TEST_PG_DSN is not set (eval \"\$(deploy/local/env)\")"
    exit 77
fi
for tool in openssl java kcat; do
    command -v "$tool" >/dev/null || { echo "SKIP: no $tool (deploy/local/install-deps)"; exit 77; }
done
SRC=${SRL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export SRL_BUILD_DIR=${SRL_BUILD_DIR:-$SRC/build}

# The private broker: its own state, the shared jar cache, free ports.
RUN_DIR=$(mktemp -d /tmp/sysrepl-kafkasec.XXXXXX)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export SRL_CACHE_DIR=${SRL_CACHE_DIR:-$SRC/.state/cache}
export SRL_STATE_DIR=$RUN_DIR/state SRL_KAFKA_SECURITY=sasl_ssl SRL_KAFKA_HEAP=384m
# outsider: a user the broker knows, with no ACL at all; reader: the
# spoke's topic ACL without its group ACL
export SRL_KAFKA_USERS="hub spoke bridge outsider reader"
SRL_KAFKA_PORT=$(free_port)
SRL_KAFKA_CONTROLLER_PORT=$(free_port)
export SRL_KAFKA_PORT SRL_KAFKA_CONTROLLER_PORT
# shellcheck source=deploy/local/lib.sh
source "$SRC/deploy/local/lib.sh"
# shellcheck source=deploy/local/topology.sh
source "$SRC/deploy/local/topology.sh"
TOPO_DIR=$RUN_DIR/run
TOPO_DB_PREFIX=srl_kafkasec_$$
TOPO_TOPIC=kafkasec-$$-$(date +%s%N | tail -c 8)
KAFKA="$SRC/deploy/local/kafka"
SEC=$SRL_STATE_DIR/kafka/security
OK=0 FORWARDER=""

cleanup() {
    local rc=$?
    set +e
    topo_stop_all 2>/dev/null
    [[ -z $FORWARDER ]] || kill "$FORWARDER" 2>/dev/null
    "$KAFKA" stop >/dev/null 2>&1
    for inst in hub spoke spoke2; do
        "${TOPO_PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$(topo_db "$inst")\" WITH (FORCE)" >/dev/null 2>&1
    done
    if ((OK)); then
        rm -rf "$RUN_DIR"
    else
        for n in producer spoke bridge spoke2; do
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
"$KAFKA" start
topo_setup
echo "ok: private secured broker on 127.0.0.1:$SRL_KAFKA_PORT ($(srl_elapsed "$t0"))"

# ---- 1. the documented ACLs, a hub and a spoke ----------------------------
# Exactly the commands of docs/operations.md, with P = the topic.prefix.
P=$TOPO_TOPIC
acl() { "$KAFKA" acls --add "$@" >>"$TOPO_DIR/acls.log" 2>&1; }
acl --allow-principal User:hub --operation Create --operation Write --operation Read \
    --operation Describe --operation DescribeConfigs --resource-pattern-type prefixed --topic "$P." &
acl --allow-principal User:spoke --operation Read --operation Describe --operation DescribeConfigs \
    --resource-pattern-type prefixed --topic "$P." &
acl --allow-principal User:hub --operation Read --group sysrepl-producer-reader &
acl --allow-principal User:spoke --operation Read --group "sysrepl.spoke" &
acl --allow-principal User:bridge --operation Create --operation Write --operation Read \
    --operation Describe --operation DescribeConfigs --resource-pattern-type prefixed --topic "$P." &
acl --allow-principal User:bridge --operation Read --resource-pattern-type prefixed --group "sysrepl-bridge.hub." &
acl --allow-principal User:reader --operation Read --operation Describe --operation DescribeConfigs \
    --resource-pattern-type prefixed --topic "$P." &
for job in 1 2 3 4 5 6 7; do
    wait "%$job" || { cat "$TOPO_DIR/acls.log"; fail "kafka-acls failed"; }
done
echo "ok: ACLs granted ($(srl_elapsed "$t0"))"

topo_store hub hub
topo_store spoke spoke
topo_store spoke2 spoke
# sec_conf USER: the kafka.* lines of USER; the password only in a file,
# the client's copy of the broker's (so the broker's can change alone).
sec_conf() {
    cp "$SEC/$1.password" "$RUN_DIR/$1.password"
    printf '%s\n' kafka.bootstrap.servers="127.0.0.1:$SRL_KAFKA_PORT" kafka.security.protocol=SASL_SSL \
        kafka.sasl.mechanisms=PLAIN kafka.sasl.username="$1" kafka.sasl.password="@$RUN_DIR/$1.password" \
        kafka.ssl.ca.location="$SEC/ca.crt"
}
mapfile -t hub_kafka < <(sec_conf hub)
mapfile -t spoke_kafka < <(sec_conf spoke)
mapfile -t bridge_kafka < <(sec_conf bridge)
common=(topic.prefix="$TOPO_TOPIC" log.level=info)
topo_conf producer instance.id=hub role=hub store.dsn="\"$(topo_dsn hub)\"" "${hub_kafka[@]}" "${common[@]}"
topo_conf spoke instance.id=spoke role=spoke store.dsn="\"$(topo_dsn spoke)\"" "${spoke_kafka[@]}" "${common[@]}"
# The bridge (User:bridge) and spoke2, which pulls through it over HTTP.
BRIDGE_PORT=$(free_port)
api_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$api_key" | "$BRIDGE" --hash-key - --name spoke2 --perms pull >"$TOPO_DIR/bridge-keys"
topo_conf bridge instance.id=hub role=hub "${bridge_kafka[@]}" "${common[@]}" bridge.listen=127.0.0.1 \
    bridge.port="$BRIDGE_PORT" bridge.plain_http=true bridge.keys_file="$TOPO_DIR/bridge-keys"
topo_conf spoke2 instance.id=spoke2 role=spoke store.dsn="\"$(topo_dsn spoke2)\"" "${common[@]}" \
    transport=http bridge.url="http://127.0.0.1:$BRIDGE_PORT" bridge.api_key="$api_key"
topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf"
topo_start spoke "$CONSUMER" -c "$TOPO_DIR/spoke.conf"
topo_start bridge "$BRIDGE" -c "$TOPO_DIR/bridge.conf"
topo_start spoke2 "$CONSUMER" -c "$TOPO_DIR/spoke2.conf"
sleep 1
topo_check_alive producer spoke bridge spoke2 || fail "a daemon died at start"

"$SRC/deploy/local/demo-data" --assessments 300 --seed 14 >"$TOPO_DIR/sample.jsonl"
topo_cli hub import "$TOPO_DIR/sample.jsonl" >>"$TOPO_DIR/cli.log" 2>&1 ||
    { tail -n 5 "$TOPO_DIR/cli.log"; fail "importing the sample on the hub failed"; }
topo_wait_converged 90 hub spoke spoke2 ||
    { topo_check_alive producer spoke bridge spoke2; fail "the spokes did not converge"; }
topo_check_alive producer spoke bridge spoke2 || fail "a daemon died"
[[ $(topo_dead_letters spoke) == 0 && $(topo_dead_letters spoke2) == 0 ]] || fail "dead letters on a spoke"
echo "ok (SASL_SSL, least privilege): spoke (Kafka) and spoke2 (bridge) equal the hub, $(topo_counts hub) ($(srl_elapsed "$t0"))"
topo_stop spoke2 || fail "sysrepl-consumer (http) did not stop on SIGTERM"
topo_stop bridge || fail "sysrepl-bridge did not stop on SIGTERM"

# The producer holds its store's lock: a second one would wait for it.
topo_stop spoke || fail "sysrepl-consumer did not stop on SIGTERM"
topo_stop producer || fail "sysrepl-producer did not stop on SIGTERM"

# ---- 2. refusals at start ------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=not the broker's CA" \
    -keyout "$RUN_DIR/wrong-ca.key" -out "$RUN_DIR/wrong-ca.crt" >/dev/null 2>&1
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$RUN_DIR/wrong.password"
# A host name the certificate does not name: 127.0.0.2, forwarded to the
# broker, so the TLS handshake reaches it and fails on the name alone.
FWD_PORT=$(free_port)
python3 -c '
import socket, sys, threading
lst = socket.create_server(("127.0.0.2", int(sys.argv[1])))
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = lst.accept()
    u = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
' "$FWD_PORT" "$SRL_KAFKA_PORT" &
FORWARDER=$!

# expect_refused WHAT LOG PATTERN CMD...: CMD exits 1 within 30 s, and its
# log has exactly one error line, which matches PATTERN.
expect_refused() {
    local what=$1 log=$2 pattern=$3 rc=0 errors
    shift 3
    timeout 30 "$@" >"$log" 2>&1 || rc=$?
    [[ $rc == 1 ]] || { cat "$log"; fail "$what: exit status $rc, want 1 (124: it waited instead)"; }
    errors=$(grep -c -e 'level=error' -e '^sysrepl' "$log" || true)
    [[ $errors == 1 ]] || { cat "$log"; fail "$what: $errors error lines, want 1"; }
    grep -E -e "$pattern" "$log" | grep -q -e 'level=error' -e '^sysrepl' ||
        { cat "$log"; fail "$what: the error line does not match /$pattern/"; }
    echo "ok ($what): exit 1: $(grep -m1 -o -E "${pattern}.{0,60}" "$log")"
}
consumer=("$CONSUMER" -c "$TOPO_DIR/spoke.conf")
producer=("$PRODUCER" -c "$TOPO_DIR/producer.conf")
L=$TOPO_DIR
expect_refused "consumer, wrong password" "$L/wrong-pw-consumer.log" 'invalid credentials|Invalid username or password' \
    "${consumer[@]}" -X kafka.sasl.password="@$RUN_DIR/wrong.password"
expect_refused "producer, wrong password" "$L/wrong-pw-producer.log" 'invalid credentials|Invalid username or password' \
    "${producer[@]}" -X kafka.sasl.password="@$RUN_DIR/wrong.password"
expect_refused "consumer, unknown user" "$L/unknown-user.log" 'invalid credentials|Invalid username or password' \
    "${consumer[@]}" -X kafka.sasl.username=nobody
expect_refused "consumer, untrusted CA" "$L/wrong-ca.log" 'certificate verify failed' \
    "${consumer[@]}" -X kafka.ssl.ca.location="$RUN_DIR/wrong-ca.crt"
expect_refused "producer, untrusted CA" "$L/wrong-ca-producer.log" 'certificate verify failed' \
    "${producer[@]}" -X kafka.ssl.ca.location="$RUN_DIR/wrong-ca.crt"
expect_refused "consumer, host name not in the certificate" "$L/hostname.log" "does not name the host" \
    "${consumer[@]}" -X kafka.bootstrap.servers="127.0.0.2:$FWD_PORT"
bridge=("$BRIDGE" -c "$TOPO_DIR/bridge.conf")
expect_refused "bridge, wrong password" "$L/wrong-pw-bridge.log" 'Invalid username or password' \
    "${bridge[@]}" -X kafka.sasl.password="@$RUN_DIR/wrong.password"
# Missing ACLs: spoke may not create the hub's topics; bridge may, but not
# use the hub's reader group; outsider may not even see the topics.
expect_refused "producer as spoke, no Create ACL" "$L/acl-producer.log" "not authorized to Create topic $P\." \
    "${producer[@]}" -X kafka.sasl.username=spoke -X kafka.sasl.password="@$SEC/spoke.password"
expect_refused "producer as bridge, no group ACL" "$L/acl-producer-group.log" \
    "not authorized to Read group sysrepl-producer-reader" \
    "${producer[@]}" -X kafka.sasl.username=bridge -X kafka.sasl.password="@$SEC/bridge.password"
expect_refused "consumer as reader, no group ACL" "$L/acl-consumer-group.log" \
    "not authorized to Describe group sysrepl.spoke" \
    "${consumer[@]}" -X kafka.sasl.username=reader -X kafka.sasl.password="@$SEC/reader.password"
expect_refused "consumer as outsider, no Describe ACL" "$L/acl-consumer.log" "not authorized to Describe topic $P\." \
    "${consumer[@]}" -X kafka.sasl.username=outsider -X kafka.sasl.password="@$SEC/outsider.password"

# ---- 3. passwords rotated under a running hub and spoke -------------------
# The broker gets new passwords for hub and spoke (its PLAIN user list is
# rewritten at start) while the programs keep the old ones: each logs the
# refusal, says so in status, keeps retrying, and goes on once its password
# works again; the change made meanwhile arrives.
topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf"
topo_start spoke "$CONSUMER" -c "$TOPO_DIR/spoke.conf"
# Both fully up: a change goes through.
topo_cli hub policy put '{"name":"Before rotation","description":"the daemons run","feeds":[]}' >/dev/null
topo_wait_converged 60 hub spoke || fail "the restarted producer and spoke did not converge"
restart_broker() {
    "$KAFKA" stop >/dev/null 2>&1 || fail "stopping the broker failed"
    "$KAFKA" start >/dev/null 2>&1 || fail "restarting the broker failed"
}
for user in hub spoke; do
    cp "$SEC/$user.password" "$RUN_DIR/$user.password.old"
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SEC/$user.password"
done
restart_broker
topo_cli hub policy put '{"name":"Rotated","description":"written while hub and spoke are refused","feeds":[]}' >/dev/null
refused() { grep -q 'error=_AUTHENTICATION' "$TOPO_DIR/$1.log"; }
status_shows() { topo_cli "$1" status 2>&1 | grep -q 'warning:.*_AUTHENTICATION'; }
for d in producer:hub spoke:spoke; do
    srl_wait_until 60 refused "${d%%:*}" || fail "the running ${d%%:*} did not log the refusal"
    srl_wait_until 60 status_shows "${d#*:}" ||
        { topo_cli "${d#*:}" status; fail "sysrepl status of ${d#*:} does not show the refusal"; }
done
topo_check_alive producer spoke || fail "a daemon died when its password was refused; want retries"
echo "ok (rotated passwords): producer and consumer log the refusal, status shows it, both keep running:"
topo_cli spoke status 2>&1 | grep -m1 -o 'warning:.*_AUTHENTICATION.\{0,50\}'
for user in hub spoke; do cp "$RUN_DIR/$user.password.old" "$SEC/$user.password"; done
restart_broker
topo_wait_converged 90 hub spoke || fail "the spoke did not converge once the passwords worked again"
topo_check_alive producer spoke || fail "a daemon died"
echo "ok (rotated passwords): back to the old passwords, the change made meanwhile reached the spoke ($(srl_elapsed "$t0"))"
topo_stop spoke || fail "sysrepl-consumer did not stop on SIGTERM"
topo_stop producer || fail "sysrepl-producer did not stop on SIGTERM"

# ---- 4. no password in any log -------------------------------------------
topo_sanitizer_reports || fail "a sanitizer report in a daemon's log (build with -DSRL_SANITIZE=ON)"
for pwfile in "$SEC"/{admin,hub,spoke,bridge,outsider,reader}.password "$RUN_DIR"/*.password.old; do
    pw=$(<"$pwfile")
    if grep -rlF -- "$pw" "$TOPO_DIR" "$SRL_STATE_DIR/kafka/server.log" "$SRL_STATE_DIR/kafka/stdout.log"; then
        fail "the password in $pwfile is in the log files above"
    fi
done
echo "ok: no password of admin, hub, spoke, bridge, outsider or reader in $(cat "$TOPO_DIR"/*.log "$SRL_STATE_DIR"/kafka/*.log | wc -l) log lines"

OK=1
echo "PASS ($(srl_elapsed "$t0"))"
