"""tests/e2e/test_power_loss.py - power-loss safety seen from outside (SPEC §2, §3.1; issue 5.3).

A message written but not fsynced must never be acknowledged. The real binary runs with an
LD_PRELOAD shim (fsync_fault.c, compiled here with gcc into the test's temporary directory;
nothing in the product) that makes fsync() fail for files under the spool while a flag file
exists. Checked on the wire and in the spool:
- a failed sync of the queue file's content (syncfs of the spool with spool.sync = "filesystem",
  the default; fsync of the file with "file") -> 451 4.3.0, nothing in tmp/ or queue/, nothing
  delivered;
- a failed fsync of the queue directory (after the rename) -> 451 4.3.0, the file taken back;
- fsync failing with ENOSPC -> 452 4.3.1;
- the flag removed: the same session gets 250 and the message is delivered;
- a bounce whose DSN cannot be stored (fsync fails) is not lost: the recipient stays pending
  and the bounce is made again on a later attempt, also across kill -9;
- `queue hold` whose fsync of hold/ fails is undone: the message stays in queue/ only.
"""
import errno
import os
import time

import pytest

from conftest import as_maildir, build_shim, preload, qid_of, relay_domain, wait_until
from peers import ScriptedPeer

LOCALHOST = '[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n'


def msg_body(subject):
    return (f"From: <alice@localhost>\r\nSubject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}"
            f"@client.test>\r\n\r\nbody of {subject}\r\n").encode()


@pytest.fixture
def fsync_fault(tmp_path, monkeypatch):
    """Builds the shim; returns set(mode, err) / clear() controls. Every postern started in the
    test (serve, queue, init) gets LD_PRELOAD; only fsync under the spool prefix is affected."""
    so = build_shim(tmp_path, "fsync_fault.c")
    flag = tmp_path / "fsync_fault.flag"

    class Fault:
        def __init__(self):
            self.flag = flag

        def prefix(self, spool):
            preload(monkeypatch, so)
            monkeypatch.setenv("FSYNC_FAULT_PREFIX", os.path.realpath(spool))
            monkeypatch.setenv("FSYNC_FAULT_FLAG", str(flag))

        def set(self, mode, err):
            flag.write_text(f"{mode} {err}\n")

        def clear(self):
            flag.unlink(missing_ok=True)

    return Fault()


def start_with_fault(make_instance, fault, **kw):
    inst = make_instance(start=False, **kw)
    fault.prefix(inst.dir / "var/spool")
    inst.start()
    return inst


@pytest.mark.parametrize("sync", ["filesystem", "file"])
@pytest.mark.parametrize("mode,err,reply", [
    ("file", errno.EIO, (451, "4.3.0")),     # the queue file's content: syncfs, or its fsync
    ("dir", errno.EIO, (451, "4.3.0")),      # the queue directory's fsync, after the rename
    ("file", errno.ENOSPC, (452, "4.3.1")),  # a full disk seen at that sync
])
def test_failed_fsync_is_never_acknowledged_then_recovers(make_instance, fsync_fault, mode, err, reply, sync):
    inst = start_with_fault(make_instance, fsync_fault, spool_extra=f'sync = "{sync}"')
    fsync_fault.set(mode, err)
    with inst.smtp() as c:
        c.ehlo()
        for i in range(3):
            r = c.send_mail("alice@localhost", ["bob@localhost"], msg_body(f"not synced {i}"))
            assert (r.code, r.last[:5]) == reply, r
        assert inst.spool_files("tmp") == [], "half-stored file left in tmp/"
        assert inst.spool_files("queue") == [], "an unacknowledged message is in queue/"
        errors = inst.events("spool_error")
        first = "syncfs " if (sync, mode) == ("filesystem", "file") else "fsync "
        assert len(errors) == 3 and all(e["error"].startswith(first) for e in errors), errors
        assert inst.events("queued") == []
        # the shim stops failing: the same session is accepted and the message delivered
        fsync_fault.clear()
        qid = qid_of(c.send_mail("alice@localhost", ["bob@localhost"], msg_body("synced")))
        assert c.cmd("QUIT").code == 221
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and f"id {qid}".encode() in msgs[0] and msgs[0].endswith(as_maildir(msg_body("synced")))
    # The delivered message leaves the queue right after its maildir file is written: wait for
    # that before the crash, or the restart delivers it again (at least once, by design; a
    # kill -9 in that window was seen once in `make asan`). What is tested here is the next part.
    wait_until(lambda: inst.spool_files("queue") == [], what="the delivered message removed")
    # the refused ones never show up, not even after a crash and restart
    inst.kill9()
    inst.start()
    wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")
    time.sleep(0.3)
    assert len(inst.maildir_messages("bob")) == 1 and len(inst.events("queued")) == 1


def test_bounce_that_cannot_be_stored_is_not_lost(make_instance, fsync_fault):
    # bob@internal.test: 450 at the first attempt, 550 afterwards. The 550 comes while the
    # spool cannot fsync: the DSN cannot be committed, so the recipient must not be recorded
    # as bounced (it would be removed without a bounce: an acknowledged message lost).
    with ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": [450, 550]}) as peer:
        inst = start_with_fault(make_instance, fsync_fault,
                                domains=LOCALHOST + relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                                queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@localhost", ["bob@internal.test"], subject="bounce me")
        inst.wait_events("delivery", id=qid, result="deferred")
        fsync_fault.set("file", errno.EIO)
        assert inst.queue_cli("retry", qid).returncode == 0
        ev = inst.wait_events("delivery", id=qid, dsn="5.1.1")  # logged after the state is written
        assert ev[0]["result"] == "deferred" and "bounce not stored" in ev[0]["reason"], ev
        failed = inst.events("spool_error")
        assert failed[0]["error"].startswith("syncfs ") and failed[0]["id"] != qid, failed
        assert peer.rcpt_seen["bob@internal.test"] == 2
        assert inst.maildir_messages("alice") == []
        assert inst.spool_files("queue") == [qid], "the message was removed without its bounce"
        state = (inst.dir / "var/spool/state" / qid).read_text()
        assert " bounced " not in state, state
        # the crash comes before the next attempt; the spool works again after the restart
        inst.kill9()
        fsync_fault.clear()
        inst.start()
        assert inst.spool_files("queue") == [qid]
        assert inst.queue_cli("retry", qid).returncode == 0
        msgs = inst.wait_maildir("alice")
    assert len(msgs) == 1
    dsn = msgs[0]
    assert b"multipart/report" in dsn and b"report-type=delivery-status" in dsn, dsn[:2000]
    assert b"Final-Recipient: rfc822; bob@internal.test" in dsn and b"Status: 5." in dsn, dsn[:3000]
    wait_until(lambda: inst.spool_files("queue") == [] and inst.spool_files("state") == [],
               what="queue and state empty after the bounce")


def test_hold_whose_folder_fsync_fails_leaves_the_message_queued(make_instance, fsync_fault):
    """`queue hold` links queue/ID into hold/, fsyncs hold/, then unlinks queue/ID and fsyncs
    queue/ (spool::move: on ext4 without a journal the removal of a rename can become durable
    before its new entry, and a power cut then leaves the message in neither folder). With the
    directory fsyncs failing, the hold is refused and undone: the message stays in queue/ only.
    On the code before, the rename had happened and the command said "held, but not durably
    yet". What this cannot show is what a real power cut leaves on the disk."""
    inst = start_with_fault(make_instance, fsync_fault, queue_extra='retry_schedule = ["1h"]')
    blocker = inst.dir / "var/mail/localhost/bob"  # a file where the maildir goes: deferred
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a maildir\n")
    qid = inst.send("alice@localhost", ["bob@localhost"], subject="hold me")
    inst.wait_events("delivery", id=qid, result="deferred")
    fsync_fault.set("dir", errno.EIO)
    r = inst.queue_cli("hold", qid)
    assert r.returncode == 1 and f"not held {qid}: fsync" in r.stderr, r
    assert inst.spool_files("queue") == [qid] and inst.spool_files("hold") == []
    fsync_fault.clear()
    r = inst.queue_cli("hold", qid)
    assert r.returncode == 0, r.stderr
    assert inst.spool_files("hold") == [qid] and inst.spool_files("queue") == []
