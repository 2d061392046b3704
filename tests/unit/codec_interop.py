"""Interop of our Avro codec with fastavro; run by test_codec_interop.sh.

usage: codec_interop.py HELPER SOURCE_DIR

Checks, against fastavro as an independent Avro implementation:
  1. the parsing canonical form and CRC-64-AVRO fingerprint of each schema;
  2. fastavro reads each record we encode (single-object encoding) field for
     field, consuming exactly the body, and also with the v2 schema of
     tests/data/schemas as reader (added field -> its default);
  3. we read records fastavro writes, with our schemas and with the v2
     schemas (unknown field skipped, dropped field -> our default, unknown
     enum symbols -> the enum's default).
Prints one line per failure; exits 1 if any.
"""
import copy
import io
import json
import os
import subprocess
import sys
import tempfile

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from avro_forms import RULE_GROUP_ORDER, to_avro  # noqa: E402

HELPER, SRC = sys.argv[1], sys.argv[2]
KINDS = {
    "assessment-types": "assessment_type",
    "vulnerability-assessments": "vulnerability_assessment",
    "policies": "policy",
}
PREFIX_KIND = {"type": "assessment_type", "assessment": "vulnerability_assessment",
               "policy": "policy"}
failures = []
checks = 0


def check(cond, msg):
    global checks
    checks += 1
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def strip_logical(s):
    """timestamp-millis as plain long, so values compare as integers."""
    if isinstance(s, dict):
        return {k: strip_logical(v) for k, v in s.items() if k != "logicalType"}
    if isinstance(s, list):
        return [strip_logical(v) for v in s]
    return s


def schema_json(name, v2=False):
    path = (os.path.join(SRC, "tests/data/schemas", name + "_v2.avsc") if v2
            else os.path.join(SRC, "schemas", name + ".avsc"))
    with open(path) as f:
        return json.load(f)


def parsed(name, v2=False):
    return fastavro.parse_schema(strip_logical(schema_json(name, v2)))


def fp_number(schema):
    """Our display: the 64-bit number; fastavro's hex is its little-endian bytes."""
    le = fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    return int.from_bytes(bytes.fromhex(le), "little")


def single_object(schema_name, record, v2=False):
    raw = schema_json(schema_name, v2)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed(schema_name, v2), record)
    return b"\xc3\x01" + fp_number(raw).to_bytes(8, "little") + body.getvalue()


# ---- 1. canonical form and fingerprint -------------------------------------

out = subprocess.run([HELPER, "schemas"], check=True, capture_output=True, text=True).stdout
ours = {}
for line in out.splitlines():
    kind, fp_hex, _id, _subject, canonical = line.split(" ", 4)
    ours[KINDS[kind]] = (int(fp_hex, 16), canonical)
for name in KINDS.values():
    raw = schema_json(name)
    check(ours[name][1] == to_parsing_canonical_form(raw),
          f"{name}: canonical form differs from fastavro's")
    check(ours[name][0] == fp_number(raw), f"{name}: fingerprint differs from fastavro's")

# ---- 2. fastavro reads what we write ---------------------------------------

V2_ADDED = {"assessment_type": ("note", None), "vulnerability_assessment": ("source", "manual"),
            "policy": ("owner", "")}
V2_DROPPED = {"assessment_type": "color", "vulnerability_assessment": "comment",
              "policy": "license_other"}

with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([HELPER, "write", tmp], check=True)
    samples = sorted(f[:-5] for f in os.listdir(tmp) if f.endswith(".avro"))
    check(len(samples) >= 8, f"only {len(samples)} samples written")
    for label in samples:
        name = PREFIX_KIND[label.split("_")[0]]
        with open(os.path.join(tmp, label + ".avro"), "rb") as f:
            data = f.read()
        with open(os.path.join(tmp, label + ".json")) as f:
            expected = to_avro(name, json.load(f))
        check(data[:2] == b"\xc3\x01", f"{label}: marker {data[:2]!r}")
        check(int.from_bytes(data[2:10], "little") == ours[name][0],
              f"{label}: header fingerprint is not the {name} schema's")
        body = io.BytesIO(data[10:])
        got = fastavro.schemaless_reader(body, parsed(name))
        check(body.tell() == len(data) - 10, f"{label}: fastavro left bytes unread")
        check(got == expected, f"{label}: fastavro read {got}\n  expected {expected}")

        # our data read by a v2 reader
        body = io.BytesIO(data[10:])
        got2 = fastavro.schemaless_reader(body, parsed(name), parsed(name, v2=True))
        added, default = V2_ADDED[name]
        want2 = {k: v for k, v in expected.items() if k != V2_DROPPED[name]}
        want2[added] = default
        check(got2 == want2, f"{label}: v2 reader read {got2}\n  expected {want2}")

    # ---- 3. we read what fastavro writes -----------------------------------
    auto = {"kind": "none", "cvss_min": 0.0, "cvss_max": 10.0, "pvrs_categories": []}
    type_rec = {"name": "Blocked ✓ – ユーザー", "description": "d\u00e9j\u00e0 vu",
                "color": "#A1b2C3", "severity_class": "severe", "emitted_severity": "high",
                "auto_rule": {"kind": "cvss", "cvss_min": 7.25, "cvss_max": 10.0,
                              "pvrs_categories": []},
                "default_expiry_days": 30, "inactive": False, "built_in": True,
                "origin": "hub-py", "version": 2**40, "changed_at": 1764158400123}
    type_min = {"name": "T", "description": None, "color": None, "severity_class": "ignore",
                "emitted_severity": None, "auto_rule": auto, "default_expiry_days": None,
                "inactive": True, "built_in": False, "origin": "", "version": 0,
                "changed_at": -5}
    assess_rec = {"vulnerability_id": "GHSA-jfh8-c2jp-5v3q",
                  "scope": {"kind": "project", "name": "webshop ü"},
                  "assessment_type": "Ignore", "comment": "ok 🙂",
                  "package_filter": {"name": "lodash", "version_range": "<4.17.21"},
                  "expires_at": 1893456000000, "automatic": False, "assessed_by": "me",
                  "assessed_at": 1, "origin": "hub", "version": 5, "changed_at": 6}
    policy_rec = {"name": "Global", "description": None,
                  "feeds": ["feed-%d" % i for i in range(30)],
                  "unassessed": "warn",
                  "by_assessment_type": {"Type-%d" % i: "noncompliant" for i in range(25)},
                  "license_undetected": "compliant", "license_other": "warn",
                  "by_license": {"MIT": "compliant", "GPL-3.0-only": "noncompliant"},
                  "deprecated": "unspecified", "unlisted": "warn",
                  "exceptions": [{"package": "pkg-%d*" % i,
                                  "version_range": None if i % 2 else "[1,2)",
                                  "rule_groups": RULE_GROUP_ORDER[: i % 4],
                                  "expires_at": None if i % 3 else 1800000000000 + i}
                                 for i in range(12)],
                  "risk_profile": {"network_exposure": "high", "access_interface": "none",
                                   "service_outage": "low", "data_breach": "medium",
                                   "data_tampering": "unspecified"},
                  "origin": "hub", "version": 77, "changed_at": 1764158400999}
    policy_empty = dict(policy_rec, feeds=[], by_assessment_type={}, by_license={},
                        exceptions=[], risk_profile=None, description="x")

    cases = []  # (file, schema_name, expected record in our schema's shape)
    for i, (name, rec) in enumerate([("assessment_type", type_rec), ("assessment_type", type_min),
                                     ("vulnerability_assessment", assess_rec),
                                     ("policy", policy_rec), ("policy", policy_empty)]):
        cases.append((f"py_{i}.avro", single_object(name, rec), name, rec))

    # v2 writers
    t2 = {k: v for k, v in type_rec.items() if k != "color"}
    t2.update(note="from v2", severity_class="block")
    cases.append(("py_v2_type.avro", single_object("assessment_type", t2, v2=True),
                  "assessment_type", dict(type_rec, color=None, severity_class="warn")))
    a2 = {k: v for k, v in assess_rec.items() if k != "comment"}
    a2["source"] = "scanner"
    cases.append(("py_v2_assessment.avro", single_object("vulnerability_assessment", a2, v2=True),
                  "vulnerability_assessment", dict(assess_rec, comment=None)))
    p2 = {k: v for k, v in policy_rec.items() if k != "license_other"}
    p2.update(owner="secops", deprecated="block",
              by_license={"MIT": "block", "GPL-3.0-only": "noncompliant"},
              exceptions=[{"package": "a", "version_range": None,
                           "rule_groups": ["vulnerability", "unlisted", "license"],
                           "expires_at": None}])
    cases.append(("py_v2_policy.avro", single_object("policy", p2, v2=True), "policy",
                  dict(policy_rec, license_other="unspecified", deprecated="unspecified",
                       by_license={"MIT": "unspecified", "GPL-3.0-only": "noncompliant"},
                       exceptions=[{"package": "a", "version_range": None,
                                    "rule_groups": ["license", "unlisted"],
                                    "expires_at": None}])))

    files = []
    for fname, data, _, _ in cases:
        path = os.path.join(tmp, fname)
        with open(path, "wb") as f:
            f.write(data)
        files.append(path)
    args = [HELPER, "read"] + files
    for name in KINDS.values():
        args += ["--schema", os.path.join(SRC, "tests/data/schemas", name + "_v2.avsc")]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    results = dict(line.split("\t", 1) for line in out.splitlines())
    for (fname, _, name, expected), path in zip(cases, files):
        text = results.get(path, "ERROR no output")
        if text.startswith("ERROR"):
            check(False, f"{fname}: we could not decode fastavro's record: {text}")
            continue
        got = to_avro(name, json.loads(text))
        check(got == expected, f"{fname}: we read {got}\n  expected {expected}")

if failures:
    print(f"{len(failures)} interop check(s) failed")
    sys.exit(1)
print("codec interop with fastavro %s: all %d checks passed" % (fastavro.__version__, checks))
