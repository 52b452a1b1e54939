"""tests/e2e/test_outbound_fallover.py - a temporary failure at one relay host after MAIL FROM
leaves the recipient to the next host in the same attempt (RFC 5321 5.1; Postfix smtp_trouble.c
keeps a soft-failed recipient for the next server): a 4xx to MAIL, RCPT or the end of data, or
a connection lost before the end of data. Not when the connection is lost while waiting for the
final reply (the message may have been delivered: another host would duplicate it), not for a
5xx, and never for a recipient the first host already took. A reply sent together with the
354 to DATA is a protocol error before the end of data: no delivery, the next host. A 3xx
greeting is refused like a 5xx one, deferred with a class-4 status.

The hosts are `relay_to` hosts of a hosted domain: the scripted peer of peers.py, and
hostile.py's HostileServer running a script that fails at one point of the transaction.
"""
import time

from conftest import free_port, relay_domain, route, wait_until
from hostile import HostileServer, ehlo_reply, smtp_dialogue
from peers import ScriptedPeer, envelope_sender

ONE_HOUR = 'retry_schedule = ["1h"]'


def fail_at(verb, reply):
    """A HostileServer script: 250 to everything (no PIPELINING) until `verb`, answered with
    `reply`, or with nothing, the connection closed, when `reply` is None."""
    def script(pc):
        pc.send(b"220 faulty.test ESMTP\r\n")
        while (cmd := pc.command()) is not None:
            v = cmd.split(" ", 1)[0].upper()
            if v == verb and reply is None:
                return
            if v == "QUIT":
                pc.send(b"221 2.0.0 Bye\r\n")
                return
            pc.send(reply if v == verb else
                    ehlo_reply("faulty.test", ("8BITMIME", "ENHANCEDSTATUSCODES")) if v == "EHLO" else b"250 2.0.0 Ok\r\n")
    return script


def two_hosts(make_instance, first_port, second_port, extra=""):
    return make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{first_port}",
                                              f"127.0.0.1:{second_port}"),
                         extra=extra, queue_extra=ONE_HOUR)


def assert_second_host_delivers(inst, qid, second, rcpts=("bob@internal.test",)):
    """Delivered by `second`, in attempt 1, each recipient once."""
    msgs = second.wait_messages(1, timeout=10)
    assert len(msgs) == 1 and envelope_sender(msgs[0][0]) == "alice@example.test", msgs
    assert msgs[0][1] == list(rcpts), msgs
    ev = inst.wait_events("delivery", len(rcpts), id=qid)
    time.sleep(0.3)
    ev = inst.events("delivery", id=qid)
    assert len(ev) == len(rcpts), ev  # one line per recipient: no deferral logged first
    for e in ev:
        assert e["result"] == "sent" and e["attempt"] == "1", e
        assert e["relay"] == f"127.0.0.1[127.0.0.1]:{second.port}", e
    wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")


def test_rcpt_4xx_goes_to_the_next_host(make_instance):
    """The brief's case: 451 to RCPT at the first relay host; the second takes the mail in the
    same attempt. Before: deferred, the second host never contacted."""
    with ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": 451}) as first, \
            ScriptedPeer(starttls=False) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "rcpt 451")
        assert_second_host_delivers(inst, qid, second)
        assert first.messages == [] and first.saw_mail_from()


def test_mail_4xx_goes_to_the_next_host(make_instance):
    with HostileServer(fail_at("MAIL", b"451 4.3.0 try again later\r\n")) as first, \
            ScriptedPeer(starttls=False) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "mail 451")
        assert_second_host_delivers(inst, qid, second)
        verbs = first.conns()[0].verbs()
        assert verbs[:2] == ["EHLO", "MAIL"] and "RCPT" not in verbs, verbs


def test_connection_lost_at_rcpt_goes_to_the_next_host(make_instance):
    """A connection lost after MAIL FROM, before the end of data: nothing can have been
    delivered, so the next host is tried."""
    with HostileServer(fail_at("RCPT", None)) as first, ScriptedPeer(starttls=False) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "closed at rcpt")
        assert_second_host_delivers(inst, qid, second)
        assert first.conns()[0].verbs() == ["EHLO", "MAIL", "RCPT"]


def test_end_of_data_4xx_goes_to_the_next_host(make_instance):
    """A 4xx to the end of data is a definite "not taken": the next host gets the message."""
    with ScriptedPeer(starttls=False, final_code=451) as first, ScriptedPeer(starttls=False) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "final 451")
        assert_second_host_delivers(inst, qid, second)
        assert first.messages == [] and "DATA" in [c.upper() for c, _ in first.all_commands()]


def test_lost_waiting_for_the_final_reply_defers_without_the_next_host(make_instance):
    """The end of data went out and no reply came: the first host may have delivered the
    message. Deferred ("may be delivered twice"), the next host not tried (no duplicate)."""
    no_final_reply = lambda pc: smtp_dialogue(pc, on_data_end=lambda pc: False)  # closes instead
    with HostileServer(no_final_reply) as first, ScriptedPeer(starttls=False) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "lost after dot")
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "deferred" and e["attempt"] == "1", e
        assert "may be delivered twice" in e["reason"], e
        assert e["relay"] == f"127.0.0.1[127.0.0.1]:{first.port}", e
        time.sleep(0.5)
        assert second.connections == [], second.all_commands()


def test_recipients_the_first_host_took_are_not_sent_again(make_instance):
    """bob is taken by the first host (250 to RCPT and to the end of data), carol refused 451:
    only carol goes to the second host, in the same attempt."""
    with ScriptedPeer(starttls=False, rcpt_codes={"carol@internal.test": 451}) as first, \
            ScriptedPeer(starttls=False) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test", "carol@internal.test"], "split")
        assert [m[1] for m in first.wait_messages(1, timeout=10)] == [["bob@internal.test"]]
        assert [m[1] for m in second.wait_messages(1, timeout=10)] == [["carol@internal.test"]]
        ev = {e["to"]: e for e in inst.wait_events("delivery", 2, id=qid)}
        assert ev["<bob@internal.test>"]["relay"] == f"127.0.0.1[127.0.0.1]:{first.port}", ev
        assert ev["<carol@internal.test>"]["relay"] == f"127.0.0.1[127.0.0.1]:{second.port}", ev
        assert all(e["result"] == "sent" and e["attempt"] == "1" for e in ev.values()), ev
        rcpts = [c[8:].strip("<> ") for c, _ in second.all_commands() if c.upper().startswith("RCPT TO:")]
        assert rcpts == ["carol@internal.test"], second.all_commands()


def test_rcpt_5xx_stays_final(make_instance):
    """A 5xx is the recipient's answer: bounced, the next host not asked."""
    with ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": 550}) as first, \
            ScriptedPeer(starttls=False) as second, ScriptedPeer(starttls=False) as sender_mx:
        inst = two_hosts(make_instance, first.port, second.port,
                         extra=route("example.test", f"127.0.0.1:{sender_mx.port}"))
        qid = inst.send("alice@example.test", ["bob@internal.test"], "rcpt 550")
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "bounced" and e["dsn"] == "5.1.1", e
        sender_mx.wait_messages(1, timeout=10)  # the bounce
        assert second.connections == [], second.all_commands()


def test_every_host_failing_defers_with_the_most_telling_reason(make_instance):
    """451 from the first host, the second unreachable: deferred with the first host's reply
    (what the recipient's server said), not with the backup's "connection refused"."""
    with ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": 451}) as first:
        inst = two_hosts(make_instance, first.port, free_port())
        qid = inst.send("alice@example.test", ["bob@internal.test"], "all fail")
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "deferred" and e["attempt"] == "1", e
        assert e["dsn"] == "4.1.1" and "451" in e["reason"], e
        assert e["relay"] == f"127.0.0.1[127.0.0.1]:{first.port}", e


def test_reply_behind_354_is_no_delivery(make_instance):
    """A first host that answers DATA with "354" and, in the same write, a "250" (before any
    content can have reached it): that 250 answers nothing. Not counted as delivered (before:
    sent, with the content never written, left to go out ahead of the next transaction's
    MAIL FROM on the parked session); a protocol error before the end of data, so the second
    host delivers in the same attempt, and the first never gets the content."""
    with HostileServer(fail_at("DATA", b"354 go ahead\r\n250 2.0.0 queued\r\n")) as first, \
            ScriptedPeer(starttls=False) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "reply behind 354")
        assert_second_host_delivers(inst, qid, second)
        wait_until(lambda: first.conns()[0].closed_at is not None, what="first connection closed")
        assert first.conns()[0].verbs() == ["EHLO", "MAIL", "RCPT", "DATA"], first.conns()[0].commands


def test_3xx_greeting_defers_with_a_class_4_status(make_instance):
    """A greeting that is neither 220 nor a refusal ("354 hi") is refused like a 5xx one: next
    host, else deferred 4.4.2. Before: deferred with "2.0.0" (the class default of a reply
    below 400), and at queue.max_age a DSN said "Action: failed, Status: 2.0.0"."""
    with HostileServer(lambda pc: smtp_dialogue(pc, greeting=b"354 hi\r\n")) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"), queue_extra=ONE_HOUR)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "354 greeting")
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "deferred" and e["dsn"] == "4.4.2" and "354 hi" in e["reason"], e


def test_recipients_the_first_host_took_are_recorded_before_the_next_host(make_instance):
    """bob is taken by the first host, carol refused 451 and handed to a second host that
    accepts the connection but never greets (the pass waits there for minutes). bob's `sent`
    must be in state/ID while that wait lasts: `queue list` shows it, and after a SIGTERM and
    a restart in the middle of the wait the first host does not get bob a second time. Before
    the fix the state was written only when deliver() had tried every host: bob stayed
    `queued`, and the restart delivered him again."""
    def never_greet(pc):
        while pc.command() is not None:
            pass

    with ScriptedPeer(starttls=False, rcpt_codes={"carol@internal.test": 451}) as first, \
            HostileServer(never_greet) as second:
        inst = two_hosts(make_instance, first.port, second.port)
        qid = inst.send("alice@example.test", ["bob@internal.test", "carol@internal.test"], "recorded")
        assert [m[1] for m in first.wait_messages(1, timeout=10)] == [["bob@internal.test"]]
        wait_until(lambda: second.connections, what="the pass waiting for the second host's greeting")

        def status():
            m = next((m for m in inst.queue_json("list") if m["id"] == qid), None)
            return m and {r["address"]: r["status"] for r in m["recipients"]}
        wait_until(lambda: (s := status()) and s["bob@internal.test"] == "sent", timeout=5,
                   what="bob recorded as sent while the second host is pending")
        assert status()["carol@internal.test"] != "sent", status()

        inst.stop()
        second.script = lambda pc: None  # from now on: connection closed at once (a deferral)
        inst.start()
        wait_until(lambda: len(first.connections) >= 2, timeout=15, what="carol retried after the restart")
        time.sleep(1.0)  # that connection's commands are in (the 451 to carol ends it)
        rcpts = [c[8:].strip("<> ") for c, _ in first.all_commands() if c.upper().startswith("RCPT TO:")]
        assert rcpts.count("bob@internal.test") == 1, rcpts
        assert len(first.messages) == 1, [m[1] for m in first.messages]


def test_each_relay_host_is_a_destination_of_its_own_for_the_limits(make_instance):
    """Postfix enforces smtp_mx_session_limit (2) and smtp_mx_address_limit (5) per next-hop
    or fall-back destination (smtp_connect.c), and each host of a relay_to list is one: three
    relays answering 451 to RCPT (a greylisting farm, say), then six answering 421 to the
    connection, then a good one. Every relay gets its connection and the tenth takes the
    message: the fall-back relays are never cut short by the sessions and addresses of the
    relays before them. (The limits within one destination: test_mx.py.) Before, both limits
    counted over the whole list: the third relay and everything after the fifth address got no
    connection, and the good relay never got the mail."""
    grey = [ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": 451}) for _ in range(3)]
    busy = [ScriptedPeer(starttls=False, greeting_codes=(421,)) for _ in range(6)]
    good = ScriptedPeer(starttls=False)
    peers = grey + busy + [good]
    for p in peers:
        p.__enter__()
    try:
        inst = make_instance(domains=relay_domain("internal.test", *(f"127.0.0.1:{p.port}" for p in peers)),
                             queue_extra=ONE_HOUR)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "ten relays")
        e = inst.wait_events("delivery", 1, id=qid, timeout=30)[0]
        assert e["result"] == "sent" and e["attempt"] == "1", e
        assert f":{good.port}" in e["relay"], e
        assert [len(p.connections) for p in peers] == [1] * 10, [len(p.connections) for p in peers]
        assert len(good.messages) == 1
    finally:
        for p in peers:
            p.__exit__(None, None, None)


def test_recipients_the_first_host_took_are_recorded_before_the_next_hosts_lookup(make_instance):
    """As above, but the second relay host is a name whose lookup hangs (the configured DNS
    server is a UDP socket that never answers: the resolver waits for its timeout). bob, taken
    by the first host, must be recorded as sent before that wait, not after it: a restart or
    a crash during the lookup would otherwise deliver him again."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead_dns, \
            ScriptedPeer(starttls=False, rcpt_codes={"carol@internal.test": 451}) as first:
        dead_dns.bind(("127.0.0.1", 0))
        dns_port = dead_dns.getsockname()[1]
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{first.port}", f"slow.test:{free_port()}"),
                             extra=f'[dns]\nservers = ["127.0.0.1:{dns_port}"]\n', queue_extra=ONE_HOUR)
        qid = inst.send("alice@example.test", ["bob@internal.test", "carol@internal.test"], "before lookup")
        assert [m[1] for m in first.wait_messages(1, timeout=10)] == [["bob@internal.test"]]

        def status():
            m = next((m for m in inst.queue_json("list") if m["id"] == qid), None)
            return m and {r["address"]: r["status"] for r in m["recipients"]}
        wait_until(lambda: (s := status()) and s["bob@internal.test"] == "sent", timeout=3,
                   what="bob recorded as sent while slow.test is being looked up")
        assert not inst.events("delivery", id=qid, to="<carol@internal.test>"), "carol decided: the lookup did not hang"

