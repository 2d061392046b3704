"""The Confluent Python client (confluent-kafka from PyPI, a client sysrepl
does not write) against sysrepl's topics and a sysrepl-bridge's Schema
Registry API; run by test_confluent_interop.sh with SRL_PYTHON.

usage:
  confluent_client.py api BRIDGE_URL PREFIX PULL_KEY PUSH_KEY SRC
      the registry API answers like a Schema Registry (ids, subjects,
      versions, lookup, config, errors with error_code, an incompatible
      schema refused with 409)
  confluent_client.py read BOOTSTRAP PREFIX BRIDGE_URL PULL_KEY EXPORT
      reads every record of every content topic with a DeserializingConsumer
      and AvroDeserializer resolving ids at the bridge; the newest value of
      each key must decode to the entity of the hub's `sysrepl export`
      (EXPORT, JSON lines) and every key of it must be there
  confluent_client.py write BOOTSTRAP PREFIX BRIDGE_URL PUSH_KEY SRC NAME VERSION [SUBJECT_PREFIX]
      writes one assessment type NAME with the v2 schema of
      tests/data/schemas (AvroSerializer, which registers it through the
      bridge) to <prefix>.assessment-types; prints the schema id. With
      SUBJECT_PREFIX: the schema gets one more optional field ("label") and
      is registered under <SUBJECT_PREFIX>.assessment-types-value (a
      registry serving other topics)
  confluent_client.py raw BOOTSTRAP TOPIC KEY HEX VERSION
      writes one record of the given value bytes (hex)
SRL_REGISTRY_CA: the CA file that verifies an https:// bridge.
Exits 1 naming the first difference.
"""
import base64
import json
import os
import ssl
import sys
import urllib.error
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from avro_forms import ms, to_avro  # noqa: E402

KINDS = {
    "assessment-types": "assessment_type",
    "vulnerability-assessments": "vulnerability_assessment",
    "policies": "policy",
}
META = ("origin", "version", "changed_at")
MEDIA = "application/vnd.schemaregistry.v1+json"


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def registry(url, key):
    # basic.auth.user.info: any user, the bridge's API key as password
    conf = {"url": url, "basic.auth.user.info": "sysrepl:" + key}
    if os.environ.get("SRL_REGISTRY_CA"):
        conf["ssl.ca.location"] = os.environ["SRL_REGISTRY_CA"]
    return SchemaRegistryClient(conf)


def call(url, key, method, path, body=None):
    """A raw request: (status, content type, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    if key:
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(("u:" + key).encode()).decode())
    if data is not None:
        req.add_header("Content-Type", MEDIA)
    ctx = ssl.create_default_context(cafile=os.environ.get("SRL_REGISTRY_CA"))
    try:
        with urllib.request.urlopen(req, timeout=30, context=ctx) as r:
            status, ctype, raw = r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        status, ctype, raw = e.code, e.headers.get("Content-Type", ""), e.read()
    try:
        return status, ctype, json.loads(raw)
    except ValueError:
        return status, ctype, raw.decode(errors="replace")


def expect(resp, status, code=None):
    st, ctype, body = resp
    if st != status:
        fail("HTTP %d, want %d: %r" % (st, status, body))
    if not ctype.startswith(MEDIA):
        fail("content type %r, want %s" % (ctype, MEDIA))
    if code is not None and (not isinstance(body, dict) or body.get("error_code") != code
                             or not body.get("message")):
        fail("error body %r, want error_code %d and a message" % (body, code))
    return body


def api(url, prefix, pull, push, src):
    subjects = ["%s.%s-value" % (prefix, k) for k in KINDS]
    got = expect(call(url, pull, "GET", "/subjects"), 200)
    if sorted(got) != sorted(subjects):
        fail("subjects %r, want %r" % (got, subjects))
    with open(os.path.join(src, "schemas", "policy.avsc")) as f:
        policy = f.read()
    subject = "%s.policies-value" % prefix
    versions = expect(call(url, pull, "GET", "/subjects/%s/versions" % subject), 200)
    if not versions or versions[0] != 1:
        fail("versions %r" % versions)
    latest = expect(call(url, pull, "GET", "/subjects/%s/versions/latest" % subject), 200)
    one = expect(call(url, pull, "GET", "/subjects/%s/versions/1" % subject), 200)
    found = expect(call(url, pull, "POST", "/subjects/" + subject, {"schema": policy}), 200)
    if found["id"] != one["id"] or found["subject"] != subject or found["version"] != 1:
        fail("lookup %r, version 1 %r" % (found, one))
    by_id = expect(call(url, pull, "GET", "/schemas/ids/%d" % found["id"]), 200)
    if json.loads(by_id["schema"]) != json.loads(policy):
        fail("/schemas/ids/%d is not our policy schema" % found["id"])
    text = expect(call(url, pull, "GET", "/schemas/ids/%d/schema" % found["id"]), 200)
    if text != json.loads(policy):
        fail("/schemas/ids/%d/schema is not our policy schema" % found["id"])
    if latest["id"] <= 0:
        fail("latest %r" % latest)
    if expect(call(url, pull, "GET", "/config"), 200) != {"compatibilityLevel": "FULL"}:
        fail("/config")
    # the registry's errors
    expect(call(url, pull, "GET", "/schemas/ids/7"), 404, 40403)
    expect(call(url, pull, "GET", "/subjects/nope-value/versions"), 404, 40401)
    expect(call(url, pull, "GET", "/subjects/%s/versions/99" % subject), 404, 40402)
    expect(call(url, None, "GET", "/subjects"), 401, 401)
    # registering needs push; a pull key is 403
    expect(call(url, pull, "POST", "/subjects/%s/versions" % subject, {"schema": policy}), 403, 403)
    same = expect(call(url, push, "POST", "/subjects/%s/versions" % subject, {"schema": policy}), 200)
    if same["id"] != found["id"]:
        fail("registering our own schema again gave id %r, not %r" % (same, found["id"]))
    # incompatible (a field without default): 409 with the reason
    bad = json.loads(policy)
    bad["fields"].append({"name": "tier", "type": "int"})
    refused = expect(call(url, push, "POST", "/subjects/%s/versions" % subject,
                          {"schema": json.dumps(bad)}), 409, 409)
    if "tier" not in refused["message"]:
        fail("409 does not name the field: %r" % refused)
    # a schema of another kind under this subject
    with open(os.path.join(src, "schemas", "assessment_type.avsc")) as f:
        other = f.read()
    expect(call(url, push, "POST", "/subjects/%s/versions" % subject, {"schema": other}), 409, 409)
    expect(call(url, push, "POST", "/subjects/%s/versions" % subject, {"schema": "{"}), 422, 42201)
    print("ok: registry API (%d subjects, policy id %d)" % (len(subjects), found["id"]))


def normal(v):
    """An AvroDeserializer value with timestamps as milliseconds."""
    if isinstance(v, dict):
        return {k: normal(x) for k, x in v.items()}
    if isinstance(v, list):
        return [normal(x) for x in v]
    if hasattr(v, "tzinfo"):
        return ms(v)
    return v


def read(bootstrap, prefix, url, pull, export):
    deser = AvroDeserializer(registry(url, pull))
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "srl-confluent-interop",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    newest, counts = {}, {"confluent": 0, "single-object": 0, "tombstone": 0}
    for seg in KINDS:
        topic = "%s.%s" % (prefix, seg)
        parts = c.list_topics(topic, timeout=30).topics[topic].partitions
        tps = []
        for p in parts:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if hi > lo:
                tps.append(TopicPartition(topic, p, lo))
        ends = {tp.partition: c.get_watermark_offsets(tp, timeout=30)[1] for tp in tps}
        c.assign(tps)
        left = set(ends)
        while left:
            m = c.poll(10)
            if m is None:
                fail("%s: no record within 10 s; still to read: partitions %s" % (topic, sorted(left)))
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    left.discard(m.partition())
                    continue
                fail("%s: %s" % (topic, m.error()))
            if m.offset() + 1 >= ends[m.partition()]:
                left.discard(m.partition())
            key = (seg, m.key().decode())
            v = m.value()
            if v is None:
                counts["tombstone"] += 1
                newest.pop(key, None)
            elif v[:1] == b"\x00":
                counts["confluent"] += 1
                ctx = SerializationContext(topic, MessageField.VALUE)
                newest[key] = normal(deser(v, ctx))
            else:
                counts["single-object"] += 1
                newest[key] = None  # not for this client: must be superseded
        c.unassign()
    c.close()
    def canon(seg, rec):
        rec = {f: v for f, v in rec.items() if f not in META}
        rule = rec.get("auto_rule")
        if rule and rule["kind"] != "cvss":
            # CVSS bounds mean nothing to other rules (the JSON form omits them)
            rec["auto_rule"] = {"kind": rule["kind"], "pvrs_categories": rule["pvrs_categories"]}
        return json.dumps([seg, rec], sort_keys=True)

    want = []
    with open(export) as f:
        for line in f:
            j = json.loads(line)
            want.append(canon(j["kind"], to_avro(KINDS[j["kind"]], j["value"])))
    got = []
    for (seg, k), rec in newest.items():
        if rec is None:
            fail("%s key %s: its newest record is single-object, not Confluent" % (seg, k))
        got.append(canon(seg, rec))
    want.sort()
    got.sort()
    if got != want:
        extra = sorted(set(got) - set(want))[:2]
        missing = sorted(set(want) - set(got))[:2]
        fail("%d entities decoded, %d exported; decoded only: %s; exported only: %s" % (
            len(got), len(want), extra, missing))
    print("ok: the Confluent client decoded all %d entities like sysrepl export (%s)" % (
        len(got), ", ".join("%s=%d" % kv for kv in counts.items())))


def write(bootstrap, prefix, url, push, src, name, version, subject_prefix=None):
    with open(os.path.join(src, "tests/data/schemas/assessment_type_v2.avsc")) as f:
        schema = f.read()
    conf = {}
    if subject_prefix:
        doc = json.loads(schema)
        doc["fields"].insert(-3, {"name": "label", "type": ["null", "string"], "default": None})
        schema = json.dumps(doc)
        conf["subject.name.strategy"] = lambda ctx, record_name: subject_prefix + ".assessment-types-value"
    ser = AvroSerializer(registry(url, push), schema, conf=conf)
    topic = "%s.assessment-types" % prefix
    rec = {"name": name, "description": "written by the Confluent Python client",
           "severity_class": "custom", "emitted_severity": "low",
           "auto_rule": {"kind": "none", "cvss_min": 0.0, "cvss_max": 10.0, "pvrs_categories": []},
           "default_expiry_days": 9, "note": "a v2 field sysrepl does not know", "label": "x",
           "inactive": False, "built_in": False,
           "origin": "confluent-python", "version": int(version), "changed_at": 1700000000000}
    value = ser(rec, SerializationContext(topic, MessageField.VALUE))
    if value[:1] != b"\x00":
        fail("AvroSerializer did not write the Confluent framing")
    schema_id = int.from_bytes(value[1:5], "big")
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    p.produce(topic, key=name.encode(), value=value,
              headers=[("sysrepl.version", str(version).encode()),
                       ("sysrepl.origin", b"confluent-python")])
    if p.flush(30) != 0:
        fail("the record was not delivered")
    print(schema_id)


def raw(bootstrap, topic, key, value_hex, version):
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random"})
    p.produce(topic, key=key.encode(), value=bytes.fromhex(value_hex),
              headers=[("sysrepl.version", version.encode())])
    if p.flush(30) != 0:
        fail("the record was not delivered")


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    {"api": api, "read": read, "write": write, "raw": raw}[mode](*args)


if __name__ == "__main__":
    main()
