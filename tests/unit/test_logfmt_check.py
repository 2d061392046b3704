#!/usr/bin/env python3
"""test_logfmt_check.py - the log line checker accepts every line srl_log
writes and rejects, with a reason, lines that are not valid logfmt."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import logfmt_check  # noqa: E402

TS = "ts=2026-11-26T12:00:00.123Z"
GOOD = [
    TS + " level=info component=producer msg=starting",
    TS + ' level=warn component=consumer msg="record dead-lettered" topic=x partition=0'
         ' offset=1234 reason="unknown schema fingerprint 9f3c"',
    TS + ' level=error component=bridge msg="bad request" reason="a \\"q\\" \\\\ \\n \\u0001 é" empty=""',
    TS + ' level=debug component=kafka msg=x detail="Broker: Not leader for partition"',
    '{"ts":"2026-11-26T12:00:00.123Z","level":"info","component":"bridge","msg":"started",'
    '"keys":2,"reason":"a b"}',
]
BAD = [
    (TS + " level=warn component=bridge msg=x reason=Broker: Not leader for partition", "not key=value"),
    (TS + ' level=error component=bridge msg="unexpected argument" argument=-z (see --help)', "not key=value"),
    (TS + " level=info component=t msg=x key=", "not key=value"),
    (TS + ' level=info component=t msg=x v="open', "not key=value"),
    (TS + ' level=info component=t msg=x v="bad \\x escape"', "not key=value"),
    (TS + " level=info component=t msg=x  two=spaces", "not key=value"),
    (TS + " level=info component=t msg=x trailing=1 ", "trailing space"),
    (TS + " level=info component=t msg=x v=a\tb", "not key=value"),
    ("level=info component=t msg=x", "must start with ts"),
    (TS + " level=loud component=t msg=x", "unknown level"),
    ("ts=yesterday level=info component=t msg=x", "ts"),
    (TS + " level=info component=t msg=x srl_log_unquoted=reason", "not quoted"),
    ("sysrepl-producer: unknown argument \"-z\" (see --help)", "not key=value"),
    ('{"ts":"2026-11-26T12:00:00.123Z","level":"info","msg":"no component"}', "must start"),
    ('{"ts":"2026-11-26T12:00:00.123Z","level":"info",', "invalid JSON"),
    ("", "empty line"),
]

failures = 0
for line in GOOD:
    reason = logfmt_check.check_line(line)
    if reason is not None:
        print("FAIL: rejected a good line (%s): %s" % (reason, line))
        failures += 1
for line, want in BAD:
    reason = logfmt_check.check_line(line)
    if reason is None or want not in reason:
        print("FAIL: bad line gave %r, want a reason with %r: %s" % (reason, want, line))
        failures += 1

# The command names file:line of each invalid line and exits 1.
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "p.1.log"), "w") as f:
        f.write(GOOD[0] + "\n" + BAD[0][0] + "\n" + GOOD[1] + "\n")
    with open(os.path.join(d, "ignored.txt"), "w") as f:
        f.write("not a log\n")
    r = subprocess.run([sys.executable, logfmt_check.__file__, d], capture_output=True, text=True)
    if r.returncode != 1 or os.path.join(d, "p.1.log") + ":2: " not in r.stdout or ":1:" in r.stdout:
        print("FAIL: command gave rc=%d stdout=%r" % (r.returncode, r.stdout))
        failures += 1
    with open(os.path.join(d, "p.1.log"), "w") as f:
        f.write(GOOD[0] + "\n" + GOOD[4] + "\n")
    r = subprocess.run([sys.executable, logfmt_check.__file__, d], capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: all-good folder gave rc=%d: %s" % (r.returncode, r.stdout))
        failures += 1

print("%d failures" % failures)
sys.exit(1 if failures else 0)
