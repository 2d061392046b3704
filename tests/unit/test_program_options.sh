#!/usr/bin/env bash
# test_program_options.sh - the command-line grammar every program shares
# (common/cmdline.c), without services: each of sysrepl, sysrepl-producer,
# sysrepl-consumer and sysrepl-bridge answers --version (its name and the
# build's version), --help and --print-config (exit 0, secrets never shown,
# from -X or from -c FILE), refuses an unknown option naming it (exit 1),
# and takes -c/-X anywhere; `sysrepl schemas` takes the global options
# before and after the command; `sysrepl-bridge --hash-key` prints only
# lines its keys file accepts; no option help says "(repeatable)" twice.
set -uo pipefail
BUILD=${SRL_BUILD_DIR:?SRL_BUILD_DIR is not set (run through ctest)}
SRC=${SRL_SOURCE_DIR:?SRL_SOURCE_DIR is not set (run through ctest)}

declare -A BIN=(
    [sysrepl]=$BUILD/cli/sysrepl
    [sysrepl-producer]=$BUILD/producer/sysrepl-producer
    [sysrepl-consumer]=$BUILD/consumer/sysrepl-consumer
    [sysrepl-bridge]=$BUILD/bridge/sysrepl-bridge
)
for p in "${!BIN[@]}"; do
    [[ -x ${BIN[$p]} ]] || { echo "FAIL: ${BIN[$p]} is not built"; exit 1; }
done
version=$(sed -n 's/^project(sysrepl VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
[[ -n $version ]] || { echo "FAIL: no project version in $SRC/CMakeLists.txt"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failures=0
checks=0
fail() {
    echo "FAIL: $1"
    # shellcheck disable=SC2001 # indents every line; ${//} cannot anchor at each line
    [[ -n ${2:-} ]] && echo "$2" | sed 's/^/    /'
    failures=$((failures + 1))
}
# expect CODE PATTERN CMD...: CMD exits with CODE and its output (stdout and
# stderr) matches PATTERN (grep -E; "" matches anything). OUT keeps it.
expect() {
    local want=$1 pattern=$2
    shift 2
    local code
    OUT=$("$@" 2>&1)
    code=$?
    checks=$((checks + 1))
    if [[ $code != "$want" ]]; then
        fail "$* -> exit $code, want $want" "$OUT"
    elif [[ -n $pattern ]] && ! grep -Eq -- "$pattern" <<<"$OUT"; then
        fail "$* -> output lacks /$pattern/" "$OUT"
    fi
}
# lacks TEXT: the last expect's output does not hold TEXT (fixed string).
lacks() {
    checks=$((checks + 1))
    if grep -Fq -- "$1" <<<"$OUT"; then
        fail "output holds \"$1\"" "$OUT"
    fi
}

# The secrets each program reads, and one plain key to see them next to.
SECRET=hunter2-$$
declare -A SECRETS=(
    [sysrepl]="store.dsn=postgresql://u:$SECRET@db/x kafka.sasl.password=$SECRET"
    [sysrepl-producer]="store.dsn=postgresql://u:$SECRET@db/x bridge.api_key=$SECRET kafka.sasl.password=$SECRET kafka.ssl.key.password=$SECRET"
    [sysrepl-consumer]="store.dsn=postgresql://u:$SECRET@db/x bridge.api_key=$SECRET kafka.sasl.password=$SECRET"
    [sysrepl-bridge]="kafka.sasl.password=$SECRET kafka.ssl.key.password=$SECRET"
)

for p in sysrepl sysrepl-producer sysrepl-consumer sysrepl-bridge; do
    B=${BIN[$p]}

    # program_answers_version: its name and the version of this build
    expect 0 "^$p $version\$" "$B" --version
    # program_answers_version_even_with_a_broken_config
    expect 0 "^$p $version\$" "$B" -c "$work/missing.conf" --version

    # program_answers_help: usage, the common options, the config keys
    expect 0 "usage: $p" "$B" --help
    for opt in --config --set --print-config --version --help; do
        grep -q -- "$opt" <<<"$OUT" || fail "$p --help does not list $opt" "$OUT"
    done
    expect 0 "usage: $p" "$B" -h

    # program_refuses_unknown_option_naming_it
    expect 1 "--no-such-option" "$B" --no-such-option
    expect 1 "--no-such-option" "$B" -X log.level=debug --no-such-option
    # program_refuses_bad_config_naming_the_key
    expect 1 "log.level" "$B" -X log.level=loud --print-config

    # program_prints_config_with_secrets_redacted, from -X ...
    args=()
    conf=$work/$p.conf
    : >"$conf"
    for kv in ${SECRETS[$p]}; do
        args+=(-X "$kv")
        printf '%s = %s\n' "${kv%%=*}" "${kv#*=}" >>"$conf"
    done
    expect 0 "^topic.prefix = from-x\$" "$B" "${args[@]}" -X topic.prefix=from-x --print-config
    lacks "$SECRET"
    for kv in ${SECRETS[$p]}; do
        grep -Eq -- "^# ${kv%%=*} = <redacted>\$" <<<"$OUT" ||
            fail "$p --print-config does not show ${kv%%=*} as redacted" "$OUT"
    done
    # ... every key of the program, with its value
    for key in instance.id role topic.prefix log.level; do
        grep -Eq -- "^$key = " <<<"$OUT" || fail "$p --print-config lacks $key" "$OUT"
    done
    # ... and from -c FILE, given after the option (anywhere on the line)
    printf 'topic.prefix = from-file\n' >>"$conf"
    expect 0 "^topic.prefix = from-file\$" "$B" --print-config -c "$conf"
    lacks "$SECRET"
    # -X wins over the file, wherever each is
    expect 0 "^topic.prefix = x-wins\$" "$B" --set topic.prefix=x-wins --print-config --config "$conf"
    lacks "$SECRET"
done

# ---- sysrepl: global options before and after the command
S=${BIN[sysrepl]}
printf 'log.level = warn\n' >"$work/cli.conf"
expect 0 "" "$S" schemas
want=$OUT
# cli_schemas_after_config_option (crashed: the command had no run function)
expect 0 "" "$S" -c "$work/cli.conf" schemas
[[ $OUT == "$want" ]] || fail "sysrepl -c FILE schemas differs from sysrepl schemas" "$OUT"
# cli_schemas_before_config_option (was a usage error)
expect 0 "" "$S" schemas -c "$work/cli.conf"
[[ $OUT == "$want" ]] || fail "sysrepl schemas -c FILE differs from sysrepl schemas" "$OUT"
expect 0 "" "$S" schemas -X log.level=debug --config="$work/cli.conf"
expect 1 "missing.conf" "$S" schemas -c "$work/missing.conf"
expect 0 "usage: sysrepl schemas" "$S" schemas --help
expect 0 "usage: sysrepl schemas" "$S" --help schemas
expect 1 "unknown option --frob" "$S" schemas --frob
expect 1 "unknown option --frob" "$S" --frob
expect 1 "unknown option --frob" "$S" assessment --frob
avsc=$SRC/schemas/policy.avsc
expect 0 "compatible" "$S" schemas --check "$avsc" -c "$work/cli.conf"
expect 0 "compatible" "$S" -c "$work/cli.conf" schemas --check="$avsc"
expect 0 "^sysrepl $version\$" "$S" schemas --version
expect 0 "^log.level = warn\$" "$S" status --print-config -c "$work/cli.conf"

# cli_help_says_repeatable_once (export --kind said it twice)
for cmd in "export" "import" "status" "init" "schemas" "assessment list" "type put"; do
    # shellcheck disable=SC2086 # $cmd is a command and its subcommand, split on purpose
    expect 0 "usage: sysrepl $cmd" "$S" $cmd --help
    if grep -q "repeatable.*repeatable" <<<"$OUT"; then
        fail "sysrepl $cmd --help says (repeatable) twice" "$OUT"
    fi
done
expect 0 "--kind KIND .*\(repeatable\)" "$S" export --help

# ---- sysrepl-bridge --hash-key prints only lines the keys file accepts
BR=${BIN[sysrepl-bridge]}
for perms in pull push metrics pull,push pull,metrics; do
    expect 0 "^client [0-9a-f]{64} $perms\$" "$BR" --hash-key k --perms "$perms"
done
expect 0 "^spoke [0-9a-f]{64} pull policies\$" "$BR" --hash-key k --name spoke --kinds policies
expect 1 "perms must be pull, push or metrics" "$BR" --hash-key k --perms metric
expect 1 "unknown kind \"things\"" "$BR" --hash-key k --kinds things
expect 1 "--name \"two words\" must be one word" "$BR" --hash-key k --name "two words"
expect 1 "--kinds \"a#b\" must be one word" "$BR" --hash-key k --kinds "a#b"
expect 1 "needs a non-empty key" "$BR" --hash-key ""
expect 1 "--perms goes with --hash-key" "$BR" --perms pull
expect 0 "^client [0-9a-f]{64} metrics\$" sh -c "printf 'k\n' | '$BR' --hash-key - --perms metrics"

echo "test_program_options: $checks checks, $failures failures"
[[ $failures == 0 ]]
