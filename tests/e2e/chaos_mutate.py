#!/usr/bin/env python3
"""tests/e2e/chaos_mutate.py - random edits of a hub's content, for the chaos
tests (not a test itself). Reads a `sysrepl export` on stdin, writes import
lines on stdout:

  --new N       N new assessments (fresh ids), plus a random slice of the
                existing ones, edited (type, comment)
  --one-small   one policy or custom assessment type, edited

Meta fields (origin, version, changed_at) are dropped: the hub stamps them.
"""
import argparse
import json
import random
import sys

META = ("origin", "version", "changed_at")
BUILT_IN = {"Ignore", "Caution", "Blocked"}


def kind_of(line):
    return line.get("kind")


def clean(line):
    """A copy of an export line's entity, without the meta fields."""
    obj = dict(line["value"])
    for m in META:
        obj.pop(m, None)
    return obj


def emit(kind, obj):
    sys.stdout.write(json.dumps({"kind": kind, "value": obj}, ensure_ascii=False,
                                separators=(",", ":")) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--new", type=int, default=0)
    ap.add_argument("--one-small", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rows = [json.loads(l) for l in sys.stdin if l.strip()]
    types = [r for r in rows if kind_of(r) == "assessment-types"]
    policies = [r for r in rows if kind_of(r) == "policies"]
    assessments = [r for r in rows if kind_of(r) == "vulnerability-assessments"]
    type_names = [t["value"]["name"] for t in types if not t["value"].get("inactive")] or ["Ignore"]
    out = []
    if args.one_small:
        pool = policies + [t for t in types if t["value"]["name"] not in BUILT_IN]
        if pool:
            line = rng.choice(pool)
            x = clean(line)
            x["description"] = "edited by chaos %d" % rng.randint(0, 10 ** 9)
            out.append((kind_of(line), x))
    else:
        for a in rng.sample(assessments, k=min(len(assessments), rng.randint(0, 60))):
            a = clean(a)
            a["assessment_type"] = rng.choice(type_names)
            a["comment"] = "chaos edit %d" % rng.randint(0, 10 ** 9)
            a.pop("expires_at", None)
            out.append(("vulnerability-assessments", a))
        for _ in range(args.new):
            vid = "PGV-%d" % rng.randint(3000000, 9999999)
            out.append(("vulnerability-assessments",
                        {"vulnerability_id": vid, "scope": {"kind": "global"},
                         "assessment_type": rng.choice(type_names), "automatic": False,
                         "assessed_by": "chaos@example.com", "assessed_at": 1764158400000,
                         "comment": "new in chaos"}))
    for kind, obj in out:
        emit(kind, obj)


if __name__ == "__main__":
    main()
