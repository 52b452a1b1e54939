"""tests/e2e/test_crash_delivery.py - kill -9 during outbound delivery (SPEC §3.1).

1,000 messages are injected with Postfix's smtp-source (10 parallel sessions). Postfix's
smtp-sink receives them; it first answers the end of data only after 1 s (-W .:1), so that
Postern is surely in the middle of delivering - many transactions open, some messages fully
received by the sink but not yet acknowledged - when it is killed with SIGKILL. The slow sink is
then replaced by a fast one on the same port (same config), Postern restarted, and:
- every acknowledged message reaches the sink complete at least once (duplicates are allowed:
  a crash can only repeat a delivery, never lose one),
- nothing is bounced,
- the queue ends empty (`postern queue list --json` -> []).
"""
import re
import subprocess
import time

from conftest import relay_domain
from peers import SmtpSink

COUNT = 1000
END = b"END-OF-CRASH-TEST-MESSAGE"
SMTP_SOURCE = "/usr/sbin/smtp-source"


def test_kill9_during_delivery_of_1000_messages(make_instance, tmp_path):
    t_start = time.time()
    dumps = tmp_path / "sink"
    slow = SmtpSink(dumps, extra_args=["-W", ".:1"]).start()
    try:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{slow.port}"),
                             queue_extra='retry_schedule = ["1s"]')
        msg = tmp_path / "message.txt"
        msg.write_bytes(b"From: <alice@example.test>\nTo: <bob@internal.test>\nSubject: crash test\n\n"
                        b"line one\nline two\n" + END + b"\n")
        r = subprocess.run([SMTP_SOURCE, "-m", str(COUNT), "-s", "10", "-d", "-f", "alice@example.test",
                            "-t", "bob@internal.test", "-F", str(msg), f"127.0.0.1:{inst.port}"],
                           capture_output=True, text=True, timeout=40)
        assert r.returncode == 0, r.stdout + r.stderr
        queued = [e["id"] for e in inst.events("queued")]
        assert len(queued) == COUNT and len(set(queued)) == COUNT, f"{len(queued)} queued"

        # the sink is receiving: let it complete a few rounds, then kill Postern mid-delivery
        deadline = time.time() + 15
        while slow.count() < 40 and time.time() < deadline:
            time.sleep(0.02)
        assert slow.count() >= 40, f"delivery did not start: {slow.count()} at the sink\n{inst.log()[-2000:]}"
        inst.kill9()
        left = len(inst.spool_files("queue"))
        at_kill = slow.count()
        assert left > 0, "killed too late: everything had been delivered"
    finally:
        slow.stop()

    # a fast sink on the same port, the same config; restart
    with SmtpSink(dumps, port=slow.port) as fast:
        inst.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            if inst.spool_files("queue") == []:
                break
            time.sleep(0.1)
        assert inst.spool_files("queue") == [], f"{len(inst.spool_files('queue'))} still queued\n{inst.log()[-3000:]}"
        assert inst.queue_json("list") == []

    # every message complete at the sink at least once
    seen = {}
    for p in sorted(dumps.iterdir()):
        data = p.read_bytes()
        m = re.search(rb"\(Postern\) with E?SMTP id ([0-9A-F]+)", data)
        if m and END in data:
            seen[m.group(1).decode()] = seen.get(m.group(1).decode(), 0) + 1
        assert not re.search(rb"^X-Mail-Args: (FROM:)?<>", data, re.M), f"a bounce reached the sink: {p}"
    missing = sorted(set(queued) - set(seen))
    assert missing == [], f"{len(missing)} message(s) lost, e.g. {missing[:5]}"
    assert set(seen) == set(queued), "the sink got messages that were never queued"
    duplicates = sum(n - 1 for n in seen.values())

    # nothing bounced, nothing left
    assert [e for e in inst.events("delivery") if e["result"] == "bounced"] == []
    assert [e for e in inst.events("bounce")] == []
    assert inst.spool_files("hold") == []
    assert time.time() - t_start < 90
    print(f"\nkilled with {left} queued, {at_kill} transactions at the sink; {duplicates} duplicate(s) after restart")
