#!/usr/bin/env python3
"""logfmt_check.py - every log line the test suite's programs wrote is valid.

    tests/tools/logfmt_check.py FILE|DIR...

Reads each FILE (each *.log in a DIR; tests/run points SRL_LOG_DIR there, so
every program appends a copy of its stderr lines, see common/log.h) and
prints FILE:LINE: reason for every line that is not one event in one of the
two formats srl_log writes:

  logfmt  ts=... level=... component=... msg=... key=value...: pairs
          separated by one space; a key is [A-Za-z0-9_./-]+; a value is bare
          (no space, '=', '"', '\\' or control byte, not empty) or quoted
          ("..." with only \\" \\\\ \\n \\r \\t \\u00XX escapes)
  json    one JSON object with string ts, level, component and msg first

and for a line that srl_log had to repair (srl_log_unquoted=KEY: a call site
passed a value with spaces without srl_log_q). Exit 0 when all are valid, 1
when any is not, 2 on a usage error. tests/unit/test_logfmt_check.py tests
the parser itself.
"""
import json
import os
import re
import sys

HEAD = ("ts", "level", "component", "msg")
LEVELS = ("debug", "info", "warn", "error")
KEY = r"[A-Za-z0-9_./-]+"
BARE = r'[^\x00-\x20="\\\x7f]+'
QUOTED = r'"(?:[^"\\\x00-\x1f\x7f]|\\["\\nrt]|\\u[0-9a-fA-F]{4})*"'
PAIR = re.compile(r"(%s)=(%s|%s)(?: |$)" % (KEY, QUOTED, BARE))
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def unquote(v):
    if not v.startswith('"'):
        return v
    return json.loads(v)  # our escapes are a subset of JSON's


def parse_logfmt(line):
    """The pairs of a logfmt line, in order; ValueError names the problem."""
    pairs, at = [], 0
    if line == "":
        raise ValueError("empty line")
    while at < len(line):
        m = PAIR.match(line, at)
        if not m:
            raise ValueError("not key=value at column %d: %r" % (at + 1, line[at:at + 40]))
        if m.end() == len(line) and line.endswith(" "):
            raise ValueError("trailing space")
        pairs.append((m.group(1), unquote(m.group(2))))
        at = m.end()
    return pairs


def check_line(line):
    """None when line is a valid srl_log line, else the reason."""
    try:
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError as e:
                return "invalid JSON: %s" % e
            if not isinstance(obj, dict):
                return "JSON line is not an object"
            pairs = list(obj.items())
            if any(not isinstance(v, str) for _, v in pairs[:4]):
                return "JSON ts, level, component and msg must be strings"
        else:
            pairs = parse_logfmt(line)
    except ValueError as e:
        return str(e)
    keys = tuple(k for k, _ in pairs[:4])
    if keys != HEAD:
        return "must start with ts, level, component, msg (got %s)" % ", ".join(keys)
    values = dict(pairs[:4])
    if not TS.match(values["ts"]):
        return "ts %r is not YYYY-MM-DDTHH:MM:SS.mmmZ" % values["ts"]
    if values["level"] not in LEVELS:
        return "unknown level %r" % values["level"]
    for k, v in pairs[4:]:
        if k == "srl_log_unquoted":
            return "the value of %s was not quoted (srl_log_q) and had to be repaired" % v
    return None


def files_of(args):
    for a in args:
        if os.path.isdir(a):
            for name in sorted(os.listdir(a)):
                if name.endswith(".log"):
                    yield os.path.join(a, name)
        else:
            yield a


def main(argv):
    if len(argv) < 2:
        print("usage: logfmt_check.py FILE|DIR...", file=sys.stderr)
        return 2
    bad = lines = nfiles = 0
    for path in files_of(argv[1:]):
        nfiles += 1
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                lines += 1
                if not raw.endswith(b"\n"):
                    reason = "no newline at the end (a line cut short)"
                else:
                    try:
                        reason = check_line(raw[:-1].decode("utf-8"))
                    except UnicodeDecodeError as e:
                        reason = "not UTF-8: %s" % e
                if reason:
                    bad += 1
                    print("%s:%d: %s\n    %s" % (path, n, reason, raw[:300].decode("utf-8", "replace").rstrip("\n")))
    print("logfmt_check: %d lines in %d files, %d invalid" % (lines, nfiles, bad),
          file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
