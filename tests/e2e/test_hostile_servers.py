"""tests/e2e/test_hostile_servers.py - hostile receiving servers against the real binary's SMTP
client (issue 5, point 6). Postern relays mail for internal.test (relay_to) to a
hostile.HostileServer on loopback, whose every connection runs a Python script.

What each test proves (assertions on what the hostile server saw, the `delivery` log lines and
`postern queue list --json`):
- a server that never answers (no greeting, no reply to EHLO) or trickles a reply byte by byte:
  the attempt ends at delivery.command_timeout - a limit on the whole reply, not on each read -
  and the message is deferred, while mail for a well-behaved destination is delivered meanwhile;
- endless multi-line replies and oversized reply lines: refused at the reply bounds (200 lines,
  2048 octets per line), deferred as a protocol error, memory bounded;
- a server that accepts the message data and then drops the connection, or never gives the
  final reply (delivery.final_timeout), gets the message deferred - never counted as sent - and
  the retry delivers it;
- replies injected behind "220 Ready" to STARTTLS (the 2021 "NO STARTTLS" class) are discarded
  unread, and the capabilities advertised before TLS are never used after it.
The SMTP client core has the same cases as unit tests (tests/unit/smtp/client_*_test.cpp);
these run them through the real sockets, TLS and queue.
"""
import time

import pytest

from conftest import relay_domain, wait_until
from hostile import (CAPS, MIB, HostileServer, endless_lines, proc_status_kib, smtp_dialogue, trickle)
from peers import ScriptedPeer, envelope_sender, make_test_ca

TIMEOUTS = '[delivery]\ncommand_timeout = "2s"\nfinal_timeout = "2s"\n'
RSS_ALLOWANCE_KIB = 64 * 1024


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("hostile-ca"), names=("hostile.test", "internal.test"))


def instance(make_instance, server, extra=TIMEOUTS, more_domains="", retry='["1h"]'):
    return make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{server.port}") + more_domains,
                         queue_extra=f"retry_schedule = {retry}", extra=extra)


def queued_status(inst, qid):
    """{address: (status, attempts, last_reply)} of message `qid` in `postern queue list --json`."""
    for m in inst.queue_json("list"):
        if m["id"] == qid:
            return {r["address"]: (r["status"], r["attempts"], r["last_reply"]) for r in m["recipients"]}
    return None


def assert_deferred_never_sent(inst, qid, reason_has):
    ev = inst.wait_events("delivery", 1, timeout=30, id=qid)
    assert len(ev) == 1, ev
    e = ev[0]
    assert e["result"] == "deferred" and e["dsn"].startswith("4."), e
    assert reason_has in e["reason"], e
    st = queued_status(inst, qid)
    assert st == {"bob@internal.test": ("deferred", 1, st["bob@internal.test"][2])}, st
    assert reason_has in st["bob@internal.test"][2], st
    assert not inst.events("delivery", id=qid, result="sent")
    return e


def answered_then(where, answer):
    """A script that reaches `where` ("greeting": at once; "ehlo": after the EHLO arrives;
    "final": after a whole message) and then runs answer(pc) as its reply."""
    def script(pc):
        if where == "greeting":
            answer(pc)
        elif where == "ehlo":
            pc.send(b"220 hostile.test ESMTP\r\n")
            if pc.command() is not None:
                answer(pc)
        else:
            smtp_dialogue(pc, on_data_end=lambda pc: answer(pc) and False)
    return script


@pytest.mark.parametrize("where", ["greeting", "ehlo"], ids=["no-greeting", "no-ehlo-reply"])
def test_server_never_answers(make_instance, where):
    """The attempt ends at delivery.command_timeout with 4.4.2 '... timed out' and is deferred;
    meanwhile mail for a well-behaved destination (good.test) is delivered: one hanging server
    does not hold up the queue."""
    with HostileServer(answered_then(where, lambda pc: pc.hold())) as srv, ScriptedPeer(starttls=False) as good:
        inst = instance(make_instance, srv, extra='[delivery]\ncommand_timeout = "3s"\n',
                        more_domains=relay_domain("good.test", f"127.0.0.1:{good.port}"))
        qid = inst.send("alice@example.test", ["bob@internal.test"], "to the silent server")
        srv.wait_connections(1)
        good_qid = inst.send("alice@example.test", ["carol@good.test"], "to the good server")
        good.wait_messages(1, timeout=10)
        e = assert_deferred_never_sent(inst, qid, "timed out")
        assert e["dsn"] == "4.4.2", e
        sent = inst.wait_events("delivery", 1, id=good_qid, result="sent")
        order = [x["id"] for x in inst.events("delivery")]
        assert order.index(good_qid) < order.index(qid), "the good destination waited for the hanging one"
        conns = srv.conns()
        assert len(conns) == 1
        wait_until(lambda: conns[0].closed_at is not None, what="postern closed the hanging connection")
        verbs = conns[0].verbs()
        assert "MAIL" not in verbs, verbs
        assert sent[0]["relay"] == f"127.0.0.1[127.0.0.1]:{good.port}"


def test_trickled_reply_is_timed_out_as_a_whole(make_instance):
    """A greeting trickled one byte every 0.2 s ('220-' continuation lines that never end):
    each read brings data, but the reply as a whole must arrive within command_timeout (2 s).
    With a per-read timeout this server would hold the attempt until the 200-line bound: here
    200 x 25 octets x 0.2 s = 17 minutes; with 2048-octet lines and a byte every 299 s, years."""
    greeting = b"220-hostile.test slowly\r\n" * 1000

    def trickler(pc):
        pc.stream(trickle(greeting), pause=0.2)

    with HostileServer(trickler) as srv:
        inst = instance(make_instance, srv)
        t0 = time.time()
        qid = inst.send("alice@example.test", ["bob@internal.test"], "trickled")
        e = assert_deferred_never_sent(inst, qid, "timed out")
        assert e["dsn"] == "4.4.2", e
        conns = srv.conns()
        wait_until(lambda: conns[0].closed_at is not None, what="postern closed the trickling connection")
        # Far less than the 200 lines it would take to hit the line-count bound: the deadline
        # is per reply. (Not a latency threshold: 10 s vs. the 2 s limit and 17 min otherwise.)
        assert conns[0].closed_at - t0 < 10, conns[0].closed_at - t0
        assert conns[0].bytes_sent < 200, conns[0].bytes_sent


def reply_refused(make_instance, script, subject, reason):
    """One message relayed to a server running `script`: deferred as a protocol error (4.5.0,
    `reason`), never counted sent; Postern closed the connection; the peak RSS stayed within
    idle + 64 MiB. Returns the server's connection."""
    with HostileServer(script) as srv:
        inst = instance(make_instance, srv)
        idle = proc_status_kib(inst.proc.pid, "VmRSS")
        qid = inst.send("alice@example.test", ["bob@internal.test"], subject)
        e = assert_deferred_never_sent(inst, qid, reason)
        assert e["dsn"] == "4.5.0", e
        conns = srv.conns()
        assert len(conns) == 1
        wait_until(lambda: conns[0].closed_at is not None, what="postern closed the connection")
        assert conns[0].client_closed and srv.accepted() == []
        assert proc_status_kib(inst.proc.pid, "VmHWM") < idle + RSS_ALLOWANCE_KIB
        return conns[0]


@pytest.mark.parametrize("where", ["greeting", "ehlo", "final"])
def test_endless_multiline_reply(make_instance, where):
    """'220-'/'250-' lines at full speed, never a last line: refused at 200 lines (4.5.0
    protocol error), connection closed, deferred; at the final reply never counted as sent."""
    prefix = b"220-" if where == "greeting" else b"250-"
    script = answered_then(where, lambda pc: pc.stream(endless_lines(prefix)))
    reply_refused(make_instance, script, f"endless {where}", "too many lines")


@pytest.mark.parametrize("where", ["greeting", "ehlo"])
def test_oversized_reply_line(make_instance, where):
    """A 16 MiB reply line: refused once 2048 octets have arrived without an LF (4.5.0), the
    connection closed before the server could send it all, memory bounded."""
    def oversized(pc):
        pc.send(b"220 " if where == "greeting" else b"250 ")
        pc.stream((b"x" * 65536 for _ in range(256)))
        pc.send(b"\r\n")
        pc.hold()

    conn = reply_refused(make_instance, answered_then(where, oversized), f"oversized {where}", "reply line too long")
    assert conn.bytes_sent < 16 * MIB, conn.bytes_sent


def drop_after_data(pc):
    return False  # close at once: the message data arrived, the final reply never does


def silent_after_data(pc):
    pc.hold()
    return False


@pytest.mark.parametrize("how", [drop_after_data, silent_after_data], ids=["drop", "silent"])
def test_no_final_reply_is_retried_never_sent(make_instance, how):
    """The server receives the whole message, then drops the connection (or stays silent past
    delivery.final_timeout) before the final reply: the message may or may not have arrived,
    so it is deferred - 'may be delivered twice' -, never counted sent; the retry delivers it."""
    with HostileServer(lambda pc: smtp_dialogue(pc, on_data_end=how)) as srv:
        inst = instance(make_instance, srv)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "no final reply")
        e = assert_deferred_never_sent(inst, qid, "after end of data (may be delivered twice)")
        assert e["dsn"] == "4.4.2", e
        assert ("timed out" in e["reason"]) == (how is silent_after_data), e
        assert srv.data_ends == 1 and srv.accepted() == []
        # the server behaves now; the retry sends the message again and it is delivered
        srv.script = smtp_dialogue
        r = inst.queue_cli("retry", "--all")
        assert r.returncode == 0, r.stderr
        ev = inst.wait_events("delivery", 2, id=qid)
        assert [x["result"] for x in ev] == ["deferred", "sent"], ev
        assert ev[1]["attempt"] == "2", ev
        msgs = srv.accepted()
        assert len(msgs) == 1 and srv.data_ends == 2
        mail_from, rcpts, data, tls = msgs[0]
        assert envelope_sender(mail_from) == "alice@example.test" and rcpts == ["bob@internal.test"]
        assert b"body of no final reply" in data
        wait_until(lambda: inst.queue_json("list") == [], what="queue empty after the retry")


INJECTED = (b"250-injected.test\r\n250 SIZE 10\r\n"       # would be taken as the EHLO reply: SIZE 10
            b"550 5.7.1 injected refusal of MAIL\r\n"      # ... as the reply to MAIL
            b"550 5.7.1 injected refusal of RCPT\r\n")


def test_replies_injected_behind_220_ready_are_discarded(make_instance, cert):
    """STARTTLS is answered '220 Ready' with injected replies in the same write, then a real
    handshake. Had Postern read them, the EHLO inside TLS would get 'SIZE 10' (a local 5.3.4
    refusal) and MAIL a 550: instead the message goes over TLS and is delivered."""
    with HostileServer(lambda pc: smtp_dialogue(pc, starttls=True, after_220=INJECTED),
                       cert=cert["cert"], key=cert["key"]) as srv:
        inst = instance(make_instance, srv)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "injected")
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "sent" and e["tls"] != "none" and e["proto"].startswith("TLSv"), e
        conns = srv.conns()
        assert len(conns) == 1
        cmds = conns[0].commands
        assert [c.split(" ", 1)[0] for c, _ in cmds][:3] == ["EHLO", "STARTTLS", "EHLO"], cmds
        assert all(tls for _, tls in cmds[2:]), cmds
        msgs = srv.accepted()
        assert len(msgs) == 1 and msgs[0][3] is True
        assert "SIZE=" in msgs[0][0], msgs[0][0]  # the SIZE of the EHLO inside TLS was used


def test_plaintext_after_220_ready_in_a_later_segment_fails_the_handshake(make_instance, cert):
    """The injected plaintext arrives after Postern has started the handshake: it is read as
    TLS, the handshake fails, and nothing is sent on that connection (deferred, 4.7.5)."""
    def script(pc):
        pc.send(b"220 hostile.test ESMTP\r\n")
        while True:
            cmd = pc.command()
            if cmd is None:
                return
            if cmd.upper().startswith("EHLO"):
                pc.send(b"250-hostile.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
            elif cmd.upper() == "STARTTLS":
                pc.send(b"220 2.0.0 Ready to start TLS\r\n")
                time.sleep(0.3)  # Postern has sent its ClientHello by now
                pc.send(INJECTED)
                pc.hold()
                return

    with HostileServer(script) as srv:
        inst = instance(make_instance, srv)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "late injection")
        e = assert_deferred_never_sent(inst, qid, "TLS handshake")
        assert e["dsn"] == "4.7.5", e
        verbs = srv.conns()[0].verbs()
        assert verbs == ["EHLO", "STARTTLS"], verbs


@pytest.mark.parametrize("before,after,outcome", [
    (["SIZE 100"], list(CAPS), "sent"),                        # a small SIZE before TLS is forgotten
    (list(CAPS), ["8BITMIME", "SIZE 100"], "bounced"),         # the SIZE inside TLS is the one obeyed
], ids=["small-size-before-tls", "small-size-inside-tls"])
def test_capabilities_before_tls_are_not_trusted_after_it(make_instance, cert, before, after, outcome):
    """RFC 3207 4.2: capabilities advertised before STARTTLS are discarded; only the EHLO
    inside TLS counts. The message (about 400 octets) fits one SIZE and not the other."""
    with HostileServer(lambda pc: smtp_dialogue(pc, starttls=True, caps=before, caps_tls=after),
                       cert=cert["cert"], key=cert["key"]) as srv:
        inst = instance(make_instance, srv)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "capabilities " + "x" * 300)
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == outcome, e
        assert e["tls"] != "none", e
        cmds = srv.conns()[0].commands
        assert [c.split(" ", 1)[0] for c, _ in cmds][:3] == ["EHLO", "STARTTLS", "EHLO"], cmds
        if outcome == "sent":
            assert len(srv.accepted()) == 1 and srv.accepted()[0][3] is True
        else:
            assert e["dsn"] == "5.3.4", e  # refused locally: the message exceeds the peer's SIZE
            assert not any(c.upper().startswith("MAIL") for c, _ in cmds), cmds
            assert srv.accepted() == []
