#!/usr/bin/env bash
# test_cli_roundtrip.sh - `sysrepl import` then `sysrepl export` of N
# generated assessments (default 1,000,000, as the issue asks;
# SRL_TEST_ROUNDTRIP_N for a quicker local run) round-trips
# exactly: the same entities, each once, meta fields aside. The import goes
# into an empty store (the direct COPY path) and then again into the full
# one (the staging path: nothing changes), with peak RSS under 50 MB.
# bench/bench_import.sh does the same and measures the rates.
set -uo pipefail

if [[ -z ${SRL_TEST_PG_DSN:-} ]]; then
    echo "skipped: SRL_TEST_PG_DSN is not set (run through tests/run)"
    exit 0
fi
N=${SRL_TEST_ROUNDTRIP_N:-1000000}
SRC=${SRL_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
SYSREPL=${SRL_BUILD_DIR:?SRL_BUILD_DIR not set}/cli/sysrepl
db=srl_cli_roundtrip_$$_$RANDOM
base=$SRL_TEST_PG_DSN
export SRL_DSN="$base dbname=$db"
work=$(mktemp -d)
cleanup() {
    psql "$base" -qXc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

psql "$base" -qXc "CREATE DATABASE $db" >/dev/null || fail "cannot create $db"
python3 "$SRC/tests/tools/gen_assessments.py" "$N" > "$work/in.jsonl" || fail "generator"
"$SYSREPL" init --instance-id roundtrip >/dev/null || fail "init"

/usr/bin/time -f "%M" -o "$work/rss" "$SYSREPL" import "$work/in.jsonl" > "$work/import.out" ||
    fail "import: $(cat "$work/import.out")"
grep -q "$N vulnerability-assessments ($N changed)" "$work/import.out" || fail "import: $(cat "$work/import.out")"
rss=$(cat "$work/rss")
# (an AddressSanitizer build has shadow memory: no RSS bound there)
if ! ldd "$SYSREPL" | grep -q libasan; then
    [[ $rss -lt 51200 ]] || fail "import peak RSS ${rss} kB >= 50 MB"
fi

"$SYSREPL" export -o "$work/out.jsonl" 2>/dev/null || fail "export"
python3 "$SRC/tests/tools/compare_jsonl.py" --kind vulnerability-assessments "$work/in.jsonl" "$work/out.jsonl" || fail "export differs from import"

# Captured changes: outbox rows, or (WAL capture) the inserts and updates
# of assessments the store's replication slot holds for the producer.
captured() {
    psql "$SRL_DSN" -qXtAc "SELECT CASE WHEN s.slot_name IS NULL
        THEN (SELECT count(*) FROM sysrepl.outbox WHERE kind = 1)
        ELSE (SELECT count(*) FROM pg_logical_slot_peek_binary_changes(s.slot_name, NULL, NULL,
                'proto_version', '1', 'publication_names', 'sysrepl_content') c
              WHERE get_byte(c.data, 0) IN (73, 85)) END
        FROM (SELECT max(slot_name) AS slot_name FROM pg_replication_slots
              WHERE database = current_database()) s"
}
outbox=$(captured)
[[ $outbox == "$N" ]] || fail "captured $outbox assessment changes, expected $N"

# Again, into the full store: every row identical, nothing written.
"$SYSREPL" import "$work/in.jsonl" > "$work/import2.out" || fail "re-import: $(cat "$work/import2.out")"
grep -q "$N vulnerability-assessments (0 changed)" "$work/import2.out" || fail "re-import: $(cat "$work/import2.out")"
outbox=$(captured)
[[ $outbox == "$N" ]] || fail "re-import captured changes: $outbox captured"
echo "ok: $N assessments round-trip; import peak RSS $((rss / 1024)) MB"
