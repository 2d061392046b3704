#!/usr/bin/env bash
# bench_import.sh [N] - `sysrepl import` / `sysrepl export` of N (default
# 1,000,000) vulnerability assessments, side by side in the same run with a
# raw COPY of the same rows into / out of the same table.
#
#   SRL_TEST_PG_DSN  base conninfo of a PostgreSQL server we may create
#                    databases on (deploy/local/postgres start; tests/run)
#   SRL_BUILD_DIR    build directory holding cli/sysrepl (default: build)
#   SRL_BENCH_KEEP=1 keep the database (srl_bench_import_<pid>) afterwards
#   SRL_BENCH_VERIFY=0 skip checking that the export equals the import
#
# Goal (issue 4): import >= 0.5x the raw COPY rate with the capture
# triggers on, peak RSS < 50 MB; export likewise against COPY TO.
# Prints one result line per step and a summary; exit 1 if a goal is missed.
set -euo pipefail

N=${1:-1000000}
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${SRL_BUILD_DIR:-$here/../build}
SYSREPL=$BUILD/cli/sysrepl
: "${SRL_TEST_PG_DSN:?set SRL_TEST_PG_DSN (e.g. eval \"\$(deploy/local/env)\")}"
[ -x "$SYSREPL" ] || { echo "bench_import: $SYSREPL not built" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "bench_import: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/srl-bench-import.XXXXXX")
db=srl_bench_import_$$
base_dsn=$SRL_TEST_PG_DSN
dsn="$base_dsn dbname=$db"
cleanup() {
    if [ "${SRL_BENCH_KEEP:-0}" != 1 ]; then
        psql "$base_dsn" -qXc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

cols="vulnerability_id, assessment_type, comment, scope_kind, scope_name, package_name, package_version_range, expires_at, automatic, assessed_by, assessed_at"

# Data: cached between runs (generating 1M lines takes ~10 s).
data=${TMPDIR:-/tmp}/srl-bench-assessments-$N.jsonl
if [ ! -s "$data" ]; then
    python3 "$here/../tests/tools/gen_assessments.py" "$N" > "$data.tmp" && mv "$data.tmp" "$data"
fi

psql "$base_dsn" -qXc "CREATE DATABASE $db" >/dev/null
export SRL_DSN=$dsn
"$SYSREPL" init --instance-id bench-hub --role hub >/dev/null

# measure NAME CMD...: run CMD; keep the best (lowest) wall seconds in
# $NAME_s and the highest peak RSS (kB) in $NAME_kb over the repetitions.
measure() {
    local name=$1; shift
    /usr/bin/time -f "%e %M" -o "$work/$name.time" "$@" > "$work/$name.out"
    local secs kb best best_kb
    read -r secs kb < "$work/$name.time"
    best=${name}_s best_kb=${name}_kb
    if [ -z "${!best:-}" ] || awk -v a="$secs" -v b="${!best}" 'BEGIN { exit !(a < b) }'; then
        printf -v "$best" '%s' "$secs"
    fi
    if [ -z "${!best_kb:-}" ] || [ "$kb" -gt "${!best_kb}" ]; then
        printf -v "$best_kb" '%s' "$kb"
    fi
}

psql_q() { psql "$dsn" -qXtA -v ON_ERROR_STOP=1 "$@"; }
empty_table() {
    psql_q -c "BEGIN; SET LOCAL sysrepl.applying = 'on'; TRUNCATE vulnerability_assessments, sysrepl.outbox; COMMIT;" >/dev/null
    psql_q -c "CHECKPOINT" >/dev/null
}
rate() { awk -v n="$N" -v s="$1" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }

# The machine may be shared: every step runs SRL_BENCH_REPEAT times
# (default 3), interleaved, and the best time of each counts.
R=${SRL_BENCH_REPEAT:-3}
for rep in $(seq "$R"); do
    # 1. sysrepl import (capture triggers on: every row also lands in the outbox)
    empty_table
    measure import "$SYSREPL" import "$data"
    outbox=$(psql_q -c "SELECT count(*) FROM sysrepl.outbox WHERE kind = 1")
    [ "$outbox" = "$N" ] || { echo "bench_import: outbox has $outbox rows, expected $N" >&2; exit 1; }

    # 2. sysrepl export vs COPY TO of the same rows
    measure export "$SYSREPL" export --kind assessment -o "$work/export.jsonl"
    measure copyto psql "$dsn" -qX -c "\\copy (SELECT $cols FROM vulnerability_assessments) TO '$work/rows.tsv'"
    lines=$(wc -l < "$work/export.jsonl")
    [ "$lines" = "$N" ] || { echo "bench_import: export wrote $lines lines, expected $N" >&2; exit 1; }
    # The round trip is exact (meta fields aside); SRL_BENCH_VERIFY=0 skips it.
    if [ "$rep" = 1 ] && [ "${SRL_BENCH_VERIFY:-1}" = 1 ]; then
        python3 "$here/../tests/tools/compare_jsonl.py" --kind vulnerability-assessments "$data" "$work/export.jsonl" >&2 ||
            { echo "bench_import: export differs from the imported data" >&2; exit 1; }
    fi

    # 3. raw COPY of the same rows into the same (emptied) table: capture on, then off
    empty_table
    measure copy_on psql "$dsn" -qX -c "\\copy vulnerability_assessments ($cols) FROM '$work/rows.tsv'"
    empty_table
    measure copy_off psql "$dsn" -qX -v ON_ERROR_STOP=1 \
        -c "BEGIN" -c "SET LOCAL sysrepl.applying = 'on'" \
        -c "\\copy vulnerability_assessments ($cols) FROM '$work/rows.tsv'" -c "COMMIT"
done

printf '%-44s %8s %10s %9s\n' "step ($N assessments)" "seconds" "rows/s" "RSS MB"
row() { printf '%-44s %8s %10s %9.1f\n' "$1" "$2" "$(rate "$2")" "$(awk -v k="$3" 'BEGIN{print k/1024}')"; }
# shellcheck disable=SC2154 # the <step>_s/_kb variables are set by measure() (printf -v)
{
    row "sysrepl import (capture on)" "$import_s" "$import_kb"
    row "raw COPY FROM, capture triggers on (psql)" "$copy_on_s" "$copy_on_kb"
    row "raw COPY FROM, capture off (psql)" "$copy_off_s" "$copy_off_kb"
    row "sysrepl export" "$export_s" "$export_kb"
    row "raw COPY TO (psql)" "$copyto_s" "$copyto_kb"
}
r_import=$(ratio "$import_s" "$copy_off_s")
r_import_on=$(ratio "$import_s" "$copy_on_s")
r_export=$(ratio "$export_s" "$copyto_s")
echo "import rate / COPY rate: $r_import (vs COPY with capture off), $r_import_on (vs COPY with capture on); goal >= 0.5"
echo "export rate / COPY TO rate: $r_export; goal >= 0.5"

ok=1
awk -v r="$r_import" 'BEGIN { exit !(r >= 0.5) }' || { echo "MISSED: import rate"; ok=0; }
awk -v r="$r_export" 'BEGIN { exit !(r >= 0.5) }' || { echo "MISSED: export rate"; ok=0; }
[ "$import_kb" -lt 51200 ] || { echo "MISSED: import RSS"; ok=0; }
[ "$export_kb" -lt 51200 ] || { echo "MISSED: export RSS"; ok=0; }
[ $ok = 1 ]
