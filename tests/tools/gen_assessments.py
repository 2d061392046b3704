#!/usr/bin/env python3
"""gen_assessments.py N [SEED] - write N vulnerability assessments as sysrepl
JSON lines (the `sysrepl import` / `export` envelope) to stdout, preceded by
the assessment types they name. Deterministic for a given N and SEED; every
key is unique; expiries lie in the future (year 2030+)."""
import json
import random
import sys

TYPES = ["Blocked", "Ignored", "Caution", "Mitigated"]
SCOPES = [("global", None), ("feed", "nuget.org"), ("feed", "npmjs"), ("policy", "Global"),
          ("project", "web-shop")]


def main():
    n = int(sys.argv[1])
    rnd = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    out = sys.stdout
    w = out.write
    for name, cls in zip(TYPES, ["severe", "ignore", "warn", "custom"]):
        w(json.dumps({"kind": "assessment-types",
                      "value": {"name": name, "severity_class": cls}},
                     separators=(",", ":")) + "\n")
    base = 1_900_000_000_000  # 2030-03-17
    for i in range(n):
        kind, sname = SCOPES[i % len(SCOPES)]
        scope = {"kind": kind} if sname is None else {"kind": kind, "name": sname}
        v = {"vulnerability_id": "CVE-2024-%07d" % (i // len(SCOPES)),
             "scope": scope,
             "assessment_type": TYPES[rnd.randrange(len(TYPES))],
             "comment": "assessed by the bench, run %d" % rnd.randrange(1000)}
        if i % 3 == 0:
            v["package_filter"] = {"name": "pkg-%d" % (i % 997), "version_range": "[1.0,2.0)"}
        if i % 4 == 0:
            v["expires_at"] = base + i * 1000
        v["automatic"] = i % 7 == 0
        v["assessed_by"] = "bench"
        v["assessed_at"] = 1_700_000_000_000 + i
        w(json.dumps({"kind": "vulnerability-assessments", "value": v},
                     separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
