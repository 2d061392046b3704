#!/usr/bin/env python3
"""SIGHUP on sysrepl-bridge (the common policy, srl_config_reload): after
the -c file changes, a reloadable key (bridge.max_batch_records, log.level)
takes effect at once and is logged as applied, a key that needs a restart
(bridge.max_connections) is logged as such and keeps its value, a broken
file changes nothing and names file:line, and the bridge keeps serving."""
import json
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridge_lib import API, Bridge, Checks, expect_error, kafka_or_skip, tempdir  # noqa: E402

kafka_or_skip()
TMP = tempdir()
CONF = os.path.join(TMP, "bridge.conf")
with open(CONF, "w") as f:
    f.write("log.level = info\nbridge.max_batch_records = 50\nbridge.max_connections = 100\n")
B = Bridge(TMP, "br-" + uuid.uuid4().hex[:10], config=CONF)
C = Checks()


def push(n):
    records = [{"key": "k%d" % i} for i in range(n)]
    return B.request("POST", "%s/topics/assessment-types/records" % API, key="hub",
                     body=json.dumps(records), headers={"Content-Type": "application/json"})


def reload_and_wait(fragment, count=1):
    B.proc.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and B.logtext().count(fragment) < count:
        time.sleep(0.05)
    assert B.logtext().count(fragment) >= count, "no %r after SIGHUP:\n%s" % (fragment, B.logtext()[-2000:])


def sighup_applies_reloadable_and_reports_restart_keys():
    expect_error(push(60), 413, "bridge.max_batch_records = 50")
    with open(CONF, "w") as f:
        f.write("log.level = debug\nbridge.max_batch_records = 3\nbridge.max_connections = 200\n")
    reload_and_wait('msg="config reloaded"')
    log = B.logtext()
    assert ('msg="config key changed; applied" key=bridge.max_batch_records old=50 new=3') in log, log
    assert 'msg="config key changed; applied" key=log.level old=info new=debug' in log, log
    assert ('level=warn component=bridge msg="config key changed; needs a restart" '
            'key=bridge.max_connections running=100 file=200') in log, log
    assert "applied=2 needs_restart=1" in log, log
    assert "keys reloaded" in log, log  # bridge.keys_file is read again too
    expect_error(push(4), 413, "bridge.max_batch_records = 3")  # in effect at once
    B.request("GET", API + "/state")
    assert "level=debug component=bridge msg=request" in B.logtext(), "log.level=debug not in effect"
    assert B.proc.poll() is None, "the bridge exited on SIGHUP"


def sighup_with_broken_file_changes_nothing():
    with open(CONF, "w") as f:
        f.write("bridge.max_batch_records = 10\nbridge.max_batch_records = 11\n")
    reload_and_wait("config not reloaded; the running config stays")
    assert '%s:2: key \\"bridge.max_batch_records\\" given twice' % CONF in B.logtext(), B.logtext()[-2000:]
    expect_error(push(4), 413, "bridge.max_batch_records = 3")
    assert B.proc.poll() is None, "the bridge exited on SIGHUP"


try:
    C.run("sighup_applies_reloadable_and_reports_restart_keys",
          sighup_applies_reloadable_and_reports_restart_keys)
    C.run("sighup_with_broken_file_changes_nothing", sighup_with_broken_file_changes_nothing)
finally:
    B.stop()
C.finish()
