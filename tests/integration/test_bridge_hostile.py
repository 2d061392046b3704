#!/usr/bin/env python3
"""sysrepl-bridge under hostile clients (issue 14), on the real broker: each
check is a way the bridge was seen to fail. Running out of file
descriptors, one address taking every connection, slow headers, old TLS and
key exchanges without forward secrecy, ambiguous framing (request
smuggling), NUL bytes cutting values short, the HTTP library's own error
answers, and refusals that went unlogged. Raw sockets for the framing."""
import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridge_lib import (API, KEYS, Bridge, Checks, expect_error, kafka_or_skip, raise_fd_limit,  # noqa: E402
                        self_signed_cert, tempdir)

kafka_or_skip()
raise_fd_limit(8192)
PREFIX = "bh-" + uuid.uuid4().hex[:10]
B = Bridge(tempdir(), PREFIX, extra=["bridge.header_timeout_ms=2000"])
C = Checks()
KEY = KEYS["hub"][0].encode()


def push_path(kind="policies"):
    return ("%s/topics/%s/records" % (API, kind)).encode()


def read_all(s, timeout=5):
    """Everything the bridge sends until it closes (or timeout)."""
    out = b""
    deadline = time.time() + timeout
    s.settimeout(0.5)
    while time.time() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def raw(data, port=None, timeout=5):
    s = socket.create_connection(("127.0.0.1", port or B.port), timeout=timeout)
    try:
        s.sendall(data)
        return read_all(s, timeout)
    finally:
        s.close()


def head_and_json(out):
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), out[:300]
    return head, json.loads(body.split(b"\r\n\r\n")[0])


def policy_record(name):
    return json.dumps([{"key": name, "version": 1, "origin": "h", "value": {"name": name}}]).encode()


def policy_versions(name):
    """How many records with this key the bridge serves (both partitions)."""
    n = 0
    st, _, body = B.request("GET", API + "/state")
    assert st == 200, body
    for t in json.loads(body)["topics"]:
        if t["kind"] != "policies":
            continue
        for p in t["partitions"]:
            st, _, body = B.request("GET", "%s/topics/policies/partitions/%d/records?offset=0&max=1000"
                                    % (API, p["partition"]), headers={"Accept": "application/json"})
            assert st == 200, body
            n += sum(1 for r in json.loads(body)["records"] if r["key"] == name)
    return n


# ---- file descriptors and connection limits ----

def fd_limit_lowers_max_connections_and_health_still_answers():
    """Under a 1,024 open-files limit (the systemd default) the default
    max_connections (2,000) is lowered and logged; 1,000 long polls then
    get held or a JSON 503, /health keeps answering, and pushes still reach
    Kafka (it once stopped answering everyone at about 970 connections)."""
    b = Bridge(tempdir(), PREFIX, nofile=1024)
    socks = []
    try:
        log = b.logtext()
        assert "bridge.max_connections lowered to fit the open-files limit" in log, log[-2000:]
        assert "configured=2000" in log and "nofile=1024" in log, log[-2000:]
        st, _, body = b.request("GET", API + "/state")
        hw = {p["partition"]: p["high_watermark"] for t in json.loads(body)["topics"]
              if t["kind"] == "policies" for p in t["partitions"]}
        req = ("GET %s/topics/policies/partitions/0/records?offset=%d&wait_ms=6000 HTTP/1.1\r\n"
               "Host: x\r\nX-ApiKey: %s\r\n\r\n" % (API, hw[0], KEYS["spoke"][0])).encode()
        for _ in range(1000):
            try:
                s = socket.create_connection(("127.0.0.1", b.port), timeout=5)
                s.sendall(req)
                socks.append(s)
            except OSError:
                pass
        time.sleep(1.5)
        t = time.time()
        st, h, body = b.request("GET", "/health", key=None, timeout=5)
        assert st in (200, 503), (st, body)
        if st == 503:
            expect_error((st, h, body), 503, "too many connections")
        assert time.time() - t < 5
        # the ones over the limit were told so in JSON, or closed
        told = 0
        for s in socks[-100:]:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                try:
                    out = s.recv(4096)
                except OSError:
                    out = b""
                if out.startswith(b"HTTP/1.1 503"):
                    head_and_json(out)
                    told += 1
        print("     %d connections opened, %d of the last 100 answered 503 JSON" % (len(socks), told),
              flush=True)
        # a suspended long poll is not watched for its client leaving: the
        # slots come back as the waits (6 s) run out
        for s in socks:
            s.close()
        socks = []
        # (they do not all end at the same moment on a loaded machine: a
        # request may still meet the limit just after /health did not, so
        # both are asked again until the deadline)
        deadline = time.time() + 30
        while True:
            st, _, body = b.request("GET", "/health", key=None, timeout=5)
            if st == 200:
                st, _, body = b.request("POST", API + "/topics/policies/records",
                                        body=policy_record("FD"),
                                        headers={"Content-Type": "application/json"})
            if st == 200 or time.time() > deadline:
                break
            assert st == 503, (st, body)
            time.sleep(0.2)
        if st != 200:
            _, _, m = b.request("GET", "/metrics", timeout=5)
            body += b" / " + b" ".join(l for l in m.splitlines()
                                       if l.startswith((b"sysrepl_bridge_connections", b"sysrepl_bridge_long_polls")))
        assert st == 200, body
    finally:
        for s in socks:
            s.close()
        b.stop()


def per_ip_limit_closes_the_extra_connections_only():
    """bridge.max_connections_per_ip: one address cannot take every
    connection; of 8 from one address 3 are closed at once, unanswered, and
    another address is served."""
    b = Bridge(tempdir(), PREFIX, extra=["bridge.max_connections_per_ip=5"])
    socks = []
    try:
        time.sleep(1)  # the start-up health checks' connections are gone
        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", b.port), timeout=5))
            time.sleep(0.05)
        closed = 0
        deadline = time.time() + 3
        pending = list(socks)
        while pending and time.time() < deadline:
            r, _, _ = select.select(pending, [], [], 0.2)
            for s in r:
                pending.remove(s)
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                assert data == b"", "a connection over the limit was answered: %r" % data[:100]
                closed += 1
        assert closed == 3, "%d of 8 connections from one address closed, want 3 (limit 5)" % closed
        other = socket.socket()
        other.bind(("127.0.0.2", 0))
        other.settimeout(5)
        other.connect(("127.0.0.1", b.port))
        other.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = read_all(other)
        other.close()
        assert out.startswith(b"HTTP/1.1 200"), out[:200]
    finally:
        for s in socks:
            s.close()
        b.stop()


def slow_headers_are_cut_off_at_the_header_timeout():
    """300 connections sending one header byte a second are closed once
    bridge.header_timeout_ms (2 s here) has passed; they were never cut off
    (the idle timeout restarts with every byte). Others are served."""
    socks = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", B.port), timeout=5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        socks.append(s)
    t0 = time.time()
    open_socks = set(socks)
    while open_socks and time.time() - t0 < 8:
        for s in list(open_socks):
            try:
                s.sendall(b"a")
            except OSError:
                open_socks.discard(s)
                continue
            r, _, _ = select.select([s], [], [], 0)
            if r:
                try:
                    if s.recv(4096) == b"":
                        open_socks.discard(s)
                except OSError:
                    open_socks.discard(s)
        st, _, _ = B.request("GET", "/health", key=None, timeout=5)
        assert st == 200
        time.sleep(1)
    took = time.time() - t0
    for s in socks:
        s.close()
    assert not open_socks, "%d of 300 slow-header connections still open after %.1f s" % (len(open_socks), took)
    assert took < 6, took
    assert "connections closed: no request header in time" in B.logtext()
    _, _, m = B.request("GET", "/metrics")
    n = [int(l.split()[1]) for l in m.decode().splitlines() if l.startswith("sysrepl_bridge_header_timeouts_total ")]
    assert n and n[0] >= 300, n


# ---- TLS ----

def tls_refuses_old_versions_and_key_exchanges_without_forward_secrecy():
    """Default bridge.tls_priorities: TLS 1.2+ with ECDHE and AEAD only."""
    d = tempdir()
    cert, key = self_signed_cert(d)
    b = Bridge(d, PREFIX, tls=(cert, key))

    def handshake(*opts):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % b.port, "-CAfile", cert]
                           + list(opts), input=b"", capture_output=True, timeout=20)
        out = r.stdout.decode(errors="replace")
        ok = r.returncode == 0 and "Cipher is (NONE)" not in out and "Cipher is" in out
        return ok, out[-600:] + r.stderr.decode(errors="replace")[-400:]

    try:
        # the client offers them (security level 0), the bridge must say no
        ok, out = handshake("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        assert not ok, "TLS 1.1 accepted:\n" + out
        ok, out = handshake("-tls1", "-cipher", "DEFAULT:@SECLEVEL=0")
        assert not ok, "TLS 1.0 accepted:\n" + out
        ok, out = handshake("-tls1_2", "-cipher", "AES128-GCM-SHA256")
        assert not ok, "TLS 1.2 with RSA key exchange (no forward secrecy) accepted:\n" + out
        ok, out = handshake("-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA")
        assert not ok, "TLS 1.2 with a CBC cipher (not AEAD) accepted:\n" + out
        ok, out = handshake("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
        assert ok, "TLS 1.2 ECDHE-RSA-AES128-GCM refused:\n" + out
        ok, out = handshake("-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384")
        assert ok, "TLS 1.2 ECDHE-RSA-AES256-GCM refused:\n" + out
        ok, out = handshake("-tls1_3")
        assert ok, "TLS 1.3 refused:\n" + out
    finally:
        b.stop()
    r = subprocess.run(b.args + ["-X", "bridge.tls_priorities=NORMAL:+NO-SUCH-THING"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "bridge.tls_priorities" in r.stderr, r.stderr


# ---- framing ----

def two_content_lengths_are_400_and_nothing_is_pushed():
    body = policy_record("SMUGGLED-CL")
    out = raw(b"POST " + push_path() + b" HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + KEY +
              b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\nContent-Length: 0\r\n\r\n"
              % len(body) + body)
    assert out.startswith(b"HTTP/1.1 400"), out[:300]
    head, j = head_and_json(out)
    assert "content-length" in j["error"].lower() and b"connection: close" in head.lower(), out[:400]
    assert out.count(b"HTTP/1.1 ") == 1, out
    time.sleep(1)
    assert policy_versions("SMUGGLED-CL") == 0, "a push framed two ways landed in Kafka"


def content_length_with_transfer_encoding_is_400_and_closed():
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    out = raw(b"POST " + push_path() + b" HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + KEY +
              b"\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\n" + smuggled)
    assert out.startswith(b"HTTP/1.1 400"), out[:300]
    _, j = head_and_json(out)
    assert "transfer-encoding" in j["error"].lower(), j
    assert out.count(b"HTTP/1.1 ") == 1, "the smuggled request was answered: %r" % out


def nul_in_path_query_or_key_is_refused():
    out = raw(b"GET " + API.encode() + b"/state%00.json HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + KEY + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:300]
    assert "nul" in head_and_json(out)[1]["error"].lower()
    out = raw(b"GET " + API.encode() + b"/topics/policies/partitions/0/records?offset=0%00x HTTP/1.1\r\n"
              b"Host: x\r\nX-ApiKey: " + KEY + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:300]
    out = raw(b"GET " + API.encode() + b"/state HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + KEY + b"\x00junk\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 401"), out[:300]
    assert "nul" in head_and_json(out)[1]["error"].lower()
    out = raw(b"GET " + API.encode() + b"/state HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY +
              b"\x00junk\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 401"), out[:300]
    out = raw(b"GET " + API.encode() + b"/state HTTP/1.1\r\nHost: x\r\nX-Other: a\x00b\r\nX-ApiKey: " + KEY +
              b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:300]
    # the same requests without the NUL are fine (the check is not too eager)
    out = raw(b"GET " + API.encode() + b"/state HTTP/1.1\r\nHost: x\r\nX-Other: ab \r\nX-ApiKey:" + KEY +
              b"\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200"), out[:300]
    out = raw(b"GET " + API.encode() + b"/state HTTP/1.1\nHost: x\nX-ApiKey: " + KEY + b"\nConnection: close\n\n")
    assert out.startswith(b"HTTP/1.1 200"), out[:300]


# ---- the library's own answers ----

def invalid_content_length_is_refused_by_the_library():
    """An invalid Content-Length never reaches the bridge: libmicrohttpd
    0.9.75 answers it by itself (400, 413 for a number over 64 bits; with
    its header block twice, a library bug documented in docs/bridge.md) and
    closes; nothing is pushed and the bridge goes on."""
    for cl, status in ((b"abc", b"400"), (b"12x", b"400"), (b"99999999999999999999999", b"413")):
        out = raw(b"POST " + push_path() + b" HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + KEY +
                  b"\r\nContent-Type: application/json\r\nContent-Length: " + cl + b"\r\n\r\n" +
                  policy_record("BAD-CL"))
        assert out.startswith(b"HTTP/1.1 " + status), "Content-Length %r: %r" % (cl, out)
    st, _, _ = B.request("GET", "/health", key=None)
    assert st == 200
    assert policy_versions("BAD-CL") == 0


def library_errors_have_the_right_status():
    """What libmicrohttpd answers by itself keeps its status (its HTML body
    cannot be replaced in 0.9.75; docs/bridge.md)."""
    out = raw(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out == b"" or out.startswith(b"HTTP/1.1 414"), out[:100]
    out = raw(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert out == b"" or out.startswith(b"HTTP/1.1 431"), out[:100]
    out = raw(b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:100]
    out = raw(b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 505"), out[:100]
    chunked = (b"POST " + push_path() + b" HTTP/1.1\r\nHost: x\r\nX-ApiKey: " + KEY +
               b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    out = raw(chunked + b"zz\r\n[]\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:100]
    out = raw(chunked + b"fffffffffffffffffffff\r\n")
    assert out.startswith(b"HTTP/1.1 413"), out[:100]
    # a chunk line (its extension) larger than the connection's pool: the
    # library answers 500 where 413 or 400 would be right (docs/bridge.md)
    body = policy_record("HUGE-EXT")
    out = raw(chunked + b"%x;" % len(body) + b"e" * 20000 + b"\r\n" + body + b"\r\n0\r\n\r\n")
    assert out[:12] in (b"HTTP/1.1 500", b"HTTP/1.1 413", b"HTTP/1.1 400"), out[:100]
    st, _, _ = B.request("GET", "/health", key=None)
    assert st == 200
    assert policy_versions("HUGE-EXT") == 0


# ---- logging ----

def refusals_are_logged_rate_limited_without_the_key():
    bad = "wrong-" + uuid.uuid4().hex
    for _ in range(60):
        st, _, _ = B.request("GET", API + "/state", key=bad)
        assert st == 401
    time.sleep(1.1)
    expect_error(B.request("GET", API + "/state", key=bad), 401, "unknown API key")
    expect_error(B.request("GET", API + "/nothing-here"), 404, "no such route")
    expect_error(B.request("POST", API + "/topics/policies/records", key="spoke", body=b"[]",
                           headers={"Content-Type": "application/json"}), 403, "push permission")
    time.sleep(0.2)
    log = B.logtext()
    lines = [l for l in log.splitlines() if 'msg="request refused"' in l]
    assert any("status=401" in l and "key=-" in l and "peer=127.0.0.1" in l for l in lines), lines[-5:]
    assert any("status=404" in l for l in lines), lines[-5:]
    assert any("status=403" in l and "key=spoke" in l for l in lines), lines[-5:]
    assert bad not in log and KEYS["hub"][0] not in log, "a key was logged"
    assert len([l for l in lines if "status=401" in l]) < 60, "401s are not rate-limited"
    assert any("suppressed=" in l and "suppressed=0" not in l for l in lines), "suppressed lines not counted"


ORDER = [nul_in_path_query_or_key_is_refused, two_content_lengths_are_400_and_nothing_is_pushed,
         content_length_with_transfer_encoding_is_400_and_closed,
         invalid_content_length_is_refused_by_the_library,
         library_errors_have_the_right_status, refusals_are_logged_rate_limited_without_the_key,
         slow_headers_are_cut_off_at_the_header_timeout, per_ip_limit_closes_the_extra_connections_only,
         tls_refuses_old_versions_and_key_exchanges_without_forward_secrecy,
         fd_limit_lowers_max_connections_and_health_still_answers]
try:
    for fn in ORDER:
        C.run(fn.__name__, fn)
finally:
    B.stop()
C.finish()
