#!/usr/bin/env python3
"""compare_jsonl.py IMPORTED EXPORTED - do two sysrepl JSON-lines files hold
the same content? Lines are {"kind": K, "value": {...}}; the comparison
ignores line order, the meta fields (origin, version, changed_at) that the
store stamps, and the spelling of times (integer ms or RFC 3339 text).
With --kind K only lines of that kind are compared. Exit 0 when equal; else
prints a few differences and exits 1."""
import collections
import datetime
import json
import sys

META = ("origin", "version", "changed_at")
TIMES = ("expires_at", "assessed_at")


def rfc3339(ms):
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def canonical(line):
    doc = json.loads(line)
    value = doc["value"]
    for k in META:
        value.pop(k, None)
    for k in TIMES:
        if isinstance(value.get(k), int):
            value[k] = rfc3339(value[k])
    return doc["kind"], json.dumps(value, sort_keys=True, separators=(",", ":"))


def load(path, kind):
    out = collections.Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            k, text = canonical(line)
            if kind is None or k == kind:
                out[text] += 1
    return out


def main():
    args = sys.argv[1:]
    kind = None
    if len(args) >= 2 and args[0] == "--kind":
        kind, args = args[1], args[2:]
    a, b = load(args[0], kind), load(args[1], kind)
    if a == b:
        print("equal: %d entities" % sum(a.values()))
        return 0
    only_a, only_b = a - b, b - a
    print("differ: %d only in %s, %d only in %s" % (sum(only_a.values()), args[0],
                                                  sum(only_b.values()), args[1]))
    for text in list(only_a)[:3]:
        print("  < " + text)
    for text in list(only_b)[:3]:
        print("  > " + text)
    return 1


if __name__ == "__main__":
    sys.exit(main())
