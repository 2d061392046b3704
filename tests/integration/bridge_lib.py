"""Helpers for the sysrepl-bridge integration tests (python3 stdlib only).

Starts a real sysrepl-bridge against the test Kafka broker (SRL_TEST_KAFKA)
with a throwaway topic prefix and a keys file, and speaks HTTP to it. The
binary framing decoder here is a second, independent reading of
common/include/sysrepl/framing.h.
"""
import http.client
import json
import os
import resource
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

KEYS = {  # name: (key, perms, kinds)
    "hub": ("hub-secret-key", "pull,push", None),
    "spoke": ("spoke-secret-key", "pull", None),
    "limited": ("limited-secret-key", "pull", "policies"),
    # Made, like the others, by `sysrepl-bridge --hash-key ... --perms metrics`:
    # the bridge starts only if it accepts the line.
    "monitor": ("monitor-secret-key", "metrics", None),
}
API = "/api/replication/v1"
MEDIA = "application/vnd.sysrepl.records"


def build_dir():
    return os.environ.get("SRL_BUILD_DIR") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build")


def bridge_bin():
    return os.path.join(build_dir(), "bridge", "sysrepl-bridge")


def kafka_or_skip():
    k = os.environ.get("SRL_TEST_KAFKA")
    if not k:
        print("SKIP: SRL_TEST_KAFKA is not set (run through tests/run, or eval \"$(deploy/local/env)\")")
        sys.exit(0)
    return k


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_fd_limit(n=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, n), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


class Bridge:
    """A running sysrepl-bridge; stop() ends it (SIGTERM) and checks it exits 0."""

    def __init__(self, tmp, prefix, tls=None, extra=None, plain=True, config=None, nofile=None):
        """nofile: the open-files limit (soft and hard) the bridge starts
        with; default a soft limit of 8192."""
        self.tmp = tmp
        self.port = free_port()
        self.prefix = prefix
        self.tls = tls
        keys_path = os.path.join(tmp, "keys")
        with open(keys_path, "w") as f:
            for name, (key, perms, kinds) in KEYS.items():
                line = subprocess.run([bridge_bin(), "--hash-key", key, "--name", name, "--perms", perms]
                                      + (["--kinds", kinds] if kinds else []),
                                      check=True, capture_output=True, text=True).stdout
                f.write(line)
        self.args = [bridge_bin(), "-X", "instance.id=test-bridge", "-X", "bridge.keys_file=" + keys_path,
                     "-X", "kafka.bootstrap.servers=" + kafka_or_skip(), "-X", "topic.prefix=" + prefix,
                     "-X", "bridge.port=%d" % self.port, "-X", "topic.partitions=2",
                     "-X", "stats.interval_ms=0"]
        if tls:
            self.args += ["-X", "bridge.tls_cert=" + tls[0], "-X", "bridge.tls_key=" + tls[1]]
        elif plain:
            self.args += ["-X", "bridge.plain_http=true"]
        if os.environ.get("SRL_BRIDGE_TEST_DEBUG"):
            self.args += ["-X", "log.level=debug"]
        for kv in extra or []:
            self.args += ["-X", kv]
        if config:  # a -c file (what SIGHUP reads again)
            self.args += ["-c", config]
        self.log_path = os.path.join(tmp, "bridge-%d.log" % self.port)
        self.log = open(self.log_path, "w")
        if nofile:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        else:
            def limit():
                raise_fd_limit(8192)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=limit)
        self.wait_healthy()

    def wait_healthy(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("bridge exited with %s:\n%s" % (self.proc.returncode, self.logtext()))
            try:
                st, _, body = self.request("GET", "/health", key=None)
                if st == 200 and json.loads(body)["status"] == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("bridge not healthy within %ss:\n%s" % (timeout, self.logtext()))

    def logtext(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def conn(self, timeout=30):
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            ctx.check_hostname = False
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, key="hub", body=None, headers=None, timeout=30):
        h = dict(headers or {})
        if key:
            h.setdefault("X-ApiKey", KEYS[key][0] if key in KEYS else key)
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
        finally:
            c.close()

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                rc = self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("bridge did not stop within 30 s after SIGTERM")
            assert rc == 0, "bridge exited %d after SIGTERM:\n%s" % (rc, self.logtext()[-3000:])
        self.log.close()


def self_signed_cert(d):
    """A throwaway RSA certificate for 127.0.0.1 in directory d: (cert, key) paths."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def decode_framing(data):
    """Decode a batch (framing.h) into a list of dicts; raises on any error."""
    assert data[:4] == b"SRB1", "bad magic %r" % data[:4]
    (count,) = struct.unpack(">I", data[4:8])
    pos, out = 8, []
    for _ in range(count):
        offset, partition, version, ts = struct.unpack(">qiqq", data[pos:pos + 28])
        pos += 28
        (klen,) = struct.unpack(">I", data[pos:pos + 4])
        key = data[pos + 4:pos + 4 + klen]
        pos += 4 + klen
        (olen,) = struct.unpack(">I", data[pos:pos + 4])
        origin = data[pos + 4:pos + 4 + olen].decode() if olen else None
        pos += 4 + olen
        (vlen,) = struct.unpack(">i", data[pos:pos + 4])
        pos += 4
        value = None
        if vlen >= 0:
            value = data[pos:pos + vlen]
            pos += vlen
        out.append(dict(offset=offset, partition=partition, version=version, timestamp=ts,
                        key=key.decode(), origin=origin, value=value))
    assert pos == len(data), "trailing bytes"
    return out


def encode_framing(records):
    """records: dicts with key, version, origin, value (bytes or None)."""
    out = [b"SRB1", struct.pack(">I", len(records))]
    for r in records:
        key = r["key"].encode() if isinstance(r["key"], str) else r["key"]
        origin = (r.get("origin") or "").encode()
        out.append(struct.pack(">qiqq", r.get("offset", -1), r.get("partition", -1), r["version"], 0))
        out.append(struct.pack(">I", len(key)) + key)
        out.append(struct.pack(">I", len(origin)) + origin)
        v = r.get("value")
        out.append(struct.pack(">i", -1) if v is None else struct.pack(">i", len(v)) + v)
    return b"".join(out)


class Checks:
    """Runs named checks, prints one line each, exits 1 if any failed."""

    def __init__(self):
        self.failed = []

    def run(self, name, fn, *args):
        t = time.time()
        try:
            fn(*args)
            print("ok   %-60s %.2fs" % (name, time.time() - t), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            import traceback
            traceback.print_exc()
            print("FAIL %-60s %s" % (name, e), flush=True)
            self.failed.append(name)

    def finish(self):
        if self.failed:
            print("%d failed: %s" % (len(self.failed), ", ".join(self.failed)))
            sys.exit(1)
        print("all passed")


def expect_error(resp, status, fragment):
    st, headers, body = resp
    assert st == status, "status %d, want %d: %r" % (st, status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), headers
    msg = json.loads(body)["error"]
    assert fragment.lower() in msg.lower(), "error %r does not mention %r" % (msg, fragment)
    return json.loads(body)


def tempdir():
    return tempfile.mkdtemp(prefix="srl-bridge-test-")
