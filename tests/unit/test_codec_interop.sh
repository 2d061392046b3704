#!/bin/sh
# Interop of our Avro codec with python fastavro (an independent
# implementation): fingerprints and canonical forms agree, fastavro reads
# our records field for field (also with the v2 schemas as reader), and we
# read records fastavro wrote (with our schemas and with the v2 ones).
# Needs SRL_PYTHON: a python with fastavro (deploy/local/install-deps makes
# one; tests/run exports it). Without it the test is skipped (exit 77).
set -eu
if [ -z "${SRL_PYTHON:-}" ]; then
    echo "SKIP: SRL_PYTHON is not set (a python with fastavro; see deploy/local/install-deps)"
    exit 77
fi
if ! "$SRL_PYTHON" -c 'import fastavro' 2>/dev/null; then
    echo "FAIL: $SRL_PYTHON cannot import fastavro"
    exit 1
fi
here=$(cd "$(dirname "$0")" && pwd)
src=${SRL_SOURCE_DIR:-$here/../..}
helper=${SRL_BUILD_DIR:?SRL_BUILD_DIR is not set (run through ctest)}/tests/tools/srl-codec-interop
exec "$SRL_PYTHON" "$here/codec_interop.py" "$helper" "$src"
