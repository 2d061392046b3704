#!/usr/bin/env bash
# Integration (issue 17): sysrepl's topics in the Confluent ecosystem, with
# the real programs on a unique topic.prefix and fresh databases.
#   1. Mixed topic: the hub starts with value.format = single-object, is
#      switched to confluent mid-stream (registering its writer schemas at
#      the bridge, schema.registry.url, and publishing a snapshot), and a
#      Kafka spoke and an http spoke converge across the switch.
#   2. The bridge's Schema Registry API answers like a registry (ids,
#      subjects, versions, lookup, config, 409 for an incompatible schema,
#      error_code bodies).
#   3. The Confluent Python client (confluent-kafka from PyPI: a client we do
#      not write), pointed at the bridge, reads every record of every content
#      topic: the newest value of each key decodes to the entity of the hub's
#      `sysrepl export`.
#   4. Its AvroSerializer registers a v2 assessment-type schema through the
#      bridge and writes a record with it; both spokes apply it.
#   5. A Confluent value whose schema id nobody knows (not on the schema
#      topic, 404 at the registry) is a dead letter naming the id.
#   5b. An id only a registry knows (a second bridge serving other topics)
#      is resolved there by both spokes (schema.registry.url), and applied.
#   6. A registry that refuses the hub's writer schema stops the producer
#      (exit 2) with the registry's message.
# The bridge serves HTTPS: every registry client verifies it with a CA file.
# Needs SRL_PYTHON with confluent-kafka (deploy/local/install-deps). Built
# with -DSRL_SANITIZE=ON, a sanitizer report in any daemon's log fails it.
set -euo pipefail
SRL_PROG=test_confluent_interop

if [[ -z ${SRL_TEST_PG_DSN:-} || -z ${SRL_TEST_KAFKA:-} ]]; then
    echo "SKIP: SRL_TEST_PG_DSN and SRL_TEST_KAFKA are not set (eval \"\$(deploy/local/env)\")"
    exit 77
fi
if [[ -z ${SRL_PYTHON:-} ]]; then
    echo "SKIP: SRL_PYTHON is not set (a python with confluent-kafka; see deploy/local/install-deps)"
    exit 77
fi
"$SRL_PYTHON" -c 'import confluent_kafka.schema_registry.avro' 2>/dev/null ||
    { echo "FAIL: $SRL_PYTHON cannot import confluent_kafka (run deploy/local/install-deps)"; exit 1; }
SRC=${SRL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export SRL_BUILD_DIR=${SRL_BUILD_DIR:-$SRC/build}
if [[ $SRL_TEST_PG_DSN =~ port=([0-9]+) ]]; then export SRL_PG_PORT=${BASH_REMATCH[1]}; fi
# shellcheck source=deploy/local/lib.sh
source "$SRC/deploy/local/lib.sh"
# shellcheck source=deploy/local/topology.sh
source "$SRC/deploy/local/topology.sh"

id=$$_$(date +%s%N | tail -c 8)
TOPO_DIR=$(mktemp -d /tmp/srl-cfl.XXXXXX)
TOPO_DB_PREFIX=srl_cfl_$id
TOPO_TOPIC=cfl-$id
INSTANCES=(hub spoke_k spoke_h)
OK=0
CLIENT=("$SRL_PYTHON" "$SRC/tests/integration/confluent_client.py")

cleanup() {
    local rc=$?
    set +e
    topo_stop_all 2>/dev/null
    if ! topo_sanitizer_reports; then
        echo "FAIL: a sanitizer report in a daemon's log (above)"
        OK=0
        ((rc)) || rc=1
    fi
    local inst
    for inst in "${INSTANCES[@]}"; do
        "${TOPO_PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS \"$(topo_db "$inst")\" WITH (FORCE)" \
            >/dev/null 2>&1
    done
    if ((OK)); then
        rm -rf "$TOPO_DIR"
    else
        for n in bridge registry producer spoke_k spoke_h; do
            [[ -f $TOPO_DIR/$n.log ]] && { echo "--- tail of $n.log"; tail -n 15 "$TOPO_DIR/$n.log"; }
        done
        echo "kept $TOPO_DIR"
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
topo_setup
topo_stores "${INSTANCES[@]}"

# ---- keys, configs, daemons ---------------------------------------------
bridge_port=$(srl_free_port)
bridge_url=https://127.0.0.1:$bridge_port
# The bridge speaks TLS with a throwaway certificate: every client, the
# registry clients included (schema.registry.ca_file), verifies it.
ca=$TOPO_DIR/bridge-cert.pem
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TOPO_DIR/bridge-key.pem" -out "$ca" -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || fail "openssl req"
export SRL_REGISTRY_CA=$ca
push_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
pull_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
{
    printf '%s' "$push_key" | "$BRIDGE" --hash-key - --name hub-push --perms pull,push
    printf '%s' "$pull_key" | "$BRIDGE" --hash-key - --name spoke-h --perms pull
} >"$TOPO_DIR/bridge-keys"

kafka=kafka.bootstrap.servers=$SRL_TEST_KAFKA
common=(topic.prefix="$TOPO_TOPIC" log.level=info stats.interval_ms=5s)
topo_conf bridge instance.id=hub role=hub "$kafka" "${common[@]}" value.format=confluent \
    bridge.listen=127.0.0.1 bridge.port="$bridge_port" bridge.tls_cert="$ca" \
    bridge.tls_key="$TOPO_DIR/bridge-key.pem" bridge.keys_file="$TOPO_DIR/bridge-keys"
hub_conf=(instance.id=hub role=hub store.dsn="\"$(topo_dsn hub)\"" "$kafka" "${common[@]}")
topo_conf producer "${hub_conf[@]}" value.format=single-object
# The spokes ask the bridge for schema ids not on <prefix>.schemas.
topo_conf spoke_k instance.id=spoke_k role=spoke store.dsn="\"$(topo_dsn spoke_k)\"" "$kafka" "${common[@]}" \
    schema.registry.url="$bridge_url" schema.registry.basic_auth="spoke:$pull_key" schema.registry.ca_file="$ca"
topo_conf spoke_h instance.id=spoke_h role=spoke store.dsn="\"$(topo_dsn spoke_h)\"" "${common[@]}" \
    transport=http bridge.url="$bridge_url" bridge.api_key="$pull_key" bridge.timeout_ms=10s bridge.ca_file="$ca"

bridge_up() { curl -fsS -o /dev/null --max-time 2 --cacert "$ca" "$bridge_url/health" 2>/dev/null; }
topo_start bridge "$BRIDGE" -c "$TOPO_DIR/bridge.conf"
srl_wait_until 30 bridge_up || { topo_check_alive bridge; fail "the bridge did not answer /health within 30 s"; }
topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf"
topo_start spoke_k "$CONSUMER" -c "$TOPO_DIR/spoke_k.conf"
topo_start spoke_h "$CONSUMER" -c "$TOPO_DIR/spoke_h.conf"
sleep 1
topo_check_alive bridge producer spoke_k spoke_h

check_clean() { # check_clean STEP: no dead letters, hub outbox empty
    local inst n
    for inst in spoke_k spoke_h; do
        n=$(topo_dead_letters "$inst")
        [[ $n == 0 ]] || fail "$1: $inst has $n dead letters: $(topo_sql "$inst" 'SELECT reason FROM sysrepl.dead_letters LIMIT 1')"
    done
}
converge() { # converge STEP
    topo_wait_converged 60 hub spoke_k spoke_h || {
        topo_check_alive bridge producer spoke_k spoke_h
        fail "$1: the spokes did not converge within 60 s"
    }
    topo_check_alive bridge producer spoke_k spoke_h
    check_clean "$1"
    echo "ok ($1): both spokes equal the hub, $(topo_counts hub) ($(srl_elapsed "$t0"))"
}

# ---- 1. single-object, then switched to confluent mid-stream --------------
"$SRC/deploy/local/demo-data" --assessments 300 --seed 17 >"$TOPO_DIR/sample.jsonl"
topo_cli hub import "$TOPO_DIR/sample.jsonl" >>"$TOPO_DIR/cli.log" 2>&1 ||
    { tail -n 5 "$TOPO_DIR/cli.log"; fail "importing the sample on the hub failed"; }
converge "single-object"

topo_stop producer || fail "the producer did not stop on SIGTERM"
topo_conf producer "${hub_conf[@]}" value.format=confluent \
    schema.registry.url="$bridge_url" schema.registry.basic_auth="hub:$push_key" schema.registry.ca_file="$ca"
# Changes while no producer runs, then the confluent producer with a
# snapshot: every live key gets a Confluent record.
topo_cli hub type put '{"name":"Vendor Review","description":"new custom type","severity_class":"custom","emitted_severity":"low","default_expiry_days":14}' >/dev/null
mapfile -t akeys < <(topo_sql hub "SELECT key FROM vulnerability_assessments ORDER BY key LIMIT 20")
for k in "${akeys[@]:0:5}"; do topo_cli hub assessment delete "$k" >/dev/null; done
topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf" --snapshot
for k in "${akeys[@]:5:5}"; do
    topo_cli hub assessment get "$k" | jq -c '.comment = "after the switch" | .assessment_type = "Vendor Review"' |
        topo_cli hub assessment put - >/dev/null
done
topo_cli hub policy get Global | jq -c '.description = "edited after the switch"' | topo_cli hub policy put - >/dev/null
converge "switched to confluent"
grep -q 'writer schema registered.*subject="\?'"$TOPO_TOPIC"'.policies-value' "$TOPO_DIR/producer.log" ||
    fail "the producer logged no registration of its policy schema at the bridge"

# ---- 1b. a push instance through the bridge (value.format = confluent there)
topo_stop producer || fail "the producer did not stop on SIGTERM"
topo_conf producer "${hub_conf[@]}" transport=http bridge.url="$bridge_url" bridge.api_key="$push_key" \
    bridge.timeout_ms=10s bridge.ca_file="$ca"
topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf"
topo_cli hub policy put '{"name":"Pushed Through The Bridge","unassessed":"warn"}' >/dev/null
topo_cli hub type get "Vendor Review" | jq -c '.description = "pushed through the bridge"' | topo_cli hub type put - >/dev/null
converge "pushed through the bridge"

# ---- 2. the registry API ------------------------------------------------
"${CLIENT[@]}" api "$bridge_url" "$TOPO_TOPIC" "$pull_key" "$push_key" "$SRC" || fail "registry API"

# ---- 3. the Confluent client reads every record ---------------------------
topo_export hub "$TOPO_DIR/export-hub.jsonl" || fail "export of the hub"
out=$("${CLIENT[@]}" read "$SRL_TEST_KAFKA" "$TOPO_TOPIC" "$bridge_url" "$pull_key" "$TOPO_DIR/export-hub.jsonl") ||
    fail "the Confluent client: $out"
echo "$out"
[[ $out =~ confluent=([0-9]+),\ single-object=([0-9]+) ]] || fail "no counts in: $out"
((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] > 0)) || fail "the topics are not mixed: $out"

# ---- 4. its AvroSerializer writes, the spokes apply -----------------------
sid=$("${CLIENT[@]}" write "$SRL_TEST_KAFKA" "$TOPO_TOPIC" "$bridge_url" "$push_key" "$SRC" "Confluent Written" 9000000000) ||
    fail "the AvroSerializer: $sid"
applied() { # applied SPOKE: the type arrived with its fields
    topo_cli "$1" type get "Confluent Written" 2>/dev/null |
        jq -e '.description == "written by the Confluent Python client" and .default_expiry_days == 9 and .color == null' >/dev/null
}
for s in spoke_k spoke_h; do
    srl_wait_until 30 applied "$s" || fail "$s did not apply the record the Confluent client wrote (schema id $sid)"
done
check_clean "Confluent writer"
echo "ok (Confluent writer): schema id $sid registered through the bridge; both spokes applied the record"

# ---- 5. an unknown schema id is a dead letter ----------------------------
"${CLIENT[@]}" raw "$SRL_TEST_KAFKA" "$TOPO_TOPIC.assessment-types" "No Such Schema" 000000303902 9000000001 ||
    fail "producing the record of an unknown id"
dead() { [[ $(topo_sql spoke_k "SELECT count(*) FROM sysrepl.dead_letters WHERE reason LIKE '%unknown schema id 12345%'") == 1 ]]; }
srl_wait_until 30 dead || fail "spoke_k: no dead letter naming schema id 12345: $(topo_sql spoke_k 'SELECT reason FROM sysrepl.dead_letters')"
echo "ok (unknown id): $(topo_sql spoke_k 'SELECT reason FROM sysrepl.dead_letters')"

# ---- 5b. an id only a registry knows ---------------------------------------
# A second bridge serves other topics (its own <prefix>.schemas); a schema
# registered there is on no topic the spokes read. Pointed at it, both
# spokes (Kafka and http) resolve the id by asking it, and apply.
reg_port=$(srl_free_port)
reg_url=https://127.0.0.1:$reg_port
topo_conf registry instance.id=registry role=hub "$kafka" topic.prefix="$TOPO_TOPIC-reg" log.level=info \
    stats.interval_ms=5s bridge.listen=127.0.0.1 bridge.port="$reg_port" bridge.tls_cert="$ca" \
    bridge.tls_key="$TOPO_DIR/bridge-key.pem" bridge.keys_file="$TOPO_DIR/bridge-keys"
topo_start registry "$BRIDGE" -c "$TOPO_DIR/registry.conf"
reg_up() { curl -fsS -o /dev/null --max-time 2 --cacert "$ca" "$reg_url/health" 2>/dev/null; }
srl_wait_until 30 reg_up || { topo_check_alive registry; fail "the second bridge did not answer /health within 30 s"; }
for s in spoke_k spoke_h; do
    topo_stop "$s" || fail "$s did not stop on SIGTERM"
    sed -i '/^schema.registry/d' "$TOPO_DIR/$s.conf"
    printf 'schema.registry.url = %s\nschema.registry.basic_auth = spoke:%s\nschema.registry.ca_file = %s\n' \
        "$reg_url" "$pull_key" "$ca" >>"$TOPO_DIR/$s.conf"
    topo_start "$s" "$CONSUMER" -c "$TOPO_DIR/$s.conf"
done
sid2=$("${CLIENT[@]}" write "$SRL_TEST_KAFKA" "$TOPO_TOPIC" "$reg_url" "$push_key" "$SRC" "Registry Only" 9000000002 "$TOPO_TOPIC-reg") ||
    fail "the AvroSerializer at the second bridge: $sid2"
registry_only() { topo_cli "$1" type get "Registry Only" >/dev/null 2>&1; }
for s in spoke_k spoke_h; do
    srl_wait_until 30 registry_only "$s" ||
        fail "$s did not apply a record whose schema id $sid2 only the registry knows: $(topo_sql "$s" 'SELECT reason FROM sysrepl.dead_letters ORDER BY id DESC LIMIT 1')"
    grep -q "writer schema resolved.*id=$sid2" "$TOPO_DIR/$s.log" || fail "$s: no 'writer schema resolved' line for id $sid2"
done
echo "ok (id from a registry): schema id $sid2, on no topic the spokes read, resolved at $reg_url by both spokes"

# ---- 6. a registry that refuses the hub's schema stops the producer -------
# (here: the key may not register, 403; an incompatible schema, 409, takes
# the same path: any final answer of the registry)
topo_stop producer || fail "the producer did not stop on SIGTERM"
topo_conf producer-refused "${hub_conf[@]}" value.format=confluent \
    schema.registry.url="$bridge_url" schema.registry.basic_auth="hub:$pull_key" schema.registry.ca_file="$ca"
rc=0
timeout 60 "$PRODUCER" -c "$TOPO_DIR/producer-refused.conf" >"$TOPO_DIR/refused.log" 2>&1 || rc=$?
[[ $rc == 2 ]] || { tail -n 5 "$TOPO_DIR/refused.log"; fail "refused registration: the producer exited $rc, want 2"; }
grep -q 'level=error.*refused to start.*HTTP 403.*lacks the push permission' "$TOPO_DIR/refused.log" ||
    { tail -n 5 "$TOPO_DIR/refused.log"; fail "refused registration: no error line with the registry's message"; }
echo "ok (registry refuses): the producer exited 2: $(grep -m1 -o 'HTTP 403[^"]*' "$TOPO_DIR/refused.log")"

OK=1
echo "PASS ($(srl_elapsed "$t0"))"
