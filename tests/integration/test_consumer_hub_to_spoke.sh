#!/usr/bin/env bash
# Integration: hub -> spoke with the real programs. Content written on the
# hub with the CLI (import, put, delete), published by sysrepl-producer,
# applied by sysrepl-consumer: the spoke's content tables equal the hub's
# row for row (origin, version and changed_at included), after the first
# sync and after later changes and deletes.
set -euo pipefail

: "${SRL_TEST_PG_DSN:?run through tests/run or eval \"\$(deploy/local/env)\"}"
: "${SRL_TEST_KAFKA:?run through tests/run or eval \"\$(deploy/local/env)\"}"
BUILD=${SRL_BUILD_DIR:?}
SRC=${SRL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CLI=$BUILD/cli/sysrepl
PRODUCER=$BUILD/producer/sysrepl-producer
CONSUMER=$BUILD/consumer/sysrepl-consumer
for b in "$CLI" "$PRODUCER" "$CONSUMER"; do
    [[ -x $b ]] || { echo "SKIP: $b not built"; exit 0; }
done

id=$$-$(date +%s%N)
prefix=h2s-$id
hub_db=srl_h2s_hub_${id//-/_}
spoke_db=srl_h2s_spoke_${id//-/_}
work=$(mktemp -d)
psql_base() { psql "$SRL_TEST_PG_DSN" -v ON_ERROR_STOP=1 -qAt "$@"; }
cleanup() {
    psql_base -c "DROP DATABASE IF EXISTS $hub_db WITH (FORCE)" 2>/dev/null || true
    psql_base -c "DROP DATABASE IF EXISTS $spoke_db WITH (FORCE)" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
psql_base -c "CREATE DATABASE $hub_db" -c "CREATE DATABASE $spoke_db"
hub_dsn="$SRL_TEST_PG_DSN dbname=$hub_db"
spoke_dsn="$SRL_TEST_PG_DSN dbname=$spoke_db"
common=(-X "topic.prefix=$prefix" -X "kafka.bootstrap.servers=$SRL_TEST_KAFKA")

"$CLI" --dsn "$hub_dsn" -X instance.id=hub-h2s init --role hub >/dev/null
"$CLI" --dsn "$spoke_dsn" -X instance.id=spoke-h2s init --role spoke >/dev/null

# Content: the generator's (tests/tools) types and assessments, and two policies.
python3 "$SRC/tests/tools/gen_assessments.py" 500 7 >"$work/content.jsonl"
cat >>"$work/content.jsonl" <<'EOF'
{"kind":"policies","value":{"name":"Global","description":"the default","feeds":["nuget.org","npmjs"],"unassessed":"warn","by_assessment_type":{"Blocked":"noncompliant","Ignored":"compliant"},"license_undetected":"warn","by_license":{"MIT":"compliant","GPL-3.0-only":"noncompliant"},"deprecated":"warn","unlisted":"noncompliant","exceptions":[{"package":"left-*","version_range":"[1.0,2.0)","rule_groups":["license","deprecation"],"expires_at":"2031-01-01T00:00:00.000Z"}],"risk_profile":{"network_exposure":"high","data_breach":"medium"}}}
{"kind":"policies","value":{"name":"Shared","feeds":[]}}
EOF
"$CLI" --dsn "$hub_dsn" -X instance.id=hub-h2s import "$work/content.jsonl" >/dev/null

# Bounded, so a hang fails in a minute and says which program hung.
publish() {
    timeout 60 "$PRODUCER" -X instance.id=hub-h2s -X "store.dsn=$hub_dsn" "${common[@]}" \
        --once 2>>"$work/producer.log" || {
        echo "FAIL: sysrepl-producer --once did not finish cleanly (status $?)"
        tail -20 "$work/producer.log"
        exit 1
    }
}
sync_spoke() {
    timeout 60 "$CONSUMER" -X instance.id=spoke-h2s -X "store.dsn=$spoke_dsn" "${common[@]}" \
        --until-caught-up 2>>"$work/consumer.log" || {
        echo "FAIL: sysrepl-consumer --until-caught-up did not finish cleanly (status $?)"
        tail -20 "$work/consumer.log"
        exit 1
    }
}
dump() { # dump DSN: every content row, ordered by key
    psql "$1" -qAt -c "SELECT t::text FROM assessment_types t ORDER BY name" \
        -c "SELECT t::text FROM vulnerability_assessments t ORDER BY key" \
        -c "SELECT t::text FROM policies t ORDER BY name"
}
compare() { # compare STEP
    dump "$hub_dsn" >"$work/hub.txt"
    dump "$spoke_dsn" >"$work/spoke.txt"
    if ! diff -q "$work/hub.txt" "$work/spoke.txt" >/dev/null; then
        echo "FAIL ($1): spoke differs from hub"
        diff "$work/hub.txt" "$work/spoke.txt" | head -20
        tail -20 "$work/consumer.log"
        exit 1
    fi
    echo "ok ($1): $(wc -l <"$work/hub.txt") rows equal"
}

publish
sync_spoke
compare "first sync"

# Changes on the hub: updates, deletes of each kind, a re-import.
"$CLI" --dsn "$hub_dsn" -X instance.id=hub-h2s assessment delete 'CVE-2024-0000003|global' >/dev/null
"$CLI" --dsn "$hub_dsn" -X instance.id=hub-h2s assessment delete 'CVE-2024-0000004|feed:npmjs' >/dev/null
"$CLI" --dsn "$hub_dsn" -X instance.id=hub-h2s policy delete Shared >/dev/null
python3 "$SRC/tests/tools/gen_assessments.py" 300 8 >"$work/changes.jsonl"
"$CLI" --dsn "$hub_dsn" -X instance.id=hub-h2s import "$work/changes.jsonl" >/dev/null
publish
sync_spoke
compare "changes and deletes"

[[ $(psql "$spoke_dsn" -qAt -c "SELECT count(*) FROM sysrepl.dead_letters") == 0 ]] || {
    echo "FAIL: dead letters on the spoke"
    exit 1
}
[[ $(psql "$spoke_dsn" -qAt -c "SELECT count(*) FROM sysrepl.outbox") == 0 ]] || {
    echo "FAIL: applying captured changes into the spoke's outbox"
    exit 1
}
echo "PASS"
