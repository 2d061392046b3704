#!/usr/bin/env python3
"""sysrepl-bridge over HTTP, on the real broker: every error path answers
with its exact status and a JSON body naming the problem; keys are checked;
keys are read again on SIGHUP; pushes are all-or-nothing; pulls serve what is on the topic (binary framing
and JSON); hostile clients (truncated, oversized, slow, 1,000 concurrent
long polls) never stop the bridge serving others; topics with one replica are
warned about and a min.insync.replicas above the replication factor refused."""
import base64
import json
import os
import select
import socket
import struct
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridge_lib import (API, KEYS, MEDIA, Bridge, Checks, decode_framing, encode_framing,  # noqa: E402
                        expect_error, free_port, kafka_or_skip, raise_fd_limit, self_signed_cert,
                        tempdir)

kafka_or_skip()
raise_fd_limit(8192)
TMP = tempdir()
PREFIX = "bt-" + uuid.uuid4().hex[:10]
B = Bridge(TMP, PREFIX, extra=["bridge.max_body_bytes=65536", "bridge.max_batch_records=50",
                               "bridge.request_timeout_ms=2000", "bridge.long_poll_max_ms=20000",
                               "bridge.max_connections=1500"])
C = Checks()


def pull_path(kind, p, **q):
    qs = "&".join("%s=%s" % kv for kv in q.items())
    return "%s/topics/%s/partitions/%d/records%s" % (API, kind, p, "?" + qs if qs else "")


def push_json(records, kind="assessment-types", key="hub"):
    return B.request("POST", "%s/topics/%s/records" % (API, kind), key=key, body=json.dumps(records),
                     headers={"Content-Type": "application/json"})


def state():
    st, _, body = B.request("GET", API + "/state")
    assert st == 200, body
    return {t["kind"]: t for t in json.loads(body)["topics"]}


def total_high(kind):
    return sum(p["high_watermark"] for p in state()[kind]["partitions"])


def pull_all(kind):
    """Every record of every partition of kind, read through the bridge up to
    the broker's high watermarks (the bridge's tail sees an acknowledged
    record a moment after the ack, so wait for it)."""
    highs = {p["partition"]: p["high_watermark"] for p in state()[kind]["partitions"]}
    out = []
    for p, high in highs.items():
        deadline = time.time() + 10
        offset, recs = 0, []
        while offset < high:
            assert time.time() < deadline, "partition %d stuck at %d < %d" % (p, offset, high)
            st, h, body = B.request("GET", pull_path(kind, p, offset=offset, max=1000, wait_ms=500))
            assert st == 200, body
            recs += decode_framing(body)
            offset = int(h["x-sysrepl-next-offset"])
        out += recs
    return out


def atype(name, version, origin="hub-1"):
    return {"key": name, "version": version, "origin": origin,
            "value": {"name": name, "severity_class": "warn", "description": "d " + name}}


# ---- auth ----

def health_needs_no_key():
    st, h, body = B.request("GET", "/health", key=None)
    j = json.loads(body)
    assert st == 200 and j["broker_reachable"] is True and j["status"] == "ok", body
    assert PREFIX + ".policies" in j["topics"] and j["version"]


def missing_key_is_401():
    e = expect_error(B.request("GET", API + "/state", key=None), 401, "no API key")
    assert "X-ApiKey" in e["error"]


def wrong_key_is_401():
    expect_error(B.request("GET", API + "/state", key="not-a-key"), 401, "unknown API key")


def bearer_and_basic_keys_are_accepted():
    """Bearer <key>, and Basic with the key as password (any user: what
    Schema Registry clients send); a Basic credential of no key is 401."""
    st, _, _ = B.request("GET", API + "/state", key=None,
                         headers={"Authorization": "Bearer " + KEYS["spoke"][0]})
    assert st == 200
    basic = base64.b64encode(("anyone:" + KEYS["spoke"][0]).encode()).decode()
    st, _, _ = B.request("GET", API + "/state", key=None, headers={"Authorization": "Basic " + basic})
    assert st == 200
    expect_error(B.request("GET", API + "/state", key=None, headers={"Authorization": "Basic eDp5"}),
                 401, "unknown API key")
    expect_error(B.request("GET", API + "/state", key=None, headers={"Authorization": "Digest x"}),
                 401, "Bearer")


def pull_key_cannot_push_403():
    expect_error(push_json([atype("A", 1)], key="spoke"), 403, "push permission")


def key_limited_to_kinds_is_403_elsewhere():
    expect_error(B.request("GET", pull_path("assessment-types", 0, offset=0), key="limited"), 403,
                 "not allowed the kind assessment-types")
    st, _, _ = B.request("GET", pull_path("policies", 0, offset=0), key="limited")
    assert st == 200


def key_never_logged():
    for name, (key, _, _) in KEYS.items():
        assert key not in B.logtext(), "key of %s appears in the log" % name
    assert "key=spoke" in B.logtext()  # the forbidden push is logged by name


def keys_file_reloads_on_sighup():
    """SIGHUP reads bridge.keys_file again: a new key works without a
    restart, a removed one is refused, and a broken file changes nothing."""
    import signal
    path = os.path.join(TMP, "keys")
    with open(path) as f:
        original = f.read()
    new_key = "rotated-secret-key-" + uuid.uuid4().hex[:8]
    line = subprocess.run([B.args[0], "--hash-key", new_key, "--name", "spoke-rotated", "--perms", "pull"],
                          check=True, capture_output=True, text=True).stdout

    def status_with(key):
        return B.request("GET", API + "/state", key=key)[0]

    def reload_and_wait(fragment, count):
        B.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and B.logtext().count(fragment) < count:
            time.sleep(0.05)
        assert B.logtext().count(fragment) >= count, "no %r in the log after SIGHUP" % fragment

    try:
        assert status_with(new_key) == 401
        with open(path, "a") as f:
            f.write(line)
        reload_and_wait("keys reloaded", 1)
        assert status_with(new_key) == 200
        assert status_with("spoke") == 200
        assert "keys=%d" % (len(KEYS) + 1) in B.logtext()
        # a broken file: refused with file and line, the keys in use stay
        with open(path, "a") as f:
            f.write("broken-line-without-a-hash\n")
        reload_and_wait("keys file not reloaded", 1)
        nlines = original.count("\n") + 2
        assert "%s:%d: too few fields" % (path, nlines) in B.logtext(), B.logtext()[-2000:]
        assert status_with(new_key) == 200 and status_with("hub") == 200
        # the rotated key removed again
        with open(path, "w") as f:
            f.write(original)
        reload_and_wait("keys reloaded", 2)
        expect_error(B.request("GET", API + "/state", key=new_key), 401, "unknown API key")
        assert status_with("spoke") == 200
        assert B.proc.poll() is None, "the bridge exited on SIGHUP"
        assert new_key not in B.logtext()
    finally:
        with open(path, "w") as f:
            f.write(original)


# ---- routes and parameters ----

def unknown_route_is_404():
    expect_error(B.request("GET", "/api/replication/v1/nothing"), 404, "no such route")
    expect_error(B.request("GET", "/"), 404, "no such route")


def wrong_method_is_405_with_allow():
    st, h, body = B.request("DELETE", API + "/state")
    assert st == 405 and h.get("allow") == "GET, HEAD", (st, h)
    expect_error(B.request("GET", API + "/topics/policies/records"), 405, "use POST")


def unknown_kind_is_404():
    expect_error(B.request("GET", pull_path("galaxies", 0, offset=0)), 404, "unknown kind \"galaxies\"")


def bad_partition_is_400_and_missing_one_404():
    expect_error(B.request("GET", API + "/topics/policies/partitions/-1/records?offset=0"), 400,
                 "partition must be a non-negative integer")
    expect_error(B.request("GET", API + "/topics/policies/partitions/9/records?offset=0"), 404,
                 "has no partition 9")


def bad_query_parameters_are_400():
    expect_error(B.request("GET", pull_path("policies", 0)), 400, "offset is required")
    expect_error(B.request("GET", pull_path("policies", 0, offset="-1")), 400, "offset must be an integer")
    expect_error(B.request("GET", pull_path("policies", 0, offset="1x")), 400, "\"1x\"")
    expect_error(B.request("GET", pull_path("policies", 0, offset=0, max=0)), 400, "max must be")
    expect_error(B.request("GET", pull_path("policies", 0, offset=0, ofset=1)), 400,
                 "unknown query parameter \"ofset\"")


def offset_beyond_high_watermark_is_416():
    e = expect_error(B.request("GET", pull_path("policies", 1, offset=1000000)), 416, "beyond the high watermark")
    assert e["high_watermark"] >= 0


def schemas_route():
    expect_error(B.request("GET", API + "/schemas/zz"), 400, "16 hex digits")
    expect_error(B.request("GET", API + "/schemas/0000000000000001"), 404, "unknown schema fingerprint")


# ---- push and pull ----

PUSHED = []


def push_json_is_pulled_back_binary_and_json():
    recs = [atype("Blocked-%d" % i, 10 + i) for i in range(20)] + [
        {"key": "Gone", "version": 40, "origin": "hub-1", "value": None}]
    before = total_high("assessment-types")
    st, _, body = push_json(recs)
    assert st == 200, body
    assert json.loads(body)["accepted"] == 21
    assert total_high("assessment-types") == before + 21
    got = {}
    for p in range(2):
        st, h, body = B.request("GET", pull_path("assessment-types", p, offset=0, max=1000),
                                headers={"Accept": MEDIA})
        assert st == 200 and h["content-type"] == MEDIA
        batch = decode_framing(body)
        assert int(h["x-sysrepl-record-count"]) == len(batch)
        assert int(h["x-sysrepl-high-watermark"]) >= int(h["x-sysrepl-next-offset"])
    for r in pull_all("assessment-types"):
        got[r["key"]] = r
    for r in recs:
        g = got[r["key"]]
        assert g["version"] == r["version"] and g["origin"] == "hub-1"
        if r["value"] is None:
            assert g["value"] is None
        else:
            assert g["value"][:2] == b"\xc3\x01", g["value"][:10]
    PUSHED.extend(got.values())
    # the same through JSON
    st, h, body = B.request("GET", pull_path("assessment-types", 0, offset=0),
                            headers={"Accept": "application/json"})
    j = json.loads(body)
    assert st == 200 and j["records"] and j["next_offset"] == int(h["x-sysrepl-next-offset"])
    for r in j["records"]:
        if r["value"] is not None:
            assert r["value"]["name"] == r["key"] and r["value"]["severity_class"] == "warn"
            assert r["value"]["version"] == r["version"]


def pull_from_the_middle_and_max():
    st, h, body = B.request("GET", pull_path("assessment-types", 0, offset=1, max=2))
    batch = decode_framing(body)
    assert len(batch) <= 2 and all(r["offset"] >= 1 for r in batch)
    if len(batch) == 2:
        assert int(h["x-sysrepl-next-offset"]) == batch[-1]["offset"] + 1


def binary_push_keeps_bytes_and_schema_route_serves_writer():
    src = [r for r in PUSHED if r["value"] is not None][:3]
    recs = [dict(key=r["key"], version=r["version"], origin=r["origin"], value=r["value"]) for r in src]
    st, _, body = B.request("POST", API + "/topics/assessment-types/records", body=encode_framing(recs),
                            headers={"Content-Type": MEDIA})
    assert st == 200 and json.loads(body)["accepted"] == 3, body
    fp = struct.unpack("<Q", src[0]["value"][2:10])[0]
    st, _, body = B.request("GET", API + "/schemas/%016x" % fp)
    assert st == 200 and json.loads(body)["type"] == "record", body[:200]
    # the pushed copies are on the topic with the very same bytes
    seen = 0
    for r in pull_all("assessment-types"):
        for s in src:
            if r["key"] == s["key"] and r["offset"] != s["offset"]:
                assert r["value"] == s["value"]
                seen += 1
    assert seen == 3, seen


def bad_record_rejects_whole_batch_422():
    before = total_high("assessment-types")
    recs = [atype("Fine-1", 100), dict(atype("Fine-2", 101), key="Other"), atype("Fine-3", 102)]
    e = expect_error(push_json(recs), 422, "record 1: key \"Other\" is not the value's key")
    assert e["record"] == 1
    e = expect_error(push_json([atype("V0", 0)]), 422, "version must be > 0")
    e = expect_error(push_json([atype("K", 5, origin="")]), 422, "origin is missing")
    bad_value = [atype("Bad", 5)]
    bad_value[0]["value"]["severity_class"] = "galaxy"
    expect_error(push_json(bad_value), 422, "severity_class")
    wrong_kind = [{"key": "Global", "version": 3, "origin": "h", "value": {"name": "Global"}}]
    st, _, _ = push_json(wrong_kind, kind="policies")
    assert st == 200
    # a policies value pushed as assessment-types: binary, so the kind check runs on the decoded value
    pol = [r for r in pull_all("policies") if r["value"]]
    r = pol[0]
    e = expect_error(B.request("POST", API + "/topics/assessment-types/records",
                               body=encode_framing([dict(key=r["key"], version=r["version"], origin=r["origin"],
                                                         value=r["value"])]),
                               headers={"Content-Type": MEDIA}), 422, "is a policies record, not assessment-types")
    time.sleep(0.5)
    assert total_high("assessment-types") == before, "a rejected batch reached the topic"


def malformed_bodies_are_400_415_413():
    expect_error(B.request("POST", API + "/topics/policies/records", body=b"[{", headers={"Content-Type": "application/json"}),
                 400, "malformed JSON")
    expect_error(B.request("POST", API + "/topics/policies/records", body=b"{}", headers={"Content-Type": "application/json"}),
                 400, "JSON array")
    expect_error(B.request("POST", API + "/topics/policies/records", body=b"x", headers={"Content-Type": "text/plain"}),
                 415, "Content-Type must be")
    expect_error(B.request("POST", API + "/topics/policies/records", body=b"XXXX\0\0\0\0",
                           headers={"Content-Type": MEDIA}), 400, "magic")
    good = encode_framing([dict(key="Global", version=1, origin="h", value=b"\xc3\x01" + b"\0" * 8)])
    expect_error(B.request("POST", API + "/topics/policies/records", body=good[:-3],
                           headers={"Content-Type": MEDIA}), 400, "malformed batch")
    e = expect_error(B.request("POST", API + "/topics/policies/records", body=good,
                               headers={"Content-Type": MEDIA}), 422, "record 0")
    assert "fingerprint" in e["error"] or "schema" in e["error"], e
    huge = b"SRB1" + struct.pack(">I", 0xFFFFFFFF) + b"\0" * 100
    expect_error(B.request("POST", API + "/topics/policies/records", body=huge, headers={"Content-Type": MEDIA}),
                 400, "claims 4294967295 records")
    too_many = [atype("M%d" % i, 1 + i) for i in range(51)]
    expect_error(push_json(too_many), 413, "bridge.max_batch_records = 50")
    expect_error(B.request("POST", API + "/topics/policies/records", body=b"[" + b" " * 70000 + b"]",
                           headers={"Content-Type": "application/json"}), 413, "bridge.max_body_bytes")


def raw(data, read=True, timeout=10):
    s = socket.create_connection(("127.0.0.1", B.port), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out:
                    head, _, rest = out.partition(b"\r\n\r\n")
                    cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if cl and len(rest) >= int(cl[0].split(b":")[1]):
                        break
        except socket.timeout:
            pass
    s.close()
    return out


def hostile_http_never_stops_the_bridge():
    key = KEYS["hub"][0].encode()
    # chunked body without a length, over the limit
    chunk = b"%x\r\n%s\r\n" % (40000, b"a" * 40000)
    out = raw(b"POST " + API.encode() + b"/topics/policies/records HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + key +
              b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3 + b"0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    # truncated body: promises 1000 bytes, sends 10, hangs up
    raw(b"POST " + API.encode() + b"/topics/policies/records HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + key +
        b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"key\":1", read=False)
    # garbage request line and a header block over the limit
    out = raw(b"\x00\x01\x02 GARBAGE\r\n\r\n")
    assert out == b"" or out.startswith(b"HTTP/1.1 400"), out[:100]
    out = raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert out == b"" or out[:12] in (b"HTTP/1.1 431", b"HTTP/1.1 413", b"HTTP/1.1 400"), out[:100]
    # path with a NUL and percent-escapes
    out = raw(b"GET /api/replication/v1/topics/%00/partitions/0/records?offset=0 HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + key + b"\r\n\r\n")
    assert out[:12] in (b"HTTP/1.1 404", b"HTTP/1.1 400"), out[:100]
    st, _, _ = B.request("GET", "/health", key=None)
    assert st == 200


def slow_client_is_cut_off_and_others_are_served():
    key = KEYS["hub"][0].encode()
    s = socket.create_connection(("127.0.0.1", B.port), timeout=10)
    s.sendall(b"POST " + API.encode() + b"/topics/policies/records HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + key +
              b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[")
    t0 = time.time()
    closed = False
    answered = b""
    for _ in range(12):  # one byte every 0.4 s: slower than bridge.request_timeout_ms = 2000
        st, _, _ = B.request("GET", "/health", key=None, timeout=5)
        assert st == 200, "bridge stopped serving while a client was slow"
        try:
            s.sendall(b" ")
        except OSError:
            closed = True
            break
        r, _, _ = select.select([s], [], [], 0.4)
        if r:
            answered = s.recv(4096)
            closed = True
            break
    s.close()
    assert closed, "a client trickling its body was never cut off"
    assert answered == b"" or answered.startswith(b"HTTP/1.1 408"), answered[:100]
    assert time.time() - t0 < 6


def long_polls_1000_cheap_and_woken():
    n = 1000
    base = total_high("policies")
    # where does a new "LP" policy land? push once, find it, then poll its partition from its end
    st, _, _ = push_json([{"key": "LP", "version": 1, "origin": "h", "value": {"name": "LP"}}], kind="policies")
    assert st == 200
    # the tail sees an acknowledged record a moment after the ack: look until it is there
    part, nxt = None, None
    deadline = time.time() + 10
    while part is None and time.time() < deadline:
        for p in range(2):
            _, h, body = B.request("GET", pull_path("policies", p, offset=0, max=1000))
            recs = [r for r in decode_framing(body) if r["key"] == "LP"]
            if recs:
                part, nxt = p, int(h["x-sysrepl-next-offset"])
        time.sleep(0.05)
    assert part is not None
    rss0 = B.rss_kb()
    req = ("GET %s HTTP/1.1\r\nHost: x\r\nX-ApiKey: %s\r\n\r\n" %
           (pull_path("policies", part, offset=nxt, wait_ms=15000), KEYS["spoke"][0])).encode()
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", B.port), timeout=10)
        s.sendall(req)
        socks.append(s)
    time.sleep(1.0)
    # the bridge still serves everything else quickly
    t = time.time()
    for _ in range(20):
        st, _, _ = B.request("GET", API + "/state", timeout=5)
        assert st == 200
    per_request = (time.time() - t) / 20
    _, _, body = B.request("GET", "/metrics")
    waiting = [l for l in body.decode().splitlines() if l.startswith("sysrepl_bridge_long_polls ")]
    if not (waiting and int(waiting[0].split()[1]) >= n):
        socks[0].settimeout(1)
        try:
            sample = socks[0].recv(300)
        except OSError as e:
            sample = repr(e)
        raise AssertionError("%s; a long poll got: %r" % (waiting, sample))
    rss1 = B.rss_kb()
    print("     %d long polls held: bridge RSS %d kB (was %d kB), /state %.1f ms each meanwhile"
          % (n, rss1, rss0, per_request * 1000), flush=True)
    assert rss1 < 100 * 1024, "RSS %d kB over 100 MB" % rss1
    # broker queries must not queue behind a reader's fetch (it did once: 1.5 s each)
    assert per_request < 0.5, "/state took %.0f ms while long polls were held" % (per_request * 1000)
    # one record wakes them all
    t = time.time()
    st, _, _ = push_json([{"key": "LP", "version": 2, "origin": "h", "value": {"name": "LP"}}], kind="policies")
    assert st == 200
    ok = 0
    pending = set(socks)
    bufs = {s: b"" for s in socks}
    deadline = time.time() + 20
    while pending and time.time() < deadline:
        r, _, _ = select.select(list(pending), [], [], 1)
        for s in r:
            chunk = s.recv(65536)
            bufs[s] += chunk
            head, sep, rest = bufs[s].partition(b"\r\n\r\n")
            if sep:
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(rest) >= int(cl[0].split(b":")[1]):
                    assert head.startswith(b"HTTP/1.1 200"), head[:100]
                    recs = decode_framing(rest)
                    assert len(recs) == 1 and recs[0]["key"] == "LP" and recs[0]["version"] == 2
                    ok += 1
                    pending.discard(s)
            if not chunk:
                pending.discard(s)
    wake = time.time() - t
    for s in socks:
        s.close()
    print("     all %d woken by one push in %.2f s" % (ok, wake), flush=True)
    assert ok == n, "%d of %d long polls answered" % (ok, n)
    assert total_high("policies") == base + 2


def long_poll_times_out_empty():
    hw = {p["partition"]: p["high_watermark"] for p in state()["vulnerability-assessments"]["partitions"]}
    t = time.time()
    st, h, body = B.request("GET", pull_path("vulnerability-assessments", 0, offset=hw[0], wait_ms=700))
    took = time.time() - t
    assert st == 200 and decode_framing(body) == [] and int(h["x-sysrepl-next-offset"]) == hw[0]
    assert 0.6 <= took < 3, took


def state_has_watermarks_and_retention():
    s = state()
    for kind in ("assessment-types", "vulnerability-assessments", "policies"):
        t = s[kind]
        assert t["topic"] == PREFIX + "." + kind and t["partition_count"] == 2
        assert t["delete_retention_ms"] == 7 * 24 * 3600 * 1000
        for p in t["partitions"]:
            assert 0 <= p["low_watermark"] <= p["high_watermark"]


def metrics_count_requests_by_route_and_status():
    expect_error(B.request("GET", "/metrics", key=None), 401, "no API key")
    st, h, body = B.request("GET", "/metrics")
    text = body.decode()
    assert st == 200 and h["content-type"].startswith("text/plain")
    for want in ('sysrepl_bridge_requests_total{route="pull",status="200"}',
                 'sysrepl_bridge_requests_total{route="push",status="422"}',
                 'sysrepl_bridge_requests_total{route="state",status="401"}',
                 'sysrepl_bridge_request_duration_seconds_bucket{route="pull",le="+Inf"}',
                 'sysrepl_bridge_records_accepted_total{kind="assessment-types"}',
                 "sysrepl_bridge_push_rejected_total"):
        assert want in text, "metrics lack " + want


def metrics_key_reads_metrics_only():
    """A key printed by --hash-key --perms metrics is accepted in the keys
    file (the bridge started with it) and reads /metrics, nothing else."""
    st, _, body = B.request("GET", "/metrics", key="monitor")
    assert st == 200 and "sysrepl_bridge_requests_total" in body.decode(), (st, body)
    expect_error(B.request("GET", API + "/state", key="monitor"), 403, "lacks the pull or push permission")
    expect_error(B.request("GET", pull_path("policies", 0, offset=0), key="monitor"), 403,
                 "lacks the pull permission")
    expect_error(push_json([atype("M", 1)], key="monitor"), 403, "lacks the push permission")


def connection_limit_is_503_with_a_message():
    b2 = Bridge(tempdir(), PREFIX, extra=["bridge.max_connections=4"])
    try:
        idle = [socket.create_connection(("127.0.0.1", b2.port)) for _ in range(6)]
        time.sleep(0.3)
        expect_error(b2.request("GET", "/health", key=None), 503, "too many connections")
        for s in idle:
            s.close()
        time.sleep(0.3)
        st, _, _ = b2.request("GET", "/health", key=None)
        assert st == 200
    finally:
        b2.stop()


def tls_serves_https_and_refuses_without_config():
    d = tempdir()
    cert, key = self_signed_cert(d)
    b3 = Bridge(d, PREFIX, tls=(cert, key))
    try:
        st, _, body = b3.request("GET", API + "/state")
        assert st == 200 and json.loads(body)["topics"]
        out = b""
        s = socket.create_connection(("127.0.0.1", b3.port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            out = s.recv(100)
        except OSError:
            pass
        s.close()
        assert not out.startswith(b"HTTP/1.1 200"), "plain HTTP answered on the TLS port"
    finally:
        b3.stop()
    args = list(B.args)
    i = args.index("bridge.plain_http=true")
    del args[i - 1:i + 1]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "bridge.tls_cert" in r.stderr and "bridge.plain_http" in r.stderr, r.stderr
    r = subprocess.run(B.args + ["-X", "bridge.tls_cert=" + cert], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "choose one" in r.stderr, r.stderr


def topic_replication_warned_or_refused():
    """Topics with one replica: a warning at start naming each content
    topic. topic.min_insync_replicas above topic.replication_factor: the
    bridge stops, the message naming both keys."""
    prefix = PREFIX + "-rf1"
    b4 = Bridge(tempdir(), prefix, extra=["topic.replication_factor=1"])
    try:
        deadline = time.time() + 30
        want = ['msg="topic has a single replica" topic=%s.%s replicas=1' % (prefix, kind)
                for kind in ("assessment-types", "vulnerability-assessments", "policies")]
        while time.time() < deadline and not all(w in b4.logtext() for w in want):
            time.sleep(0.2)
        for w in want:
            assert w in b4.logtext(), (w, b4.logtext()[-2000:])
    finally:
        b4.stop()
    port = "bridge.port=%d" % free_port()
    args = [port if a == "bridge.port=%d" % B.port else a.replace(PREFIX, PREFIX + "-minisr")
            for a in B.args]
    r = subprocess.run(args + ["-X", "topic.replication_factor=1", "-X", "topic.min_insync_replicas=2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and ("topic.min_insync_replicas = 2 is greater than topic.replication_factor = 1"
                                  in r.stderr + r.stdout), (r.returncode, r.stderr[-2000:])


ORDER = [health_needs_no_key, missing_key_is_401, wrong_key_is_401, bearer_and_basic_keys_are_accepted,
         pull_key_cannot_push_403, key_limited_to_kinds_is_403_elsewhere, key_never_logged,
         keys_file_reloads_on_sighup,
         unknown_route_is_404, wrong_method_is_405_with_allow, unknown_kind_is_404,
         bad_partition_is_400_and_missing_one_404, bad_query_parameters_are_400,
         offset_beyond_high_watermark_is_416, schemas_route, state_has_watermarks_and_retention,
         push_json_is_pulled_back_binary_and_json, pull_from_the_middle_and_max,
         binary_push_keeps_bytes_and_schema_route_serves_writer, bad_record_rejects_whole_batch_422,
         malformed_bodies_are_400_415_413, hostile_http_never_stops_the_bridge,
         slow_client_is_cut_off_and_others_are_served, long_poll_times_out_empty,
         long_polls_1000_cheap_and_woken, metrics_count_requests_by_route_and_status,
         metrics_key_reads_metrics_only,
         connection_limit_is_503_with_a_message, tls_serves_https_and_refuses_without_config,
         topic_replication_warned_or_refused]
try:
    for fn in ORDER:
        C.run(fn.__name__, fn)
finally:
    B.stop()
C.finish()
