#!/usr/bin/env bash
# The committed example configs (deploy/examples/*.conf) and
# docs/config-reference.md are exactly what the key table generates now, and
# each example loads for the program it is for: they never drift from the
# key table (common/include/sysrepl/config_keys.def). Fix a failure with
# `ninja -C <build> gen-config`.
set -euo pipefail
build=${SRL_BUILD_DIR:?SRL_BUILD_DIR is not set (run through ctest)}
src=${SRL_SOURCE_DIR:?SRL_SOURCE_DIR is not set (run through ctest)}
gen=$build/tools/sysrepl-gen-config
[[ -x $gen ]] || { echo "test_config_examples: $gen is not built" >&2; exit 1; }
"$gen" --check --root "$src"
echo "test_config_examples: examples and config reference match the key table"
