"""tests/e2e/test_outbound_tls.py - outbound opportunistic TLS (SPEC §1.1, issue 3).

The scripted peer advertises STARTTLS (or not) and completes, breaks or refuses the handshake.
Assertions are on what the peer saw, per connection and with timestamps:
- a good peer gets the message over TLS; the certificate check is logged (untrusted / trusted /
  verified) with the protocol and cipher;
- no STARTTLS advertised: plaintext at once, one connection, tls=none;
- a failed handshake (junk instead of a ServerHello, close after "220 Ready", STARTTLS answered
  454): nothing is sent on that attempt, the next attempt comes no sooner than
  tls.handshake_retry_delay; when it fails again, Postern reconnects and delivers without TLS in
  that same attempt (tls=fallback).
"""
import contextlib
import math
import re
import time

import pytest

from conftest import relay_domain, wait_until
from dns_server import DnsServer
from peers import ScriptedPeer, envelope_sender, make_test_ca

SEED = dict(tls_extra='handshake_retry_delay = "2s"', queue_extra='retry_schedule = ["1s"]')


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Two server certificates from one test CA: one naming the recipient domain, one not (and
    without an IP address SAN, so that no name check can match a relay_to IP literal)."""
    a = tmp_path_factory.mktemp("ca-named")
    named = make_test_ca(a, names=("peer.test", "internal.test", "localhost"))
    b = tmp_path_factory.mktemp("ca-unnamed")
    unnamed = make_test_ca(b, names=("peer.test",), ip=None)
    return {"named": named, "unnamed": unnamed}


def instance_for(make_instance, peer, ca_file=None, **kw):
    tls_extra = kw.pop("tls_extra", "")
    if ca_file:
        tls_extra += f'\nca_file = "{ca_file}"\n'
    return make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                         tls_extra=tls_extra, **kw)


@pytest.mark.parametrize("trust", ["verified", "trusted", "untrusted"])
def test_good_peer_gets_tls(make_instance, certs, trust):
    """verified: chain to tls.ca_file and the certificate names the recipient domain;
    trusted: chain ok, no name matches; untrusted: no chain (the system store lacks our CA)."""
    c = certs["named"] if trust == "verified" else certs["unnamed"]
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as peer:
        inst = instance_for(make_instance, peer, ca_file=None if trust == "untrusted" else c["ca"],
                            queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@example.test", ["bob@internal.test"], "over tls")
        msgs = peer.wait_messages(1, timeout=10)
        mail_from, rcpts, data, tls = msgs[0]
        assert tls is True, "the message must travel over TLS"
        assert envelope_sender(mail_from) == "alice@example.test" and rcpts == ["bob@internal.test"]
        assert b"body of over tls" in data
        assert len(peer.connections) == 1
        cmds = peer.connections[0].commands
        verbs = [c.split(" ", 1)[0].upper() for c, _ in cmds]
        assert verbs[:3] == ["EHLO", "STARTTLS", "EHLO"], cmds  # EHLO again after STARTTLS (RFC 3207)
        assert all(t for c, t in cmds[2:]), "everything after STARTTLS inside TLS"

        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["to"] == "<bob@internal.test>"
        assert e["relay"] == f"127.0.0.1[127.0.0.1]:{peer.port}", e
        assert e["profile"] == "-", e
        assert e["tls"] == trust, e
        assert e["proto"] == "TLSv1.3", e
        assert re.fullmatch(r"TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)", e["cipher"]), e
        assert e["result"] == "sent" and e["dsn"] == "2.0.0" and e["attempt"] == "1", e
        assert re.fullmatch(r"\d+\.\d{3}", e["delay"]), e
        assert e["reason"].startswith("250"), e
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")


def test_no_starttls_offered_plaintext_at_once(make_instance, certs):
    with ScriptedPeer(starttls=False) as peer:
        inst = instance_for(make_instance, peer, ca_file=certs["named"]["ca"], **SEED)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "plain")
        msgs = peer.wait_messages(1, timeout=10)
        assert msgs[0][3] is False
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["tls"] == "none" and e["proto"] == "-" and e["cipher"] == "-", e
        assert e["result"] == "sent" and e["attempt"] == "1", e
        assert len(peer.connections) == 1
        assert "STARTTLS" not in peer.connections[0].verbs()


# SPEC §1.1: STARTTLS answered with anything but 220 is a failed handshake. 5xx refusals look
# permanent but refuse the TLS session, not the recipient (never a bounce); a 250 is not a 220
# either (no handshake may follow it).
REFUSALS = {"refuse": "454 4.7.0 TLS not available", "refuse-554": "554 5.7.0 no TLS for you",
            "refuse-502": "502 5.5.1 Command not implemented",
            "refuse-500": "500 5.5.2 Syntax error, command unrecognized", "refuse-250": "250 2.0.0 go ahead"}


@pytest.mark.parametrize("mode", ["garbage", "close", *REFUSALS, "require_client_cert"])
def test_failed_handshake_defers_then_falls_back(make_instance, certs, mode):
    """garbage: junk instead of a TLS handshake; close: the peer closes after "220 Ready";
    refuse: STARTTLS answered 454 (refuse-NNN: answered NNN, see REFUSALS); require_client_cert:
    TLS 1.3, the peer aborts with an alert
    after Postern's side of the handshake completed (before any reply inside TLS) - each counts
    as a failed handshake (SPEC §1.1). The last one was taken for a lost connection: deferred
    on retry_schedule at every attempt, never delivered, bounced at queue.max_age."""
    c = certs["named"]
    refusal = REFUSALS.get(mode)
    with ScriptedPeer(tls_mode="refuse" if refusal else mode, starttls_reply=refusal or REFUSALS["refuse"],
                      cert=c["cert"], key=c["key"]) as peer:
        inst = instance_for(make_instance, peer, ca_file=c["ca"], **SEED)
        qid = inst.send("alice@example.test", ["bob@internal.test"], f"seed {mode}")

        # first attempt: STARTTLS fails, nothing is sent, the recipient is deferred
        first = inst.wait_events("delivery", 1, id=qid)[0]
        assert first["result"] == "deferred" and first["attempt"] == "1", first
        assert first["dsn"].startswith("4."), first
        if mode == "require_client_cert":  # the alert is named, not "connection closed"
            assert "TLS handshake with" in first["reason"] and "certificate required" in first["reason"], first
        if refusal:
            assert first["tls"] != "fallback" and refusal in first["reason"], first
        assert len(peer.connections) == 1
        assert "STARTTLS" in peer.connections[0].verbs()
        assert not peer.saw_mail_from(), peer.all_commands()

        msgs = peer.wait_messages(1, timeout=10)
        conns = peer.connections
        assert len(conns) == 3, [x.commands for x in conns]
        # the retry: no sooner than handshake_retry_delay (2 s), though retry_schedule says 1 s
        gap = conns[1].accepted - conns[0].accepted
        assert gap >= 2.0, f"retry after {gap:.2f}s, handshake_retry_delay is 2s"
        assert "STARTTLS" in conns[1].verbs() and "MAIL" not in conns[1].verbs(), conns[1].commands
        # second failure: reconnect at once, no STARTTLS, plaintext delivery in the same attempt
        assert conns[2].accepted - conns[1].accepted < 1.0
        assert "STARTTLS" not in conns[2].verbs(), conns[2].commands
        assert [t for cmd, t in conns[2].commands if cmd.upper().startswith("MAIL FROM")] == [False]
        mail_from, rcpts, data, tls = msgs[0]
        assert tls is False and rcpts == ["bob@internal.test"] and f"seed {mode}".encode() in data

        ev = inst.wait_events("delivery", 2, id=qid)
        assert len(ev) == 2, ev
        second = ev[1]
        assert second["result"] == "sent" and second["attempt"] == "2", second
        assert second["tls"] == "fallback" and second["proto"] == "-" and second["cipher"] == "-", second
        assert second["relay"] == f"127.0.0.1[127.0.0.1]:{peer.port}", second
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")
        if refusal:  # the connection is still usable: end it properly (RFC 5321 4.1.1.10)
            for x in conns[:2]:
                assert x.verbs() == ["EHLO", "STARTTLS", "QUIT"], f"after {refusal!r} to STARTTLS: {x.commands}"
        assert inst.events("delivery", id=qid, result="bounced") == []


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_close_after_a_complete_handshake_is_a_lost_connection_not_a_tls_failure(make_instance, certs, version):
    """The first host completes the handshake and then closes without an alert or a reply (an
    overloaded server, a proxy whose backend is down): that is a lost connection, so the second
    host takes the message at once, over TLS; the first host is not counted as a TLS failure
    (which would defer by handshake_retry_delay and later fall back to plaintext)."""
    c = certs["named"]
    with ScriptedPeer(tls_mode="close_after_tls", tls_max_version=version, cert=c["cert"], key=c["key"]) as bad, \
            ScriptedPeer(cert=c["cert"], key=c["key"]) as good:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{bad.port}", f"127.0.0.1:{good.port}"),
                             tls_extra=f'ca_file = "{c["ca"]}"\nhandshake_retry_delay = "1h"',
                             queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@example.test", ["bob@internal.test"], f"close after tls {version}")
        msgs = good.wait_messages(1, timeout=10)
        assert msgs[0][3] is True, "over TLS"
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "sent" and e["attempt"] == "1", e
        assert e["relay"] == f"127.0.0.1[127.0.0.1]:{good.port}" and e["tls"] == "verified", e
        assert len(bad.connections) == 1 and bad.connections[0].tls_version == f"TLSv{version}"


def test_failed_handshake_remembered_across_kill9(make_instance, certs):
    """The first failed handshake is part of the message's durable state: after kill -9 and a
    restart, the next failure falls back to plaintext in that attempt, not after a third try."""
    c = certs["named"]
    with ScriptedPeer(tls_mode="garbage", cert=c["cert"], key=c["key"]) as peer:
        inst = instance_for(make_instance, peer, ca_file=c["ca"], **SEED)
        # fail the handshake late in a wall-clock second: a next-attempt time kept in whole
        # seconds must be rounded up, or the retry after the restart comes up to 1 s early
        deadline = time.time() + 2
        while not 0.75 <= time.time() % 1 <= 0.85 and time.time() < deadline:
            time.sleep(0.005)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "seed restart")
        first = inst.wait_events("delivery", 1, id=qid)[0]
        assert first["result"] == "deferred", first
        inst.kill9()
        # restart in the next wall-clock second: the retry must still wait the full 2 s
        time.sleep(max(0.0, math.floor(peer.connections[0].accepted) + 1.05 - time.time()))
        inst.start()
        msgs = peer.wait_messages(1, timeout=10)
        assert msgs[0][3] is False
        conns = peer.connections
        assert len(conns) == 3, [x.commands for x in conns]
        assert "STARTTLS" in conns[1].verbs() and "STARTTLS" not in conns[2].verbs()
        e = inst.wait_events("delivery", 1, id=qid, result="sent")[0]
        assert e["tls"] == "fallback" and e["attempt"] == "2", e
        gap = conns[1].accepted - conns[0].accepted
        assert gap >= 2.0, f"retry {gap:.2f}s after the failed handshake; handshake_retry_delay is 2s"


def test_failed_handshake_counts_per_attempt_not_per_group(make_instance, certs):
    """Two recipient domains whose MX is the same host (shared hosting) are two transactions in
    one pass. When the host's handshake fails for the first, the second's failure in that same
    pass is still a first failure: deferred, never plaintext at once (SPEC §1.1). The retry
    after handshake_retry_delay falls back to plaintext for both."""
    zones = {"a.test": "@ MX 10 mx.shared.test.\n", "b.test": "@ MX 10 mx.shared.test.\n",
             "shared.test": "mx A 127.0.0.2\n"}
    c = certs["named"]
    with DnsServer(zones=zones) as dns, \
            ScriptedPeer(host="127.0.0.2", tls_mode="garbage", cert=c["cert"], key=c["key"]) as peer:
        extra = (f'[delivery]\nport = {peer.port}\n\n[dns]\nservers = ["{dns.address}"]\n\n'
                 '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n')
        inst = make_instance(extra=extra, **SEED)
        rcpts = ["bob@a.test", "carol@b.test"]
        qid = inst.send("alice@origin.test", rcpts, "shared mx")

        first = inst.wait_events("delivery", 2, id=qid)[:2]
        assert sorted(e["to"] for e in first) == ["<bob@a.test>", "<carol@b.test>"], first
        for e in first:
            assert e["result"] == "deferred" and e["attempt"] == "1", first
            assert e["tls"] != "fallback", first
        assert not peer.saw_mail_from(), peer.all_commands()

        ev = inst.wait_events("delivery", 4, id=qid, timeout=15)
        for e in ev[2:]:
            assert e["result"] == "sent" and e["attempt"] == "2" and e["tls"] == "fallback", ev
        assert sorted(r for _f, rr, _d, _t in peer.messages for r in rr) == rcpts
        first_mail = min(x.accepted for x in peer.connections if "MAIL" in x.verbs())
        gap = first_mail - peer.connections[0].accepted
        assert gap >= 2.0, f"plaintext {gap:.2f}s after the first failed handshake, handshake_retry_delay is 2s"


def test_sessions_without_tls_are_reused_too(make_instance, certs):
    """SPEC §3.4, found by review: with tls.opportunistic = false (level none) no session was
    parked, so each message opened a connection of its own (and waited for the reply to QUIT).
    Now one connection carries the three messages, in plaintext, though the peer offers
    STARTTLS."""
    c = certs["named"]
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as peer:
        inst = instance_for(make_instance, peer, tls_extra="opportunistic = false",
                            queue_extra='retry_schedule = ["1h"]')
        for i in range(3):
            inst.send("alice@example.test", ["bob@internal.test"], f"plain {i}")
            peer.wait_messages(i + 1, timeout=10)
        assert [m[3] for m in peer.messages] == [False] * 3
        assert len(peer.connections) == 1, [x.commands for x in peer.connections]
        assert "STARTTLS" not in peer.connections[0].verbs()


def test_a_fallback_delivery_is_recorded_without_waiting_for_the_reply_to_quit(make_instance, certs):
    """Found by review: a session not parked for reuse (here the tls=fallback one, which never
    is) waited up to 10 s for the 221 to QUIT before the pass recorded the recipients just
    sent, so a stop or a crash meanwhile delivered them again after the restart. Now QUIT is
    sent and the connection closed at once (as Postfix's smtp_skip_quit_response = yes does):
    with a next hop that never answers QUIT, the delivery is logged and the message gone from
    the queue right after the fallback connection (it took 10 s more before)."""
    c = certs["named"]
    with ScriptedPeer(tls_mode="refuse", cert=c["cert"], key=c["key"], quit_reply=False) as peer:
        inst = instance_for(make_instance, peer, ca_file=c["ca"], **SEED)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "no 221")
        peer.wait_messages(1, timeout=10)
        delivered_at = time.time()
        ev = inst.wait_events("delivery", 2, id=qid, timeout=5)
        assert ev[1]["result"] == "sent" and ev[1]["tls"] == "fallback", ev
        wait_until(lambda: inst.spool_files("queue") == [], timeout=5, what="queue empty")
        assert time.time() - delivered_at < 5
        fallback = peer.connections[-1]
        assert len(peer.connections) == 3 and "STARTTLS" not in fallback.verbs(), fallback.commands
        assert fallback.verbs()[-1] == "QUIT", fallback.commands  # still sent (RFC 5321 4.1.1.10)
        wait_until(lambda: fallback.closed_after_quit is not None, what="the fallback connection closed")
        assert fallback.closed_after_quit - delivered_at < 5


# --- SPEC §1.1: the fallback needs the second failure for the same message AND host ------------


@pytest.mark.parametrize("where", ["two-ips", "one-ip-two-ports"])
def test_fallback_only_on_the_same_hosts_second_failure(make_instance, certs, where):
    """relay_to = [A, B], both breaking the handshake. Attempt 1: A fails (nothing sent; the
    recipients for that host are deferred, so B is not tried). From then on A greets 421 (busy),
    so attempt 2 goes on to B: B's handshake fails for the first time for this message - it must
    defer again, not fall back, though the message already had a failed handshake (with A).
    Attempt 3: B fails a second time -> reconnect to B and deliver without TLS (tls=fallback).
    A memory per message only ("this message had a failure") falls back in attempt 2; one that
    does not tell the hosts apart does the same. A never gets plaintext.
    two-ips: A and B on 127.0.0.2 / 127.0.0.3; one-ip-two-ports: two servers on 127.0.0.1 with
    different ports, two relay_to hosts all the same."""
    c = certs["named"]
    ha, hb = ("127.0.0.2", "127.0.0.3") if where == "two-ips" else ("127.0.0.1", "127.0.0.1")
    with ScriptedPeer(host=ha, tls_mode="garbage", greeting_codes=(220, 421), cert=c["cert"], key=c["key"]) as a, \
            ScriptedPeer(host=hb, tls_mode="garbage", cert=c["cert"], key=c["key"]) as b:
        inst = make_instance(domains=relay_domain("internal.test", f"{ha}:{a.port}", f"{hb}:{b.port}"),
                             tls_extra=f'ca_file = "{c["ca"]}"\nhandshake_retry_delay = "1s"',
                             queue_extra='retry_schedule = ["1s"]')
        qid = inst.send("alice@example.test", ["bob@internal.test"], f"two hosts {where}")

        first = inst.wait_events("delivery", 1, id=qid)[0]
        assert first["result"] == "deferred" and first["attempt"] == "1", first
        assert first["relay"] == f"{ha}[{ha}]:{a.port}" and first["dsn"].startswith("4."), first
        # the premise: B was not contacted in attempt 1 (else its later failure would be its second)
        assert b.connections == [], [x.commands for x in b.connections]

        second = inst.wait_events("delivery", 2, id=qid, timeout=10)[1]
        assert second["attempt"] == "2", second
        assert second["result"] == "deferred" and second["tls"] != "fallback", \
            f"B's first failed handshake for this message fell back to plaintext: {second}"
        assert second["relay"] == f"{hb}[{hb}]:{b.port}", second
        assert not b.saw_mail_from() and not a.saw_mail_from(), (a.all_commands(), b.all_commands())

        msgs = b.wait_messages(1, timeout=10)
        assert msgs[0][3] is False and msgs[0][1] == ["bob@internal.test"]
        third = inst.wait_events("delivery", 3, id=qid)[2]
        assert third["result"] == "sent" and third["attempt"] == "3" and third["tls"] == "fallback", third
        assert third["relay"] == f"{hb}[{hb}]:{b.port}", third
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")
        inst.stop()

        bc = b.connections
        assert len(bc) == 3, [x.commands for x in bc]
        assert bc[0].verbs() == ["EHLO", "STARTTLS"] and bc[1].verbs() == ["EHLO", "STARTTLS"], [x.commands for x in bc]
        assert "STARTTLS" not in bc[2].verbs() and "MAIL" in bc[2].verbs(), bc[2].commands
        gap = bc[1].accepted - bc[0].accepted
        assert gap >= 0.9, f"B retried {gap:.2f}s after its failed handshake; handshake_retry_delay is 1s"
        ac = a.connections
        assert len(ac) == 3, [x.commands for x in ac]  # attempt 1: broken handshake; 2 and 3: 421
        assert ac[0].verbs() == ["EHLO", "STARTTLS"], ac[0].commands
        assert not a.saw_mail_from() and a.messages == []


@contextlib.contextmanager
def first_failed_handshake(make_instance, certs, subject):
    """A peer that breaks every handshake (junk after "220 Ready"), an instance relaying
    internal.test to it (handshake_retry_delay 3s, retry_schedule 1s), and a message from
    alice@example.test to bob@internal.test whose first attempt was deferred: yields
    (peer, instance, queue id, that attempt's delivery event)."""
    c = certs["named"]
    with ScriptedPeer(tls_mode="garbage", cert=c["cert"], key=c["key"]) as peer:
        inst = instance_for(make_instance, peer, ca_file=c["ca"], tls_extra='handshake_retry_delay = "3s"',
                            queue_extra='retry_schedule = ["1s"]')
        qid = inst.send("alice@example.test", ["bob@internal.test"], subject)
        first = inst.wait_events("delivery", 1, id=qid)[0]
        assert first["result"] == "deferred" and first["attempt"] == "1", first
        yield peer, inst, qid, first


def test_failed_handshake_memory_is_per_message_not_per_host(make_instance, certs):
    """Message 1's handshake with the peer fails (its first failure). Message 2 then goes to
    the same broken peer: that is message 2's FIRST failure with it, so its first attempt must
    defer too - no plaintext before handshake_retry_delay has passed since message 2's own
    failure. A memory kept per host across messages would send message 2 in plaintext at once.
    Both messages fall back on their own second attempt."""
    with first_failed_handshake(make_instance, certs, "memory one") as (peer, inst, q1, _e1):
        q2 = inst.send("carol@example.test", ["bob@internal.test"], "memory two")
        e2 = inst.wait_events("delivery", 1, id=q2)[0]
        assert e2["attempt"] == "1", e2
        assert e2["result"] == "deferred" and e2["tls"] != "fallback", \
            f"message 2's first failed handshake fell back because message 1 had failed: {e2}"
        assert not peer.saw_mail_from(), peer.all_commands()
        assert len(peer.connections) == 2, [x.commands for x in peer.connections]
        m2_failed = peer.connections[1].accepted
        assert peer.connections[1].verbs() == ["EHLO", "STARTTLS"], peer.connections[1].commands

        for q in (q1, q2):
            s = inst.wait_events("delivery", 1, id=q, result="sent", timeout=15)[0]
            assert s["attempt"] == "2" and s["tls"] == "fallback", s
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")
        inst.stop()
        plain = {}  # sender -> the plaintext connection that carried its message
        for x in peer.connections:
            for cmd, t in x.commands:
                if cmd.upper().startswith("MAIL FROM:"):
                    assert t is False
                    plain[envelope_sender(cmd[10:])] = x
        assert set(plain) == {"alice@example.test", "carol@example.test"}, [x.commands for x in peer.connections]
        gap = plain["carol@example.test"].accepted - m2_failed
        assert gap >= 2.9, f"message 2 sent in plaintext {gap:.2f}s after its first failed handshake; the delay is 3s"


# --- SPEC §1.1: the fallback waits handshake_retry_delay from the FIRST failure --------------


def test_forced_retry_does_not_cut_the_handshake_retry_delay_short(make_instance, certs):
    """`postern queue retry` right after a failed handshake forces an attempt at once. Its
    handshake fails again, but the first failure is not handshake_retry_delay (3s) old: no
    plaintext yet - deferred again with the TLS reason, due when the delay has passed since
    the FIRST failure (the second does not push it back). That attempt falls back
    (tls=fallback). Before the fix the forced attempt went out in plaintext at once: the
    failure memory had no time, and the 3s relied on the recipient's next attempt only."""
    with first_failed_handshake(make_instance, certs, "forced retry") as (peer, inst, qid, first):
        assert first["dsn"].startswith("4."), first
        due = inst.queue_json("show", qid)["recipients"][0]["next_attempt"]

        r = inst.queue_cli("retry", qid)
        assert r.returncode == 0, r.stderr
        second = inst.wait_events("delivery", 2, id=qid)[1]
        assert second["attempt"] == "2", second
        assert second["result"] == "deferred" and second["tls"] != "fallback", \
            f"a forced retry fell back to plaintext before handshake_retry_delay: {second}"
        assert (second["dsn"], second["reason"]) == (first["dsn"], first["reason"]), (first, second)
        assert not peer.saw_mail_from(), peer.all_commands()
        assert len(peer.connections) == 2 and peer.connections[1].verbs() == ["EHLO", "STARTTLS"], \
            [x.commands for x in peer.connections]
        again = inst.queue_json("show", qid)["recipients"][0]
        assert again["next_attempt"] == due, f"the wait restarted at the second failure: {due} -> {again}"

        sent = inst.wait_events("delivery", 1, id=qid, result="sent", timeout=15)[0]
        assert sent["attempt"] == "3" and sent["tls"] == "fallback", sent
        plain = [x for x in peer.connections if "MAIL" in x.verbs()]
        assert len(plain) == 1 and all(t is False for _c, t in plain[0].commands), [x.commands for x in plain]
        gap = plain[0].accepted - peer.connections[0].accepted
        assert gap >= 2.9, f"plaintext {gap:.2f}s after the first failed handshake; the delay is 3s"


def test_other_domains_earlier_retry_does_not_cut_the_handshake_retry_delay_short(make_instance, certs):
    """a.test and b.test share one MX host. Pass 1: a.test's handshake fails (the host is
    recorded, a.test waits handshake_retry_delay, 5s); b.test's succeeds but RCPT gets 450
    (greylisting), so b.test is due again after retry_schedule[0], 2s. Then the handshake fails
    for b.test too: the host's first failure for this message is only 2s old, so b.test is
    deferred as well - until 5s after a.test's failure, when both fall back to plaintext. Before
    the fix b.test's failure found the host recorded and went out in plaintext after 2s.
    The peer closes idle sessions after 1s, so b.test's retry cannot reuse the TLS session of
    pass 1 (it connects, and its handshake breaks: connection 3)."""
    zones = {"a.test": "@ MX 10 mx.shared.test.\n", "b.test": "@ MX 10 mx.shared.test.\n",
             "shared.test": "mx A 127.0.0.2\n"}
    c = certs["named"]
    with DnsServer(zones=zones) as dns, \
            ScriptedPeer(host="127.0.0.2", tls_modes=["garbage", "ok", "garbage"], idle_timeout=1.0,
                         rcpt_codes={"carol@b.test": [450, 250]}, cert=c["cert"], key=c["key"]) as peer:
        extra = (f'[delivery]\nport = {peer.port}\n\n[dns]\nservers = ["{dns.address}"]\n\n'
                 '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n')
        inst = make_instance(extra=extra, tls_extra='handshake_retry_delay = "5s"',
                             queue_extra='retry_schedule = ["2s"]')
        qid = inst.send("alice@origin.test", ["bob@a.test", "carol@b.test"], "shared mx greylisted")

        first = {e["to"]: e for e in inst.wait_events("delivery", 2, id=qid)[:2]}
        assert first["<bob@a.test>"]["result"] == "deferred" and first["<bob@a.test>"]["tls"] == "none", first
        assert first["<carol@b.test>"]["result"] == "deferred", first
        assert first["<carol@b.test>"]["tls"] not in ("none", "fallback"), first  # refused over TLS
        assert first["<carol@b.test>"]["dsn"] == "4.1.1", first

        carol = inst.wait_events("delivery", 2, id=qid, to="<carol@b.test>", timeout=10)[1]
        assert carol["attempt"] == "2", carol
        assert carol["result"] == "deferred" and carol["tls"] != "fallback", \
            f"b.test fell back to plaintext before handshake_retry_delay after the host's first failure: {carol}"
        assert not any(cmd.upper().startswith("MAIL") and not t for cmd, t in peer.all_commands()), \
            [x.commands for x in peer.connections]

        for to in ("<bob@a.test>", "<carol@b.test>"):
            s = inst.wait_events("delivery", 1, id=qid, to=to, result="sent", timeout=15)[0]
            assert s["tls"] == "fallback", s
        first_plain = min(x.accepted for x in peer.connections
                          if any(cmd.upper().startswith("MAIL") and not t for cmd, t in x.commands))
        gap = first_plain - peer.connections[0].accepted
        assert gap >= 4.9, f"plaintext {gap:.2f}s after the host's first failed handshake; the delay is 5s"


@pytest.mark.parametrize("how", ["parked", "not parked"])
def test_a_tls_session_ends_with_quit_and_close_notify(make_instance, certs, how):
    """RFC 8446 6.1: each party MUST send a close_notify before closing its write side. A
    session parked for reuse and closed after its 5 s idle time, and one that may not be
    reused (the peer refused RSET after a refused recipient: the delivery closes it itself),
    both end with QUIT inside TLS and then the alert; before, the TCP connection was closed
    after the QUIT without it (the peer saw an EOF in violation of the protocol)."""
    c = certs["named"]
    rcpt = "bob@internal.test"
    kw = {"rcpt_codes": {rcpt: 550}, "rset_reply": "502 5.5.1 no RSET here"} if how == "not parked" else {}
    with ScriptedPeer(cert=c["cert"], key=c["key"], quit_reply=False, **kw) as peer:
        inst = instance_for(make_instance, peer, ca_file=c["ca"], queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@example.test", [rcpt], "close notify")
        ev = inst.wait_events("delivery", 1, id=qid, timeout=10)
        assert ev[0]["result"] == ("bounced" if how == "not parked" else "sent"), ev
        conn = peer.connections[0]
        wait_until(lambda: conn.closed_after_quit is not None, timeout=15, what="the session closed")
        assert conn.tls and conn.commands[-1] == ("QUIT", True), conn.commands
        if how == "not parked":
            assert "RSET" in conn.verbs(), conn.commands
        assert conn.close_notify is True, "closed without a TLS close_notify"
