"""tests/e2e/test_outbound_starttls_reply.py - STARTTLS answered with a reply other than 220
(SPEC §1.1: a failed handshake is "STARTTLS answered with anything but 220, TLS alert, peer
closes, timeout during the handshake"; §1.2 for mandatory TLS).

test_outbound_tls.py and test_mandatory_outbound.py feed only 454 (a temporary refusal). A
permanent-looking reply to STARTTLS (5xx: the peer has TLS configured wrong, or switched off
after advertising it) refuses the *TLS session*, not the recipient: it must never bounce the
message as a 5xx to RCPT or DATA would (§3.2), and nothing may be sent on that connection. A
250 is not 220 either: no handshake may follow it (the peer, still in plaintext, would read a
ClientHello as a command line, and the connection would not end EHLO, STARTTLS, QUIT).
- opportunistic (no profile): deferred, the retry no sooner than tls.handshake_retry_delay,
  then the second failure reconnects and delivers in plaintext (tls=fallback);
- mandatory profile for the recipient domain: deferred 4.7.x at every attempt, no MAIL FROM
  ever, no fallback.
The scripted peer (peers.ScriptedPeer, tls_mode="refuse" with starttls_reply) keeps reading
commands in plaintext after its refusal, as a real server does, so the connection is usable:
Postern ends it with QUIT (RFC 5321 4.1.1.10).
"""
import pytest

from conftest import relay_domain, wait_until
from peers import ScriptedPeer, envelope_sender, make_ca, make_cert
from test_mandatory_outbound import RCPT, SENDER, assert_no_mail, start

# 5xx: refusals that look permanent; 250: a 2xx that is not 220 (no handshake may follow it)
REPLIES = ["554 5.7.0 no TLS for you", "502 5.5.1 Command not implemented",
           "500 5.5.2 Syntax error, command unrecognized", "250 2.0.0 go ahead"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki-starttls-reply")
    ca = make_ca(d)
    return make_cert(d, ca, names=("internal.test",), stem="internal")


@pytest.mark.parametrize("reply", REPLIES)
def test_opportunistic_refused_starttls_defers_then_falls_back(make_instance, pki, reply):
    """No profile: a STARTTLS answered `reply` is a failed handshake - nothing sent, the
    recipient deferred (4.x.x, never bounced) although the reply was 5xx; the retry comes no
    sooner than handshake_retry_delay (2s, though retry_schedule says 1s), its failure
    reconnects at once without STARTTLS and delivers in plaintext (tls=fallback)."""
    with ScriptedPeer(tls_mode="refuse", starttls_reply=reply, cert=pki["cert"], key=pki["key"]) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             tls_extra=f'ca_file = "{pki["ca"]}"\nhandshake_retry_delay = "2s"',
                             queue_extra='retry_schedule = ["1s"]')
        qid = inst.send(SENDER, [RCPT], "starttls refused")

        first = inst.wait_events("delivery", 1, id=qid)[0]
        assert first["result"] == "deferred" and first["attempt"] == "1", first
        assert first["dsn"].startswith("4."), f"a 5xx to STARTTLS is not a 5xx for the recipient: {first}"
        assert first["tls"] != "fallback", first
        assert reply in first["reason"], f"the reason does not name the peer's reply: {first}"
        assert len(peer.connections) == 1
        assert "STARTTLS" in peer.connections[0].verbs()
        assert not peer.saw_mail_from(), peer.all_commands()

        msgs = peer.wait_messages(1, timeout=10)
        conns = peer.connections
        assert len(conns) == 3, [x.commands for x in conns]
        gap = conns[1].accepted - conns[0].accepted
        assert gap >= 2.0, f"retry after {gap:.2f}s, handshake_retry_delay is 2s"
        for x in conns[:2]:  # refused: nothing but EHLO, STARTTLS and the QUIT that ends it
            assert x.verbs() == ["EHLO", "STARTTLS", "QUIT"], x.commands
        assert conns[2].accepted - conns[1].accepted < 1.0
        assert "STARTTLS" not in conns[2].verbs(), conns[2].commands
        assert [t for cmd, t in conns[2].commands if cmd.upper().startswith("MAIL FROM")] == [False]
        mail_from, rcpts, data, tls = msgs[0]
        assert tls is False and envelope_sender(mail_from) == SENDER and rcpts == [RCPT]
        assert b"body of starttls refused" in data

        ev = inst.wait_events("delivery", 2, id=qid)
        assert len(ev) == 2, ev
        second = ev[1]
        assert second["result"] == "sent" and second["attempt"] == "2", second
        assert second["tls"] == "fallback" and second["proto"] == "-" and second["cipher"] == "-", second
        assert second["relay"] == f"127.0.0.1[127.0.0.1]:{peer.port}", second
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")
        assert inst.events("delivery", id=qid, result="bounced") == []


@pytest.mark.parametrize("reply", REPLIES)
def test_mandatory_refused_starttls_defers_and_never_falls_back(make_instance, pki, reply):
    """Profile "partner" (tls = "mandatory") for internal.test: a STARTTLS answered `reply`
    defers the recipient with 4.7.x at every attempt (three here, handshake_retry_delay 1s), the
    peer never sees MAIL FROM (in plaintext or otherwise), every connection is EHLO, STARTTLS,
    QUIT, and no attempt falls back or bounces (assert_no_mail)."""
    with ScriptedPeer(tls_mode="refuse", starttls_reply=reply, cert=pki["cert"], key=pki["key"]) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={"verify": "ca"}, ca=pki["ca"],
                     tls_extra='handshake_retry_delay = "1s"')
        qid = inst.send(SENDER, [RCPT], "mandatory starttls refused")
        first = inst.wait_events("delivery", 1, id=qid)[0]
        dsn = first["dsn"]
        assert dsn.startswith("4.7."), f"a refused STARTTLS under mandatory TLS must defer 4.7.x: {first}"
        assert reply in first["reason"], f"the reason does not name the peer's reply: {first}"
        ev = assert_no_mail(inst, peer, qid, dsn, attempts=3)
        assert [e["attempt"] for e in ev[:3]] == ["1", "2", "3"], ev
        assert all(e["relay"] == f"127.0.0.1[127.0.0.1]:{peer.port}" for e in ev), ev
        assert inst.events("delivery", id=qid, result="bounced") == []
        for c in peer.connections:
            assert c.verbs() == ["EHLO", "STARTTLS", "QUIT"], c.commands
