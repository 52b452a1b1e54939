"""tests/e2e/test_durability.py - nothing acknowledged is lost (SPEC §2, §3.1): kill -9 after
250, spool write failures answered 4xx, queue.hold, the spool's start-up recovery, and a full
disk (a small tmpfs spool; needs root) while receiving and while delivering."""
import contextlib
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import as_maildir, qid_of, relay_domain, wait_until
from peers import ScriptedPeer

LOCALHOST = '[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n'


def msg_body(subject, n=0):
    return (f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@client.test>\r\n\r\n"
            f"message number {n}\r\n").encode()


def test_kill9_after_250_deferred_message_survives(make_instance):
    # A deferred recipient is retried at its scheduled time after a restart (README, spool
    # format): a 2 s schedule keeps the test short.
    inst = make_instance(queue_extra='retry_schedule = ["2s"]')
    blocker = inst.dir / "var/mail/localhost/bob"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a regular file where the maildir should be: delivery is deferred\n")
    with inst.smtp() as c:
        c.ehlo()
        qid = qid_of(c.send_mail("alice@example.test", ["bob@localhost"], msg_body("survivor")))
    inst.wait_log("result=deferred")
    qfile = inst.dir / "var/spool/queue" / qid
    assert qfile.is_file()
    inst.kill9()
    assert qfile.is_file(), "the acknowledged message is gone after kill -9"
    text = qfile.read_bytes()
    assert text.startswith(b"POSTERN-QUEUE 1\n") and f"id {qid}\n".encode() in text
    assert b"rcpt bob@localhost\n" in text and text.endswith(msg_body("survivor"))
    blocker.unlink()
    inst.start()
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and msgs[0].endswith(as_maildir(msg_body("survivor"))) and f"id {qid}".encode() in msgs[0]
    wait_until(lambda: inst.spool_files("queue") == [] and inst.spool_files("state") == [],
               what="queue and state empty after delivery")


def test_kill9_immediately_after_last_250_loses_nothing(make_instance):
    inst = make_instance()
    n = 20
    qids = []
    with inst.smtp() as c:
        c.ehlo()
        for i in range(n):
            c.expect("MAIL FROM:<alice@example.test>", 250)
            c.expect("RCPT TO:<bob@localhost>", 250)
            c.expect("DATA", 354)
            c.send(msg_body(f"racy {i}", i) + b".\r\n")
            qids.append(qid_of(c.read_reply()))
        inst.kill9()  # no sleep, no QUIT
    assert len(set(qids)) == n
    inst.start()
    subjects = set()
    deadline = time.time() + 15
    while time.time() < deadline:
        subjects = {m.group(1) for msg in inst.maildir_messages("bob")
                    for m in [re.search(rb"\nSubject: (racy \d+)\n", msg)] if m}
        if len(subjects) == n:
            break
        time.sleep(0.1)
    assert subjects == {f"racy {i}".encode() for i in range(n)}, sorted(subjects)
    wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")


def test_spool_write_failure_is_4xx_and_retry_works(make_instance):
    inst = make_instance()
    spool = inst.dir / "var/spool"
    (spool / "queue").rename(spool / "queue.away")
    (spool / "queue").write_text("not a directory\n")
    with inst.smtp() as c:
        c.ehlo()
        r = c.send_mail("alice@example.test", ["bob@localhost"], msg_body("retry me"))
        assert (r.code, r.last[:5]) in ((451, "4.3.0"), (452, "4.3.1")), r
        assert inst.spool_files("tmp") == [], "half-stored file left in tmp/"
        time.sleep(0.3)
        assert inst.maildir_messages("bob") == []
        assert "spool_error" in inst.log()
        # restored: the same session retries and succeeds
        (spool / "queue").unlink()
        (spool / "queue.away").rename(spool / "queue")
        qid = qid_of(c.send_mail("alice@example.test", ["bob@localhost"], msg_body("retry me")))
        assert c.cmd("QUIT").code == 221
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and f"id {qid}".encode() in msgs[0]


def test_queue_hold_stores_but_does_not_deliver(make_instance):
    inst = make_instance(queue_extra="hold = true")
    with inst.smtp() as c:
        c.ehlo()
        qid = qid_of(c.send_mail("alice@example.test", ["bob@localhost"], msg_body("held")))
    assert inst.spool_files("hold") == [qid]
    held = (inst.dir / "var/spool/hold" / qid).read_bytes()
    assert held.startswith(b"POSTERN-QUEUE 1\n") and held.endswith(msg_body("held"))
    time.sleep(0.5)
    assert inst.spool_files("queue") == []
    assert inst.maildir_messages("bob") == []
    # still held, still undelivered across a restart
    inst.stop()
    inst.start()
    time.sleep(0.5)
    assert inst.spool_files("hold") == [qid]
    assert inst.maildir_messages("bob") == []


def test_tmp_leftovers_are_removed_at_startup_and_never_delivered(make_instance):
    inst = make_instance(start=False)
    tmp = inst.dir / "var/spool/tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    leftover = tmp / "0192F3A4B5C6D0000"
    leftover.write_bytes(b"POSTERN-QUEUE 1\nid 0192F3A4B5C6D0000\narrived 1732800000\nsender a@example.test\n"
                         b"rcpt bob@localhost\nbody 7BIT\nsmtputf8 0\nclient 127.0.0.1\nhelo x\nsize 9\n\n"
                         b"Subject: ")  # cut short: never acknowledged
    inst.start()
    wait_until(lambda: not leftover.exists(), what="tmp/ leftover removed")
    time.sleep(0.3)
    assert inst.maildir_messages("bob") == []
    assert inst.spool_files("queue") == []


def test_full_disk_is_452_and_nothing_half_stored(make_instance):
    inst = make_instance(start=False)
    spool = inst.dir / "var/spool"
    shutil.rmtree(spool)
    spool.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(spool)],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        inst.start()
        st = os.statvfs(spool)
        free = st.f_bavail * st.f_frsize
        filler = spool / "filler"
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - 16384))
        big = msg_body("too big for the disk") + b"x" * 76 + b"\r\n"
        big += (b"y" * 76 + b"\r\n") * 1500  # ~117 KB
        with inst.smtp() as c:
            c.ehlo()
            r = c.send_mail("alice@example.test", ["bob@localhost"], big)
            assert r.code == 452 and r.last.startswith("4.3.1"), r
            assert inst.spool_files("tmp") == [] and inst.spool_files("queue") == []
            filler.unlink()
            qid = qid_of(c.send_mail("alice@example.test", ["bob@localhost"], big))
        msgs = inst.wait_maildir("bob")
        assert len(msgs) == 1 and msgs[0].endswith(as_maildir(big)) and f"id {qid}".encode() in msgs[0]
    finally:
        inst.stop()
        subprocess.run(["umount", str(spool)], capture_output=True, timeout=10)


def test_a_file_size_limit_is_452_and_the_server_keeps_running(make_instance):
    """Found by review: under a file-size limit (ulimit -f, systemd's LimitFSIZE) a message
    larger than it raised SIGXFSZ while the queue file was written, and the server died
    (every session cut, tmp/ left behind). Now the write fails with EFBIG: 452 4.3.1 for that
    message, nothing half stored, and the server takes the next (small) message."""
    import resource
    inst = make_instance(start=False)
    inst.preexec = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100 * 1024, 100 * 1024))
    inst.start()
    big = msg_body("over the file-size limit") + (b"y" * 76 + b"\r\n") * 2800  # ~220 KB
    with inst.smtp() as c:
        c.ehlo()
        r = c.send_mail("alice@example.test", ["bob@localhost"], big)
        assert r.code == 452 and r.last.startswith("4.3.1"), r
        assert inst.proc.poll() is None, "the server died"
        assert inst.spool_files("tmp") == [] and inst.spool_files("queue") == []
        small = msg_body("small enough")
        qid = qid_of(c.send_mail("alice@example.test", ["bob@localhost"], small))
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and f"id {qid}".encode() in msgs[0]


@contextlib.contextmanager
def tmpfs_spool(inst, size="512k"):
    """Mounts a small tmpfs as the (not yet started) instance's spool; skips without root."""
    spool = inst.dir / "var/spool"
    shutil.rmtree(spool)
    spool.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(spool)],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield spool
    finally:
        inst.stop()
        subprocess.run(["umount", str(spool)], capture_output=True, timeout=10)


def fill(spool, leave=0):
    """Fills the file system of `spool` up to `leave` free bytes; returns the filler file."""
    st = os.statvfs(spool)
    free = st.f_bavail * st.f_frsize
    filler = spool / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_full_disk_during_delivery_loses_nothing(make_instance):
    # A deferred message is retried while the spool is full: the state write fails (logged), the
    # previous state stays, a kill -9 on the full disk changes nothing, and once space returns
    # the message is delivered exactly as acknowledged.
    with ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": [450, 450, 250]}) as peer:
        inst = make_instance(start=False, domains=LOCALHOST + relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        with tmpfs_spool(inst) as spool:
            inst.start()
            body = msg_body("full disk while delivering")
            with inst.smtp() as c:
                c.ehlo()
                qid = qid_of(c.send_mail("alice@localhost", ["bob@internal.test"], body))
            inst.wait_events("delivery", id=qid, result="deferred")
            state_before = (spool / "state" / qid).read_text()
            assert " deferred 1 " in state_before, state_before
            filler = fill(spool)
            # a new message is refused with 452 and leaves nothing behind
            with inst.smtp() as c:
                c.ehlo()
                r = c.send_mail("alice@localhost", ["bob@internal.test"], msg_body("no room"))
                assert r.code == 452 and r.last.startswith("4.3.1"), r
            assert inst.queue_cli("retry", qid).returncode == 0
            inst.wait_events("delivery", count=2, id=qid, result="deferred")
            failed = inst.wait_events("spool_error", id=qid)
            assert "No space left on device" in failed[0]["error"], failed
            assert (spool / "state" / qid).read_text() == state_before  # the old state stays
            assert sorted(p.name for p in (spool / "state").iterdir()) == [qid], "a state write left a file"
            assert inst.spool_files("tmp") == [] and inst.spool_files("queue") == [qid]
            inst.kill9()
            inst.start()
            assert inst.spool_files("queue") == [qid]
            filler.unlink()
            assert inst.queue_cli("retry", qid).returncode == 0
            peer.wait_messages(1)
            wait_until(lambda: inst.spool_files("queue") == [] and inst.spool_files("state") == [],
                       what="queue and state empty after delivery")
    assert len(peer.messages) == 1 and peer.messages[0][2].endswith(body), peer.messages
    assert inst.maildir_messages("alice") == [], "bounced"


def test_bounce_on_a_nearly_full_disk_is_not_lost(make_instance):
    # The recipient is refused (550) when the spool has room for a state file but not for the
    # bounce (the original's 40 KB header section goes into the DSN). The recipient must stay
    # pending until its bounce is stored; a kill -9 and restart in between change nothing.
    with ScriptedPeer(starttls=False, rcpt_codes={"carol@internal.test": [450, 550]}) as peer:
        inst = make_instance(start=False, domains=LOCALHOST + relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        with tmpfs_spool(inst) as spool:
            inst.start()
            headers = b"".join(b"X-Filler-%04d: %s\r\n" % (i, b"f" * 60) for i in range(500))  # ~40 KB
            body = headers + msg_body("bounce on a nearly full disk")
            with inst.smtp() as c:
                c.ehlo()
                qid = qid_of(c.send_mail("alice@localhost", ["carol@internal.test"], body))
            inst.wait_events("delivery", id=qid, result="deferred")
            filler = fill(spool, leave=8192)  # two pages: a state file fits, the bounce does not
            assert inst.queue_cli("retry", qid).returncode == 0
            ev = inst.wait_events("delivery", count=2, id=qid)
            assert ev[-1]["dsn"].startswith("5.") and ev[-1]["result"] == "deferred", ev[-1]
            assert "bounce not stored" in ev[-1]["reason"] and "No space left" in ev[-1]["reason"], ev[-1]
            assert inst.spool_files("queue") == [qid], "the message was removed without its bounce"
            state = (spool / "state" / qid).read_text()
            assert " bounced " not in state, state
            inst.kill9()
            filler.unlink()
            inst.start()
            assert inst.queue_cli("retry", qid).returncode == 0
            msgs = inst.wait_maildir("alice")
            wait_until(lambda: inst.spool_files("queue") == [] and inst.spool_files("state") == [],
                       what="queue and state empty after the bounce")
    assert len(msgs) == 1 and b"Final-Recipient: rfc822; carol@internal.test" in msgs[0], msgs[0][:3000]
    assert peer.messages == []
