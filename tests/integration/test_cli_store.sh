#!/usr/bin/env bash
# test_cli_store.sh - every path of the `sysrepl` admin CLI against a real
# PostgreSQL (a fresh database): init, status, put/get/list/delete of each
# kind, import/export, --help everywhere, and every validation error with
# its exit code (2) and the field it names; the store down (3); a newer
# store (1). Needs SRL_TEST_PG_DSN and SRL_BUILD_DIR (set by ctest/tests/run).
set -uo pipefail

if [[ -z ${SRL_TEST_PG_DSN:-} ]]; then
    echo "skipped: SRL_TEST_PG_DSN is not set (run through tests/run)"
    exit 0
fi
BUILD=${SRL_BUILD_DIR:?SRL_BUILD_DIR not set}
SYSREPL=$BUILD/cli/sysrepl
[[ -x $SYSREPL ]] || { echo "FAIL: $SYSREPL not built"; exit 1; }

db=srl_cli_test_$$_$RANDOM
base=$SRL_TEST_PG_DSN
export SRL_DSN="$base dbname=$db"
work=$(mktemp -d)
cleanup() {
    psql "$base" -qXc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
psql "$base" -qXc "CREATE DATABASE $db" >/dev/null || { echo "FAIL: cannot create $db"; exit 1; }

failures=0
checks=0
# expect CODE PATTERN CMD...: CMD exits with CODE and its output (stdout and
# stderr) contains PATTERN (a grep -E regex; "" matches anything).
expect() {
    local want=$1 pattern=$2
    shift 2
    local out code
    out=$("$@" 2>&1)
    code=$?
    checks=$((checks + 1))
    if [[ $code != "$want" ]]; then
        echo "FAIL: $* -> exit $code, want $want"
        # shellcheck disable=SC2001 # indents every line; ${out//} cannot anchor at each line
        echo "$out" | sed 's/^/    /'
        failures=$((failures + 1))
    elif [[ -n $pattern ]] && ! grep -Eq -- "$pattern" <<<"$out"; then
        echo "FAIL: $* -> output lacks /$pattern/"
        # shellcheck disable=SC2001 # indents every line; ${out//} cannot anchor at each line
        echo "$out" | sed 's/^/    /'
        failures=$((failures + 1))
    fi
}
sql() { psql "$SRL_DSN" -qXtA -v ON_ERROR_STOP=1 -c "$1"; }

S=$SYSREPL

# ---- before init: a store without schema is refused, init creates it
expect 1 "no sysrepl schema \(run sysrepl init\)" "$S" status
expect 0 "schema version 0 -> [0-9]+ \([0-9]+ migrations? applied\)" "$S" init --instance-id hub-a --role hub
want=$(sql "SELECT version FROM sysrepl.schema_version")
expect 0 "nothing to migrate" "$S" init
expect 0 'instance "hub-a", role hub' "$S" init
expect 1 "role: expected hub or spoke" "$S" init --role moon

# ---- help everywhere, made from the same tables as the parser
expect 0 "^usage: sysrepl COMMAND" "$S" --help
expect 1 "usage: sysrepl COMMAND" "$S"
for cmd in init status import export; do
    expect 0 "usage: sysrepl $cmd" "$S" $cmd --help
done
for kind in type assessment policy; do
    expect 0 "subcommands:" "$S" $kind --help
    for sub in put get list delete; do
        expect 0 "usage: sysrepl $kind $sub" "$S" $kind $sub --help
    done
done
expect 0 "--expired" "$S" assessment list --help
expect 0 "exit codes: 0 ok" "$S" assessment put --help
expect 1 'unknown command "frobnicate"' "$S" frobnicate
expect 1 'unknown subcommand "fly"' "$S" type fly
expect 1 "unknown option --colour" "$S" type list --colour
expect 1 "option --limit needs a value" "$S" assessment list --limit
expect 1 "--limit: expected a positive integer" "$S" assessment list --limit 0
expect 1 "expected arguments: KEY" "$S" type get
expect 1 "filter assessments only" "$S" type list --expired
expect 0 "" "$S" schemas

# ---- put, from an argument, a file and stdin
expect 0 'assessment-types "Blocked": stored' \
    "$S" type put '{"name":"Blocked","severity_class":"severe","color":"#ff0000"}'
echo '{"name":"Ignored","severity_class":"ignore"}' > "$work/t.json"
expect 0 'assessment-types "Ignored": stored' "$S" type put -f "$work/t.json"
expect 0 'unchanged' "$S" type put -f "$work/t.json"
expect 0 'assessment-types "Caution": stored' \
    bash -c "echo '{\"name\":\"Caution\",\"severity_class\":\"warn\"}' | $S type put -"
expect 0 'vulnerability-assessments "CVE-2021-44228\|global": stored' \
    "$S" assessment put '{"vulnerability_id":"CVE-2021-44228","scope":{"kind":"global"},"assessment_type":"blocked","comment":"log4shell"}'
expect 0 'vulnerability-assessments "PGV-1234567\|feed:nuget.org": stored' \
    "$S" assessment put '{"vulnerability_id":"PGV-1234567","scope":{"kind":"feed","name":"nuget.org"},"assessment_type":"Ignored","expires_at":"2099-01-01T00:00:00Z"}'
expect 0 'policies "Global": stored' \
    "$S" policy put '{"name":"Global","feeds":["nuget.org"],"unassessed":"warn","by_assessment_type":{"Blocked":"noncompliant"}}'
expect 1 "exactly one" "$S" type put
expect 1 "No such file" "$S" type put -f "$work/missing.json"

# ---- validation errors: exit 2, the message names the field
expect 2 'assessment_type: no assessment type named "Nope"' \
    "$S" assessment put '{"vulnerability_id":"CVE-2021-1111","scope":{"kind":"global"},"assessment_type":"Nope"}'
expect 2 'vulnerability_id: expected an id like' \
    "$S" assessment put '{"vulnerability_id":"CVE-21-x","scope":{"kind":"global"},"assessment_type":"Blocked"}'
expect 2 'color: expected "#rrggbb"' "$S" type put '{"name":"Red","severity_class":"warn","color":"red"}'
expect 2 'unassessed: unknown value "maybe"' "$S" policy put '{"name":"P","unassessed":"maybe"}'
expect 2 'by_assessment_type.Blocked: unknown value "fine"' \
    "$S" policy put '{"name":"P","by_assessment_type":{"Blocked":"fine"}}'
expect 2 'expires_at: 2001-01-01T00:00:00.000Z is already past' \
    "$S" assessment put '{"vulnerability_id":"CVE-2021-2222","scope":{"kind":"global"},"assessment_type":"Blocked","expires_at":"2001-01-01T00:00:00Z"}'
expect 2 'scope.kind: unknown value "galaxy"' \
    "$S" assessment put '{"vulnerability_id":"CVE-2021-2222","scope":{"kind":"galaxy"},"assessment_type":"Blocked"}'
expect 2 'invalid JSON at line 1' "$S" type put '{"name":'
expect 2 'colour: unknown field' "$S" type put '{"name":"X","colour":"#ffffff"}'

# ---- get, list, delete
expect 0 '"comment": "log4shell"' "$S" assessment get 'CVE-2021-44228|global'
expect 0 '"origin": "hub-a"' "$S" type get blocked
expect 4 'no vulnerability-assessments with key "CVE-2000-0000\|global"' "$S" assessment get 'CVE-2000-0000|global'
expect 0 'CVE-2021-44228\|global' "$S" assessment list
expect 0 '^KEY +TYPE' "$S" assessment list
expect 0 'PGV-1234567' "$S" assessment list --type IGNORED
out=$("$S" assessment list --type IGNORED --json)
[[ $(wc -l <<<"$out") == 1 && $out == *'"PGV-1234567"'* ]] || { echo "FAIL: list --type --json: $out"; failures=$((failures + 1)); }
out=$("$S" assessment list --scope global --json)
[[ $(wc -l <<<"$out") == 1 && $out == *'"CVE-2021-44228"'* ]] || { echo "FAIL: list --scope: $out"; failures=$((failures + 1)); }
out=$("$S" assessment list --expired --json)
[[ -z $out ]] || { echo "FAIL: list --expired: $out"; failures=$((failures + 1)); }
out=$("$S" type list --limit 2 --json)
[[ $(wc -l <<<"$out") == 2 ]] || { echo "FAIL: list --limit 2: $out"; failures=$((failures + 1)); }
expect 1 'scope: unknown scope kind "galaxy"' "$S" assessment list --scope galaxy:x
expect 2 'is used by 1 assessment' "$S" type delete Blocked
expect 0 'deleted' "$S" assessment delete 'CVE-2021-44228|global'
expect 4 'no vulnerability-assessments' "$S" assessment delete 'CVE-2021-44228|global'
expect 0 'deleted' "$S" type delete blocked

# ---- import: all or nothing, errors with their lines, duplicates warned
cat > "$work/good.jsonl" <<'EOF'
{"kind":"assessment-types","value":{"name":"Blocked","severity_class":"severe"}}
{"kind":"vulnerability-assessments","value":{"vulnerability_id":"CVE-2021-0001","scope":{"kind":"global"},"assessment_type":"Blocked","comment":"first"}}

{"kind":"vulnerability-assessments","value":{"vulnerability_id":"CVE-2021-0002","scope":{"kind":"project","name":"shop"},"assessment_type":"Blocked"}}
{"kind":"vulnerability-assessments","value":{"vulnerability_id":"CVE-2021-0001","scope":{"kind":"global"},"assessment_type":"Blocked","comment":"last"}}
{"kind":"policies","value":{"name":"Strict","unassessed":"noncompliant"}}
EOF
expect 0 'line 2: vulnerability-assessments "CVE-2021-0001\|global" is given again at line 5; line 5 wins' \
    "$S" import "$work/good.jsonl"
expect 0 '3 vulnerability-assessments \(0 changed\)' "$S" import "$work/good.jsonl"
expect 0 '"comment": "last"' "$S" assessment get 'CVE-2021-0001|global'
cat > "$work/bad.jsonl" <<'EOF'
{"kind":"vulnerability-assessments","value":{"vulnerability_id":"CVE-2021-0003","scope":{"kind":"global"},"assessment_type":"Blocked"}}
{"kind":"vulnerability-assessments","value":{"vulnerability_id":"bogus","scope":{"kind":"global"},"assessment_type":"Blocked"}}
{"kind":"planets","value":{}}
not json
{"kind":"vulnerability-assessments","value":{"vulnerability_id":"CVE-2021-0004","scope":{"kind":"global"},"assessment_type":"Blocked","expires_at":1000}}
EOF
expect 2 'line 2: vulnerability_id: expected an id like' "$S" import "$work/bad.jsonl"
expect 2 'line 3: kind: unknown kind "planets"' "$S" import "$work/bad.jsonl"
expect 2 'line 4: invalid JSON' "$S" import "$work/bad.jsonl"
expect 2 'line 5: expires_at: 1970-01-01T00:00:01.000Z is already past' "$S" import "$work/bad.jsonl"
expect 2 'nothing imported \(4 lines refused\)' "$S" import "$work/bad.jsonl"
[[ $(sql "SELECT count(*) FROM vulnerability_assessments WHERE key = 'CVE-2021-0003|global'") == 0 ]] ||
    { echo "FAIL: a refused import wrote rows"; failures=$((failures + 1)); }
echo '{"kind":"vulnerability-assessments","value":{"vulnerability_id":"CVE-2021-0005","scope":{"kind":"global"},"assessment_type":"Blockd"}}' > "$work/typo.jsonl"
expect 2 'line 1: assessment_type: no assessment type named "Blockd"; nothing imported' "$S" import "$work/typo.jsonl"
echo '{"vulnerability_id":"CVE-2021-0006","scope":{"kind":"global"},"assessment_type":"Blocked"}' > "$work/bare.jsonl"
expect 2 'or give --kind' "$S" import "$work/bare.jsonl"
expect 0 '1 vulnerability-assessments \(1 changed\)' "$S" import --kind assessment "$work/bare.jsonl"
expect 0 '1 vulnerability-assessments' bash -c "$S import --kind assessment - < '$work/bare.jsonl'"

# ---- export: envelope lines that import back into another store unchanged
"$S" export > "$work/all.jsonl" || { echo "FAIL: export"; failures=$((failures + 1)); }
[[ $(grep -c '"kind":"vulnerability-assessments"' "$work/all.jsonl") == $(sql "SELECT count(*) FROM vulnerability_assessments") ]] ||
    { echo "FAIL: export line count"; failures=$((failures + 1)); }
expect 0 'exported to .*: 0 assessment-types, 4 vulnerability-assessments, 0 policies' \
    "$S" export --kind assessment -o "$work/a.jsonl"
expect 1 '--kind: unknown kind "x"' "$S" export --kind x
db2=${db}_b
psql "$base" -qXc "CREATE DATABASE $db2" >/dev/null
expect 0 "" "$S" init --dsn "$base dbname=$db2"
expect 0 "" "$S" import --dsn "$base dbname=$db2" "$work/all.jsonl"
strip='del(.value.origin, .value.version, .value.changed_at)'
if command -v jq >/dev/null; then
    diff <(jq -cS "$strip" "$work/all.jsonl" | sort) \
         <("$S" export --dsn "$base dbname=$db2" | jq -cS "$strip" | sort) >/dev/null ||
        { echo "FAIL: export | import | export differs"; failures=$((failures + 1)); }
fi
psql "$base" -qXc "DROP DATABASE $db2 WITH (FORCE)" >/dev/null

# ---- status: counts, outbox, warnings; --json
expect 0 'content: +[0-9]+ assessment-types, 4 vulnerability-assessments, 2 policies' "$S" status
expect 0 '"outbox": \{' "$S" status --json
sql "INSERT INTO sysrepl.dead_letters (topic, partition, record_offset, reason) VALUES ('t', 0, 7, 'unknown schema fingerprint 9f3c')"
expect 0 'warning: 1 dead letter; newest: unknown schema fingerprint 9f3c' "$S" status
expect 0 "" "$S" init --role spoke
sql "INSERT INTO policies (name) VALUES ('edited-locally')"
expect 0 'local edits? on this pull instance \(role spoke\) will be overwritten by the next sync' "$S" status
expect 0 'config says role hub but the store says spoke' "$S" status -X role=hub

# ---- connection: --dsn, -X store.dsn, -c FILE; the store down is exit 3
expect 0 "hub-a" "$S" status --dsn "$SRL_DSN"
expect 0 "hub-a" env -u SRL_DSN "$S" status -X "store.dsn=$SRL_DSN"
expect 0 "hub-a" env -u SRL_DSN "$S" status --set "store.dsn=$SRL_DSN"
expect 1 'unknown key "store.dns"' "$S" status -X "store.dns=x"
printf 'store.dsn = "%s"\n' "$SRL_DSN" > "$work/sysrepl.conf"
expect 0 "hub-a" env -u SRL_DSN "$S" status -c "$work/sysrepl.conf"
expect 1 "no store given" env -u SRL_DSN "$S" status
expect 3 "cannot connect to PostgreSQL at 127.0.0.1:1" "$S" status --dsn "host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=2"
expect 3 "cannot connect to PostgreSQL at 127.0.0.1:1" "$S" assessment list --dsn "host=127.0.0.1 port=1 connect_timeout=2"
expect 3 "cannot connect" "$S" import --dsn "host=127.0.0.1 port=1 connect_timeout=2" "$work/good.jsonl"

# ---- a store written by a newer build is refused by every command
newer=$((want + 2))
sql "UPDATE sysrepl.schema_version SET version = $newer"
msg="store is at schema version $newer, this build expects $want \(upgrade sysrepl\)"
expect 1 "$msg" "$S" status
expect 1 "$msg" "$S" type list
expect 1 "$msg" "$S" init
expect 1 "$msg" "$S" import "$work/good.jsonl"

echo "$checks checks, $failures failed"
[[ $failures == 0 ]]
