"""tests/e2e/test_queue_cli.py - `postern queue list|show|retry|delete|hold|release` (SPEC §4)
against a running server, through its control socket `<spool.dir>/control.sock`.

The CLI runs from another working directory than the server, with `-c` naming the config, so
the socket is found through the config's spool.dir, not through the current directory.
"""
import errno
import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from conftest import POSTERN, build_shim, preload, qid_of, relay_domain, wait_until
from peers import ScriptedPeer
from test_power_loss import fsync_fault, start_with_fault  # noqa: F401 (fsync_fault: a fixture)

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MESSAGE_KEYS = ["id", "sender", "size", "arrived", "held", "recipients"]
RECIPIENT_KEYS = ["address", "status", "attempts", "next_attempt", "last_reply"]


def queue_cli(inst, *args, config=None):
    return subprocess.run([POSTERN, "queue", *args, "-c", str(config or inst.config)],
                          capture_output=True, text=True, timeout=30, cwd="/")


def queue_json(inst, *args):
    r = queue_cli(inst, *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def send(inst, sender, rcpts, subject):
    body = f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@client.test>\r\n\r\nhello\r\n".encode()
    with inst.smtp() as c:
        c.ehlo()
        return qid_of(c.send_mail(sender, rcpts, body))


def block_maildir(inst, user):
    """A regular file where the user's maildir should be: delivery to it is deferred."""
    p = inst.dir / "var/mail/localhost" / user
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("not a maildir\n")
    return p


def check_shape(m):
    assert list(m.keys()) == MESSAGE_KEYS, m
    assert isinstance(m["size"], int) and m["size"] > 0
    assert ISO.match(m["arrived"]), m["arrived"]
    assert isinstance(m["held"], bool)
    for r in m["recipients"]:
        assert list(r.keys()) == RECIPIENT_KEYS, r
        assert r["status"] in ("queued", "deferred", "sent", "bounced")
        assert isinstance(r["attempts"], int)
        assert r["next_attempt"] == "" or ISO.match(r["next_attempt"]), r
        assert isinstance(r["last_reply"], str)


def test_list_json_shows_held_messages(make_instance):
    inst = make_instance(queue_extra="hold = true")
    q1 = send(inst, "alice@example.test", ["bob@localhost", "carol@localhost"], "first")
    q2 = send(inst, "", ["dave@localhost"], "second")  # null sender
    sock = inst.dir / "var/spool/control.sock"
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600

    msgs = queue_json(inst, "list")
    assert isinstance(msgs, list)
    assert [m["id"] for m in msgs] == sorted([q1, q2])
    for m in msgs:
        check_shape(m)
        assert m["held"] is True
    first = next(m for m in msgs if m["id"] == q1)
    assert first["sender"] == "alice@example.test"
    assert [r["address"] for r in first["recipients"]] == ["bob@localhost", "carol@localhost"]
    assert all(r["status"] == "queued" and r["attempts"] == 0 and r["next_attempt"] == "" and r["last_reply"] == ""
               for r in first["recipients"])
    second = next(m for m in msgs if m["id"] == q2)
    assert second["sender"] == ""

    one = queue_json(inst, "show", q1)
    assert one == first
    assert queue_json(inst, "show", q1.lower()) == first  # ids are case-insensitive for humans


def test_list_table(make_instance):
    inst = make_instance(queue_extra="hold = true")
    qid = send(inst, "alice@example.test", ["bob@localhost"], "table")
    r = queue_cli(inst, "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "SIZE", "ARRIVED", "SENDER"]
    assert lines[1].startswith(qid + "!")  # "!" marks a held message, as in postqueue -p
    assert lines[1].split()[-1] == "alice@example.test"
    assert lines[2].split()[:3] == ["queued", "attempts=0", "next=-"] and lines[2].split()[3] == "bob@localhost"
    assert lines[-1] == "-- 1 message"
    r = queue_cli(inst, "show", qid)
    assert r.returncode == 0 and r.stdout.startswith(qid + "!"), r


def test_empty_queue(postern):
    assert queue_json(postern, "list") == []
    r = queue_cli(postern, "list")
    assert r.returncode == 0 and r.stdout == "-- 0 messages\n", r


def test_release_delivers(make_instance):
    inst = make_instance(queue_extra="hold = true")
    qid = send(inst, "alice@example.test", ["bob@localhost"], "release me")
    r = queue_cli(inst, "release", qid)
    assert r.returncode == 0, r.stderr
    assert qid in r.stdout
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"release me" in msgs[0]
    wait_until(lambda: queue_json(inst, "list") == [], what="queue empty after delivery")
    # releasing it again: nothing held any more
    r = queue_cli(inst, "release", qid)
    assert r.returncode == 1 and qid in r.stderr, r


def test_recipient_sent_on_a_later_attempt_shows_no_next_attempt(make_instance):
    """bob and carol deferred; carol's mailbox fixed, `queue retry`: carol is sent, bob deferred
    again. carol has no attempt due any more, so `queue list` shows no next_attempt for her
    (it kept the time of the retry she no longer needs)."""
    inst = make_instance(queue_extra='retry_schedule = ["1h"]')
    block_maildir(inst, "bob")
    carol_blocker = block_maildir(inst, "carol")
    qid = send(inst, "alice@example.test", ["bob@localhost", "carol@localhost"], "both deferred")

    def recipients():
        m = next((m for m in queue_json(inst, "list") if m["id"] == qid), None)
        return m["recipients"] if m else None

    wait_until(lambda: (r := recipients()) and all(x["status"] == "deferred" for x in r), what="both deferred")
    assert all(ISO.match(x["next_attempt"]) for x in recipients())
    carol_blocker.unlink()
    r = queue_cli(inst, "retry", qid)
    assert r.returncode == 0, r.stderr
    inst.wait_maildir("carol")
    wait_until(lambda: recipients()[1]["status"] == "sent" and recipients()[0]["attempts"] == 2,
               what="carol sent, bob deferred again")
    bob, carol = recipients()
    assert carol["next_attempt"] == "" and carol["attempts"] == 2, carol
    assert bob["status"] == "deferred" and ISO.match(bob["next_attempt"]), bob


def test_deferred_state_hold_release_delete(make_instance):
    """SPEC §4 `hold` / `release` / `delete` on a message with a deferred recipient, with a 1 s
    retry schedule so that anything not held really would be retried within the waits below.

    - `queue list --json` shows the partly delivered message: bob deferred (attempts, next
      attempt, last reply), carol sent.
    - hold: the message moves to hold/ and is listed held; bob's mailbox is then fixed, and for
      2.5 s (over two schedule steps) his attempts do not grow and nothing reaches him. Fails
      if a held message is still retried (he would be delivered within about a second).
    - release: bob is delivered by the schedule, carol (already sent) not a second time.
    - delete of another deferred message (README: "remove", like `postsuper -d`): it leaves
      `queue list`, queue/ and state/ (which it had: the deferral was recorded), is not
      delivered once its mailbox is fixed, and no bounce is made - its sender is a local
      mailbox, so a DSN would be seen there. Fails if delete leaves the state file behind,
      keeps the message scheduled, or bounces it."""
    inst = make_instance(queue_extra='retry_schedule = ["1s"]')
    blocker = block_maildir(inst, "bob")
    qid = send(inst, "alice@example.test", ["bob@localhost", "carol@localhost"], "partly")
    inst.wait_maildir("carol")

    def state(q=qid):
        msgs = queue_json(inst, "list")
        return next((m for m in msgs if m["id"] == q), None)

    wait_until(lambda: (m := state()) is not None and m["recipients"][0]["status"] == "deferred",
               what="bob deferred")
    m = state()
    check_shape(m)
    assert m["held"] is False
    bob, carol = m["recipients"]
    assert bob["address"] == "bob@localhost" and bob["attempts"] >= 1  # the 1 s schedule may have retried
    assert ISO.match(bob["next_attempt"]) and bob["last_reply"] != ""
    assert carol["address"] == "carol@localhost" and carol["status"] == "sent" and carol["attempts"] == 1

    # hold: stays in the queue, marked held, not retried even once it could be delivered
    r = queue_cli(inst, "hold", qid)
    assert r.returncode == 0, r.stderr
    assert state()["held"] is True
    assert inst.spool_files("hold") == [qid] and qid not in inst.spool_files("queue")
    time.sleep(0.5)  # a pass under way at the hold may still finish (README): let it be recorded
    attempts = state()["recipients"][0]["attempts"]
    blocker.unlink()
    time.sleep(2.5)
    m = state()
    assert m is not None, "the held message was delivered and left the queue"
    assert m["held"] is True
    assert m["recipients"][0]["attempts"] == attempts and m["recipients"][0]["status"] == "deferred", m
    assert inst.maildir_messages("bob") == [], "a held message was delivered"

    # release: the schedule delivers bob; carol, already sent, is not delivered twice
    r = queue_cli(inst, "release", qid)
    assert r.returncode == 0, r.stderr
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"partly" in msgs[0]
    wait_until(lambda: state() is None, what="message done")
    assert len(inst.maildir_messages("carol")) == 1

    # delete a deferred message: gone from the list and the spool, never delivered, no bounce
    dave_blocker = block_maildir(inst, "dave")
    gone = send(inst, "alice@localhost", ["dave@localhost"], "delete me")
    wait_until(lambda: (m := state(gone)) is not None and m["recipients"][0]["status"] == "deferred",
               what="dave deferred")
    assert gone in inst.spool_files("queue") and gone in inst.spool_files("state")
    r = queue_cli(inst, "release", gone)  # in the queue, not on hold: said so, nothing moved
    assert r.returncode == 1 and f"{gone} is not on hold: it is in the queue" in r.stderr, r
    assert gone in inst.spool_files("queue")
    r = queue_cli(inst, "delete", gone)
    assert r.returncode == 0, r.stderr
    assert state(gone) is None
    for area in ("queue", "hold", "state"):
        assert gone not in inst.spool_files(area), (area, inst.spool_files(area))
    dave_blocker.unlink()
    time.sleep(2.5)  # over two schedule steps: a message still scheduled would be delivered
    assert inst.maildir_messages("dave") == [], "a deleted message was delivered"
    assert inst.maildir_messages("alice") == [], "delete bounced the message"
    assert inst.events("bounce", id=gone) == [], inst.events("bounce", id=gone)
    assert queue_json(inst, "list") == []
    for area in ("queue", "hold", "state"):
        assert inst.spool_files(area) == [], (area, inst.spool_files(area))


def test_delete_whose_folder_fsync_fails_says_so(make_instance, fsync_fault):
    """`queue delete` unlinks queue/ID (or hold/ID), then fsyncs that folder before it answers:
    a message told "deleted" that a power cut brings back would be delivered. With directory
    fsyncs failing (LD_PRELOAD shim, test_power_loss.py) the file is gone but the command
    says the deletion is not durable yet, and exits 1. On the code before, no folder was
    fsynced and the command said "deleted"."""
    inst = start_with_fault(make_instance, fsync_fault, queue_extra='retry_schedule = ["1h"]')
    block_maildir(inst, "bob")
    q1 = send(inst, "alice@localhost", ["bob@localhost"], "delete me")
    q2 = send(inst, "alice@localhost", ["bob@localhost"], "delete me too")
    for q in (q1, q2):
        inst.wait_events("delivery", id=q, result="deferred")
    fsync_fault.set("dir", errno.EIO)
    r = queue_cli(inst, "delete", q1)
    assert r.returncode == 1 and r.stdout == "", r
    assert f"deleted {q1}, but not durably yet: fsync " in r.stderr and os.strerror(errno.EIO) in r.stderr, r
    assert q1 not in inst.spool_files("queue") and q1 not in inst.spool_files("state")
    assert [e["error"] for e in inst.events("spool_error", id=q1)] == [r.stderr.split(": ", 2)[2].strip()]
    fsync_fault.clear()
    r = queue_cli(inst, "delete", q2)
    assert r.returncode == 0 and r.stdout == f"{q2}: deleted\n", r
    assert inst.spool_files("queue") == []


def test_retry_all_and_delete(make_instance):
    inst = make_instance(queue_extra='retry_schedule = ["1h"]')
    block_maildir(inst, "bob")
    q1 = send(inst, "alice@example.test", ["bob@localhost"], "one")
    q2 = send(inst, "alice@example.test", ["bob@localhost"], "two")
    wait_until(lambda: [m["recipients"][0]["attempts"] for m in queue_json(inst, "list")] == [1, 1],
               what="both deferred once")
    r = queue_cli(inst, "retry", "--all")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("2 messages"), r.stdout
    wait_until(lambda: [m["recipients"][0]["attempts"] for m in queue_json(inst, "list")] == [2, 2],
               what="both retried")

    r = queue_cli(inst, "delete", q1)
    assert r.returncode == 0, r.stderr
    assert [m["id"] for m in queue_json(inst, "list")] == [q2]
    assert q1 not in inst.spool_files("queue") and q1 not in inst.spool_files("state")
    r = queue_cli(inst, "delete", q1)
    assert r.returncode == 1 and q1 in r.stderr and r.stdout == "", r


def test_list_shows_a_bounced_and_a_deferred_recipient(make_instance):
    """SPEC §3.2 / §4: one message, two recipients at the same next hop (a scripted peer, hosted
    domain relayed to it): a@ gets 550 at RCPT, b@ 450, the retry schedule is 1 h. `queue list`
    (JSON and table) then shows a@ `bounced` (no next attempt, the 550 as last reply) and b@
    `deferred` (a next attempt, the 450) in the message still queued for b@; the sender gets a
    bounce naming a@ only. Fails if a 5xx recipient is listed as deferred (or vanishes from the
    list), if a 4xx one is bounced, or if `bounced` is never reported."""
    with ScriptedPeer(starttls=False, rcpt_codes={"a@internal.test": 550, "b@internal.test": 450}) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}") +
                             '[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n',
                             queue_extra='retry_schedule = ["1h"]')
        qid = send(inst, "alice@localhost", ["a@internal.test", "b@internal.test"], "half bounced")

        def recipients():
            m = next((m for m in queue_json(inst, "list") if m["id"] == qid), None)
            return m["recipients"] if m else None

        wait_until(lambda: (r := recipients()) is None or [x["status"] for x in r] != ["queued", "queued"],
                   timeout=15, what="first attempt recorded")
        assert recipients() is not None, f"the message left the queue; b@ was not kept deferred: {peer.all_commands()}"
        m = queue_json(inst, "show", qid)
        check_shape(m)
        a, b = m["recipients"]
        assert a["address"] == "a@internal.test" and a["status"] == "bounced", m
        assert a["attempts"] == 1 and a["next_attempt"] == "" and "550" in a["last_reply"], a
        assert b["address"] == "b@internal.test" and b["status"] == "deferred", m
        assert b["attempts"] == 1 and ISO.match(b["next_attempt"]) and "450" in b["last_reply"], b
        assert peer.messages == [], "no recipient was accepted: no content delivered"

        r = queue_cli(inst, "show", qid)
        assert r.returncode == 0, r.stderr
        rows = {l.split()[3]: l.split()[0] for l in r.stdout.splitlines()[1:] if "attempts=" in l}
        assert rows == {"a@internal.test": "bounced", "b@internal.test": "deferred"}, r.stdout

        dsn = inst.wait_maildir("alice")
        finals = re.findall(rb"(?im)^Final-Recipient: *rfc822; *(\S+)", dsn[0]) if len(dsn) == 1 else dsn
        assert finals == [b"a@internal.test"], dsn
        assert recipients()[1]["status"] == "deferred"  # still queued for b@ after the bounce


def test_errors(make_instance):
    inst = make_instance(queue_extra="hold = true")
    r = queue_cli(inst, "show", "0123456789ABCDEF0")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.startswith("postern queue: ") and "0123456789ABCDEF0" in r.stderr
    r = queue_cli(inst, "hold", "../../etc/passwd")
    assert r.returncode == 1 and "invalid queue id" in r.stderr, r
    r = queue_cli(inst, "retry")  # ID or --all required: a usage error
    assert r.returncode not in (0, 1), r
    # retry ID only for a message in the queue: not an unknown id, not a held message
    r = queue_cli(inst, "retry", "0123456789ABCDEF0")
    assert r.returncode == 1 and "no queued message 0123456789ABCDEF0" in r.stderr, r
    held = send(inst, "alice@example.test", ["bob@localhost"], "held")
    # a held message: the answer says where it is, not that there is none
    r = queue_cli(inst, "retry", held)
    assert r.returncode == 1 and f"{held} is on hold (`postern queue release {held}`" in r.stderr, r
    r = queue_cli(inst, "hold", held)
    assert r.returncode == 1 and f"{held} is on hold" in r.stderr, r
    assert held in inst.spool_files("hold") and not inst.maildir_messages("bob")
    r = queue_cli(inst, "release", "0123456789ABCDEF0")
    assert r.returncode == 1 and "no held message 0123456789ABCDEF0" in r.stderr, r
    assert inst.alive


def test_server_not_running(make_instance):
    inst = make_instance(start=False)
    r = queue_cli(inst, "list")
    sock = inst.dir / "var/spool/control.sock"
    assert r.returncode == 1, r
    assert r.stderr.startswith(f"postern queue: cannot reach the server at {sock}: "), r.stderr
    assert "(is `postern serve` running?)" in r.stderr


def test_socket_removed_at_shutdown(make_instance):
    inst = make_instance()
    sock = inst.dir / "var/spool/control.sock"
    assert sock.exists()
    inst.stop()
    assert not sock.exists()
    r = queue_cli(inst, "list")
    assert r.returncode == 1 and "cannot reach the server" in r.stderr, r


def test_stale_socket_replaced_after_kill9(make_instance):
    inst = make_instance()
    inst.kill9()
    assert (inst.dir / "var/spool/control.sock").exists()  # left behind
    inst.start()
    assert queue_json(inst, "list") == []


def test_bad_config(make_instance, tmp_path):
    inst = make_instance(start=False)
    bad = tmp_path / "bad.toml"
    # an error in spool.dir: nothing to go by, exit 2 with the line
    bad.write_text(inst.config.read_text().replace('dir = "var/spool"', 'dir = ""', 1))
    r = queue_cli(inst, "list", config=bad)
    assert r.returncode == 2, r
    assert re.match(rf"^{re.escape(str(bad))}:\d+: spool.dir: must not be empty", r.stderr), r.stderr
    # an error elsewhere: a warning with its line, and the command goes on (no server here: 1)
    bad.write_text(inst.config.read_text() + "\nbogus_key = 1\n")
    r = queue_cli(inst, "list", config=bad)
    assert r.returncode == 1 and "is `postern serve` running?" in r.stderr, r
    assert re.search(rf"^{re.escape(str(bad))}:\d+: unknown key", r.stderr, re.M), r.stderr


def config_without_key(inst, tls_extra=""):
    """A copy of the instance's config (same directory: the same spool, so the same control
    socket) whose key_file is missing - like a key readable by root only, as the server's
    administrator runs the CLI as the spool's owner - plus `tls_extra` in [tls]."""
    copy = inst.dir / "cli.toml"
    text = inst.config.read_text().replace('key_file = "var/tls/key.pem"', 'key_file = "var/tls/root-only.pem"')
    assert "root-only.pem" in text
    copy.write_text(text.replace("[tls]\n", "[tls]\n" + tls_extra, 1))
    return copy


def test_queue_does_not_need_the_tls_files(make_instance):
    """`postern queue` only needs spool.dir: a key (or certificate, or CA file) it cannot read
    does not stop it. Other errors in the file (one being edited, or one a SIGHUP refused while
    the server runs on the last good one) are shown as FILE:LINE in a warning, and the command
    still runs with the file's spool.dir; only an error in spool.dir itself, or a TOML syntax
    error, stops it (exit 2)."""
    inst = make_instance(queue_extra="hold = true")
    qid = send(inst, "alice@example.test", ["bob@localhost"], "held")
    copy = config_without_key(inst, tls_extra='ca_file = "var/tls/no-such-ca.pem"\n')
    r = queue_cli(inst, "list", "--json", config=copy)
    assert r.returncode == 0, r
    assert [m["id"] for m in json.loads(r.stdout)] == [qid]
    r = queue_cli(inst, "release", qid, config=copy)
    assert r.returncode == 0, r
    inst.wait_maildir("bob")
    copy.write_text(copy.read_text().replace("[server]\n", "[server]\nbogus_key = 1\n", 1))
    r = queue_cli(inst, "list", "--json", config=copy)
    assert r.returncode == 0 and json.loads(r.stdout) == [], r
    assert r.stderr.startswith(f"postern queue: warning: {copy} has errors"), r
    assert re.search(rf"^{re.escape(str(copy))}:\d+: unknown key 'server.bogus_key'$", r.stderr, re.M), r
    good = copy.read_text()
    copy.write_text(good.replace('dir = "var/spool"', "dir = 5", 1))
    r = queue_cli(inst, "list", config=copy)
    assert r.returncode == 2 and r.stdout == "", r
    assert re.search(rf"^{re.escape(str(copy))}:\d+: spool.dir: expected a string", r.stderr, re.M), r
    copy.write_text(good.replace("[server]\n", "[server\n", 1))  # TOML syntax
    r = queue_cli(inst, "list", config=copy)
    assert r.returncode == 2 and re.match(rf"^{re.escape(str(copy))}:\d+: ", r.stderr), r


def tls_policy(config, domain, *args):
    return subprocess.run([POSTERN, "tls-policy", domain, *args, "-c", str(config)], capture_output=True,
                          text=True, timeout=30, cwd="/")


def test_tls_policy_does_not_need_the_key(make_instance):
    """tls-policy is a client: the server's key and certificate are never read; the trust store
    (tls.ca_file) only with --probe, which connects."""
    inst = make_instance(start=False, extra='[[route]]\ndomain = "relay.test"\nhosts = ["127.0.0.1:9"]\n')
    copy = config_without_key(inst, tls_extra='ca_file = "var/tls/no-such-ca.pem"\n')
    r = tls_policy(copy, "localhost")
    assert r.returncode == 0 and "localhost" in r.stdout, r
    r = tls_policy(copy, "relay.test")
    assert r.returncode == 0 and "127.0.0.1" in r.stdout, r
    r = tls_policy(copy, "relay.test", "--probe")
    assert r.returncode == 2, r
    assert r.stderr.startswith(f"{copy}: tls.ca_file: ") and "no-such-ca.pem" in r.stderr, r.stderr


def test_message_in_both_queue_and_hold_at_start_stays_held(make_instance):
    """`queue hold` and `release` link the file into the new folder, fsync it, then unlink the
    old name (spool::move: on ext4 without a journal a rename's removal can reach the disk
    before its new entry, losing the message). A crash between the link and the unlink leaves
    one file under both names. At start-up the hold wins: queue/ID goes, the message is listed
    held and not delivered, and a release delivers it once. On the code before, the queue/ name
    was delivered at start-up (and the held one again on release). What this cannot show is a
    real crash at that instant: the second name is made by hand, as the crash leaves it."""
    inst = make_instance(queue_extra="hold = true")
    qid = send(inst, "alice@example.test", ["bob@localhost"], "both names")
    assert inst.spool_files("hold") == [qid]
    inst.stop()
    spool = inst.dir / "var/spool"
    os.link(spool / "hold" / qid, spool / "queue" / qid)
    inst.start()
    wait_until(lambda: inst.spool_files("queue") == [], what="queue/ID removed at start-up")
    time.sleep(0.5)
    assert inst.maildir_messages("bob") == [], "a held message was delivered"
    assert [(m["id"], m["held"]) for m in queue_json(inst, "list")] == [(qid, True)]
    r = queue_cli(inst, "release", qid)
    assert r.returncode == 0, r.stderr
    assert len(inst.wait_maildir("bob")) == 1
    wait_until(lambda: inst.spool_area_empty("queue", "hold", "state"), what="spool empty after delivery")
    time.sleep(0.3)
    assert len(inst.maildir_messages("bob")) == 1


# --- delete / hold while a delivery pass is under way ------------------------------------------

LOCAL = '[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n'


def mid_pass_instance(make_instance, *peers):
    """localhost -> maildir (the sender's mailbox: a bounce would be seen there), then one
    relayed domain per peer: first.test -> peers[0], second.test -> peers[1]. Peers on
    127.0.0.2 and 127.0.0.3: a message to both goes to first.test's destination first."""
    domains = LOCAL + "".join(relay_domain(name, f"{p.host}:{p.port}")
                              for name, p in zip(("first.test", "second.test"), peers))
    return make_instance(domains=domains, queue_extra='retry_schedule = ["1h"]')


@pytest.mark.parametrize("command", ["delete", "hold"])
def test_delete_or_hold_during_a_pass_stops_it_before_the_next_destination(make_instance, command):
    """The first destination holds its transaction open (its reply to the end of data comes 3 s
    later); `delete` or `hold` then. The pass must not go on to the second destination, which
    would refuse x@second.test with 550: it is never contacted, and no bounce is made. Held,
    x is left queued (not attempted) and the release delivers what is left, once: bob is not
    sent again, x is attempted and bounced then. Before the fix the pass went on to the second
    destination (the loop checked only for a server stop): a deleted message bounced, a held
    one was delivered while held."""
    with ScriptedPeer(host="127.0.0.2", starttls=False, final_delay=3.0) as a, \
            ScriptedPeer(host="127.0.0.3", starttls=False, rcpt_codes={"x@second.test": 550}) as b:
        inst = mid_pass_instance(make_instance, a, b)
        qid = send(inst, "alice@localhost", ["bob@first.test", "x@second.test"], f"{command} mid-pass")
        a.wait_messages(1)  # bob's transaction is open: the final reply comes in 3 s
        r = queue_cli(inst, command, qid)
        assert r.returncode == 0, r.stderr
        bob = inst.wait_events("delivery", 1, id=qid, to="<bob@first.test>", timeout=10)[0]
        assert bob["result"] == "sent", bob
        time.sleep(1.0)  # the pass would have gone on to the second destination by now
        assert b.connections == [], f"contacted after `{command}`: {[x.commands for x in b.connections]}"
        assert inst.events("delivery", id=qid, to="<x@second.test>") == []
        assert inst.events("bounce") == [] and inst.maildir_messages("alice") == []
        if command == "delete":
            for area in ("queue", "hold", "state"):
                assert inst.spool_files(area) == [], (area, inst.spool_files(area))
            return
        assert inst.spool_files("hold") == [qid] and inst.spool_files("queue") == []
        bob_st, x_st = queue_json(inst, "show", qid)["recipients"]
        assert bob_st["status"] == "sent" and (x_st["status"], x_st["attempts"]) == ("queued", 0), (bob_st, x_st)

        r = queue_cli(inst, "release", qid)
        assert r.returncode == 0, r.stderr
        x = inst.wait_events("delivery", 1, id=qid, to="<x@second.test>", timeout=10)[0]
        assert x["result"] == "bounced", x
        assert len(inst.wait_maildir("alice")) == 1
        wait_until(lambda: inst.spool_files("queue") == [], what="message done")
        time.sleep(0.5)
        assert len(a.messages) == 1 and len(inst.maildir_messages("alice")) == 1, a.all_commands()
        assert len(b.connections) == 1, [x.commands for x in b.connections]


@pytest.mark.parametrize("command", ["delete", "hold"])
def test_delete_or_hold_during_the_last_transaction_makes_no_bounce(make_instance, command):
    """One destination refuses nobody@first.test (550 at RCPT) and holds the rest of the
    transaction open; `delete` or `hold` then. The pass ends with a refused recipient, but the
    message is no longer queued: no bounce (`delete` is without one). Held, the refused
    recipient stays due, and after the release it is attempted again and bounced, once; bob is
    not sent again. Before the fix the end of the pass stored the bounce whatever had become of
    the message."""
    with ScriptedPeer(host="127.0.0.2", starttls=False, final_delay=3.0,
                      rcpt_codes={"nobody@first.test": 550}) as a:
        inst = mid_pass_instance(make_instance, a)
        qid = send(inst, "alice@localhost", ["bob@first.test", "nobody@first.test"], f"{command} last")
        a.wait_messages(1)  # nobody refused; bob's final reply comes in 3 s
        r = queue_cli(inst, command, qid)
        assert r.returncode == 0, r.stderr
        inst.wait_events("delivery", 2, id=qid, timeout=10)
        time.sleep(0.5)
        nobody = inst.events("delivery", id=qid, to="<nobody@first.test>")[0]
        assert nobody["result"] != "bounced", nobody
        assert inst.events("bounce") == [] and inst.maildir_messages("alice") == [], "a bounce was made"
        if command == "delete":
            for area in ("queue", "hold", "state"):
                assert inst.spool_files(area) == [], (area, inst.spool_files(area))
            return
        r = queue_cli(inst, "release", qid)
        assert r.returncode == 0, r.stderr
        inst.wait_events("delivery", 1, id=qid, to="<nobody@first.test>", result="bounced", timeout=10)
        assert len(inst.wait_maildir("alice")) == 1
        wait_until(lambda: inst.spool_files("queue") == [], what="message done")
        time.sleep(0.5)
        assert len(a.messages) == 1 and len(inst.maildir_messages("alice")) == 1, a.all_commands()


# --- answers cut short, output that cannot be written, a list under way at SIGTERM -------------

CRASH_SIGNS = ("AddressSanitizer", "runtime error:", "Segmentation fault", "terminate called", "double free")


def raw_request(sock_path, line):
    """One request on the control socket, the raw answer read to EOF (whatever its framing)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        s.sendall(line)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


class ReplayServer:
    """A stand-in for `postern serve` on the control socket: reads each request line, answers
    with `answer` (bytes, possibly cut short) and closes, as a server that stopped mid-write."""

    def __init__(self, path, answer):
        self.path, self.answer = str(path), answer
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self):
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.settimeout(10)
                    request = b""
                    while b"\n" not in request and (chunk := conn.recv(4096)):
                        request += chunk
                    conn.sendall(self.answer)
                except OSError:
                    pass  # the client gave up: its exit status says what it made of it

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(timeout=5)
        self.sock.close()
        os.unlink(self.path)


def test_an_answer_cut_short_is_not_printed(make_instance):
    """The server's real answer to `list json`, replayed by a stand-in on the control socket cut
    after 1 byte, within its first line, right after it, one byte into the payload, halfway, and
    one byte short: the CLI prints nothing and exits 1 ("cut short"), so a `--json` consumer
    never takes half a document for the queue. The whole answer replayed is printed (exit 0).
    Before, the answer was "OK\\n" + payload up to EOF: any cut after "OK\\n" was printed, exit 0."""
    inst = make_instance(queue_extra="hold = true")
    qid = send(inst, "alice@example.test", ["bob@localhost"], "cut short")
    sock_path = inst.dir / "var/spool/control.sock"
    whole = raw_request(sock_path, b"list json\n")
    assert qid.encode() in whole, whole
    inst.stop()
    assert not sock_path.exists()
    header = whole.index(b"\n") + 1
    runs = {}
    for cut in sorted({1, header - 1, header, header + 1, (header + len(whole)) // 2, len(whole) - 1}):
        with ReplayServer(sock_path, whole[:cut]):
            runs[cut] = queue_cli(inst, "list", "--json")
    printed = {cut: (r.returncode, r.stdout) for cut, r in runs.items() if r.returncode != 1 or r.stdout != ""}
    assert printed == {}, f"answer of {len(whole)} bytes cut after N bytes -> (exit status, stdout): {printed}"
    for cut, r in runs.items():
        assert r.stderr.startswith("postern queue: the server's answer was cut short"), (cut, r.stderr)
    with ReplayServer(sock_path, whole):
        r = queue_cli(inst, "list", "--json")
    assert r.returncode == 0, r.stderr
    assert [m["id"] for m in json.loads(r.stdout)] == [qid]


def test_output_that_cannot_be_written_is_an_error(make_instance):
    """stdout on /dev/full (every write fails with ENOSPC): exit 1 and the reason on stderr, not
    exit 0 with the answer lost."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    inst = make_instance(queue_extra="hold = true")
    send(inst, "alice@example.test", ["bob@localhost"], "full disk")
    for args in (["list"], ["list", "--json"]):
        with open("/dev/full", "w") as full:
            r = subprocess.run([POSTERN, "queue", *args, "-c", str(inst.config)], stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=30, cwd="/")
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("postern queue: cannot write the answer to standard output: "), r.stderr
        assert os.strerror(errno.ENOSPC) in r.stderr, r.stderr


def test_list_under_way_at_sigterm_gets_its_whole_answer(make_instance, tmp_path, monkeypatch):
    """`queue list --json` is reading the spool when the server gets SIGTERM: the drain waits
    for it (as for sessions and delivery passes), the CLI gets the whole list (exit 0) and the
    server exits 0 once it is answered, with no crash.

    The reader is held in the middle of the spool deterministically: the server runs with the
    open_gate.c shim, which holds its open(2) of one held queue file (listed after the first)
    until this test lets it go - 1 s after SIGTERM, long after the drain of the code before had
    ended (it counted no control request). There the spool and the queue runner were destroyed
    under the reader, whose answer never came (the CLI exited 1 without one) and whose
    completion went to a destroyed event loop. (A FIFO did this before the spool refused to
    open anything but regular files.)"""
    slow = "FFFFFFFFFFFFF0000"  # a valid queue id, listed after any real one
    gate = tmp_path / "gate"
    gate.mkdir()
    preload(monkeypatch, build_shim(tmp_path, "open_gate.c"))
    monkeypatch.setenv("OPEN_GATE_SUFFIX", f"/hold/{slow}")
    monkeypatch.setenv("OPEN_GATE_DIR", str(gate))
    inst = make_instance(queue_extra="hold = true")
    for name in ("LD_PRELOAD", "OPEN_GATE_SUFFIX", "OPEN_GATE_DIR"):  # the server only
        monkeypatch.delenv(name)
    qid = send(inst, "alice@example.test", ["bob@localhost"], "held")
    hold = inst.dir / "var/spool/hold"
    # qid's queue file under slow's id and naming it (a file that names another message is not listed)
    (hold / slow).write_bytes((hold / qid).read_bytes().replace(f"\nid {qid}\n".encode(), f"\nid {slow}\n".encode(), 1))
    cli = subprocess.Popen([POSTERN, "queue", "list", "--json", "-c", str(inst.config)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd="/")
    try:
        wait_until(lambda: (gate / "reached").exists(), timeout=10, what="the server's read of hold/ held")
        inst.proc.send_signal(signal.SIGTERM)
        inst.wait_events("stop", 1)
        time.sleep(1.0)
        assert inst.alive, "the server stopped with a `queue list` under way"
        (gate / "go").touch()
        out, err = cli.communicate(timeout=30)
    finally:
        (gate / "go").touch()
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, err
    assert [(m["id"], m["held"]) for m in json.loads(out)] == [(qid, True), (slow, True)]
    assert inst.proc.wait(timeout=15) == 0, inst.log()[-3000:]
    log = inst.log()
    assert not [s for s in CRASH_SIGNS if s in log], log[-3000:]
