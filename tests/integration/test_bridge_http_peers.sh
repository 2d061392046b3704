#!/usr/bin/env bash
# Integration: both http peers of the bridge with the real programs, on a
# unique topic.prefix and fresh databases (issue 7).
#   1. A push instance through the bridge reaches direct spokes: the hub's
#      sysrepl-producer runs with transport = http and posts to a
#      sysrepl-bridge (plain HTTP on 127.0.0.1, a push key); spoke_k reads
#      Kafka directly.
#   2. A spoke through the bridge converges like a direct one: spoke_h runs
#      sysrepl-consumer with transport = http (a pull key) next to spoke_k.
# The setup is what docs/operations.md tells an operator to do: keys made
# with `sysrepl-bridge --hash-key`, the bridge creates the topics and
# publishes its writer schemas at start. Content is loaded and changed on the
# hub with the CLI (types incl. custom ones, 2,000 assessments, policies with
# rules and exceptions; then puts and deletes of each kind); both spokes'
# `sysrepl export` must equal the hub's (the comparison of the chaos test),
# with no dead letters and an empty hub outbox (`sysrepl status --json`).
# Last, a wrong API key: the http consumer exits 4 naming HTTP 401.
# Built with -DSRL_SANITIZE=ON (tests/run runs it so in build-asan/), a
# sanitizer report in any daemon's log fails the test.
set -euo pipefail
SRL_PROG=test_bridge_http_peers

if [[ -z ${SRL_TEST_PG_DSN:-} || -z ${SRL_TEST_KAFKA:-} ]]; then
    echo "SKIP: SRL_TEST_PG_DSN and SRL_TEST_KAFKA are not set (eval \"\$(deploy/local/env)\")"
    exit 77
fi
SRC=${SRL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
export SRL_BUILD_DIR=${SRL_BUILD_DIR:-$SRC/build}
# topology.sh's psql goes to 127.0.0.1:$SRL_PG_PORT as postgres, like the DSN.
if [[ $SRL_TEST_PG_DSN =~ port=([0-9]+) ]]; then export SRL_PG_PORT=${BASH_REMATCH[1]}; fi
# shellcheck source=deploy/local/lib.sh
source "$SRC/deploy/local/lib.sh"
# shellcheck source=deploy/local/topology.sh
source "$SRC/deploy/local/topology.sh"

id=$$_$(date +%s%N | tail -c 8)
TOPO_DIR=$(mktemp -d /tmp/srl-bhp.XXXXXX)
TOPO_DB_PREFIX=srl_bhp_$id
TOPO_TOPIC=bhp-$id
INSTANCES=(hub spoke_k spoke_h)
OK=0

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
        for n in bridge producer spoke_k spoke_h; do
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
bridge_url=http://127.0.0.1:$bridge_port
push_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
pull_key=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
{
    printf '%s' "$push_key" | "$BRIDGE" --hash-key - --name hub-push --perms push
    printf '%s' "$pull_key" | "$BRIDGE" --hash-key - --name spoke-h --perms pull
} >"$TOPO_DIR/bridge-keys"

kafka=kafka.bootstrap.servers=$SRL_TEST_KAFKA
common=(topic.prefix="$TOPO_TOPIC" log.level=info stats.interval_ms=5s)
topo_conf bridge instance.id=hub role=hub "$kafka" "${common[@]}" \
    bridge.listen=127.0.0.1 bridge.port="$bridge_port" bridge.plain_http=true \
    bridge.keys_file="$TOPO_DIR/bridge-keys"
topo_conf producer instance.id=hub role=hub store.dsn="\"$(topo_dsn hub)\"" "${common[@]}" \
    transport=http bridge.url="$bridge_url" bridge.api_key="$push_key" bridge.timeout_ms=10s
topo_conf spoke_k instance.id=spoke_k role=spoke store.dsn="\"$(topo_dsn spoke_k)\"" "$kafka" "${common[@]}"
topo_conf spoke_h instance.id=spoke_h role=spoke store.dsn="\"$(topo_dsn spoke_h)\"" "${common[@]}" \
    transport=http bridge.url="$bridge_url" bridge.api_key="$pull_key" bridge.timeout_ms=10s

bridge_up() { curl -fsS -o /dev/null --max-time 2 "$bridge_url/health" 2>/dev/null; }
topo_start bridge "$BRIDGE" -c "$TOPO_DIR/bridge.conf"
srl_wait_until 30 bridge_up || { topo_check_alive bridge; fail "the bridge did not answer /health within 30 s"; }

# A custom type no assessment uses (deleted later), so the hub is not empty.
topo_cli hub type put '{"name":"Short Lived","description":"deleted by the test","severity_class":"warn"}' >/dev/null

# A push instance starts on the empty topics the bridge created: its
# first-start snapshot publishes the hub's state through the bridge (there
# is nothing to tombstone on empty topics, so no read-back is needed).
topo_start producer "$PRODUCER" -c "$TOPO_DIR/producer.conf"
producer_gone() { ! topo_alive producer; }
if srl_wait_until 3 producer_gone; then
    tail -n 10 "$TOPO_DIR/producer.log"
    fail "the http producer exited at start"
fi
topo_start spoke_k "$CONSUMER" -c "$TOPO_DIR/spoke_k.conf"
topo_start spoke_h "$CONSUMER" -c "$TOPO_DIR/spoke_h.conf"
sleep 1
topo_check_alive bridge producer spoke_k spoke_h
echo "ok: bridge on $bridge_url, producer (http), spoke_k (kafka), spoke_h (http) running ($(srl_elapsed "$t0"))"

# ---- the first load -----------------------------------------------------
"$SRC/deploy/local/demo-data" --assessments 2000 --seed 7 >"$TOPO_DIR/sample.jsonl"
topo_cli hub import "$TOPO_DIR/sample.jsonl" >>"$TOPO_DIR/cli.log" 2>&1 ||
    { tail -n 5 "$TOPO_DIR/cli.log"; fail "importing the sample on the hub failed"; }

check_clean() { # check_clean STEP: no dead letters, hub outbox empty
    local inst n
    for inst in spoke_k spoke_h; do
        n=$(topo_cli "$inst" status --json | jq -r '.dead_letters.count')
        [[ $n == 0 ]] || fail "$1: $inst has $n dead letters"
    done
    n=$(topo_cli hub status --json | jq -r '.outbox.depth')
    [[ $n == 0 ]] || fail "$1: the hub's outbox holds $n rows"
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
converge "first load"

# ---- puts and deletes of each kind --------------------------------------
topo_cli hub type put '{"name":"Vendor Review","description":"new custom type","color":"#00897b","severity_class":"custom","emitted_severity":"low","default_expiry_days":14}' >/dev/null
topo_cli hub type get Investigating | jq -c '.description = "edited by the test"' | topo_cli hub type put - >/dev/null
topo_cli hub type delete "Short Lived" >/dev/null
mapfile -t akeys < <(topo_sql hub "SELECT key FROM vulnerability_assessments ORDER BY key LIMIT 30")
for k in "${akeys[@]:0:10}"; do topo_cli hub assessment delete "$k" >/dev/null; done
for k in "${akeys[@]:10:5}"; do
    topo_cli hub assessment get "$k" | jq -c '.comment = "re-assessed by the test" | .assessment_type = "Vendor Review"' |
        topo_cli hub assessment put - >/dev/null
done
topo_cli hub policy put '{"name":"Bridge Test","description":"put by the test","feeds":["npm-internal"],"unassessed":"warn","by_assessment_type":{"Blocked":"noncompliant","Vendor Review":"warn"},"by_license":{"MIT":"compliant","GPL-3.0-only":"noncompliant"},"exceptions":[{"package":"left-pad","version_range":"[1.0,2.0)","rule_groups":["license"]}]}' >/dev/null
topo_cli hub policy get Global | jq -c '.exceptions += [{"package":"bridge-*","rule_groups":["deprecation"]}]' |
    topo_cli hub policy put - >/dev/null
topo_cli hub policy delete "Legacy Apps" >/dev/null
converge "puts and deletes"

# ---- an idle spoke costs about nothing ----------------------------------
# Caught up and nothing new: spoke_h must sit in long polls (up to
# bridge.long_poll_max_ms, 30 s by default) instead of asking again at once;
# it once pulled about 176 times a second. Count the bridge's pull requests
# over 10 s: one long-poll round per partition at most, plus the first
# non-waiting round of each fetch.
pulls() {
    curl -fsS --max-time 5 -H "X-ApiKey: $pull_key" "$bridge_url/metrics" |
        awk '/^sysrepl_bridge_requests_total\{route="pull"/ {n += $2} END {printf "%d\n", n}'
}
bridge_state() { curl -fsS --max-time 5 -H "X-ApiKey: $pull_key" "$bridge_url/api/replication/v1/state"; }
highs() { bridge_state | jq -c '[.topics[].partitions[].high_watermark]'; }
# The producer may still be sending the tail of the step above: wait until
# no record has arrived for 3 s (and spoke_h has had them).
quiet() {
    local a b
    a=$(highs)
    sleep 3
    b=$(highs)
    [[ $a == "$b" ]]
}
srl_wait_until 60 quiet || fail "idle spoke: records kept arriving for 60 s"
h0=$(highs)
p0=$(pulls)
sleep 10
p1=$(pulls)
[[ $(highs) == "$h0" ]] || fail "idle spoke: records arrived during the 10 s measured; not idle"
idle_pulls=$((p1 - p0))
npart=$(bridge_state | jq '[.topics[].partitions | length] | add')
((idle_pulls <= 4 * npart)) ||
    fail "idle spoke: $idle_pulls pull requests in 10 s over $npart partitions (want at most $((4 * npart)): long polls)"
echo "ok (idle spoke): $idle_pulls pull requests in 10 s over $npart partitions"

# ---- a wrong API key ----------------------------------------------------
topo_stop spoke_h
rc=0
timeout 30 "$CONSUMER" -c "$TOPO_DIR/spoke_h.conf" -X bridge.api_key=not-a-valid-key \
    >"$TOPO_DIR/wrong-key.log" 2>&1 || rc=$?
[[ $rc == 4 ]] || { cat "$TOPO_DIR/wrong-key.log"; fail "wrong key: sysrepl-consumer exited $rc, want 4"; }
grep -q 'level=error.*bridge answered 401' "$TOPO_DIR/wrong-key.log" ||
    { cat "$TOPO_DIR/wrong-key.log"; fail "wrong key: no error line naming HTTP 401"; }
if grep -q -- 'not-a-valid-key' "$TOPO_DIR/wrong-key.log" "$TOPO_DIR/bridge.log"; then
    fail "wrong key: the key itself was logged"
fi
echo "ok (wrong key): sysrepl-consumer exited 4: $(grep -m1 -o 'bridge answered 401[^"]*' "$TOPO_DIR/wrong-key.log")"

OK=1
echo "PASS ($(srl_elapsed "$t0"))"
