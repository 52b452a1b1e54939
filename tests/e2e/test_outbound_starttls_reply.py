"""tests/e2e/test_outbound_starttls_reply.py - STARTTLS answered with a reply other than 220
(SPEC §1.1: a failed handshake is "STARTTLS answered with anything but 220, TLS alert, peer
closes, timeout during the handshake"; §1.2 for mandatory TLS).

Opportunistic TLS (deferred, then plaintext after tls.handshake_retry_delay) is tested with the
same replies in test_outbound_tls.py::test_failed_handshake_defers_then_falls_back. A
permanent-looking reply to STARTTLS (5xx: the peer has TLS configured wrong, or switched off
after advertising it) refuses the *TLS session*, not the recipient: it must never bounce the
message as a 5xx to RCPT or DATA would (§3.2), and nothing may be sent on that connection. A
250 is not 220 either: no handshake may follow it (the peer, still in plaintext, would read a
ClientHello as a command line, and the connection would not end EHLO, STARTTLS, QUIT).
Here, a mandatory profile for the recipient domain: deferred 4.7.x at every attempt, no MAIL
FROM ever, no fallback.
The scripted peer (peers.ScriptedPeer, tls_mode="refuse" with starttls_reply) keeps reading
commands in plaintext after its refusal, as a real server does, so the connection is usable:
Postern ends it with QUIT (RFC 5321 4.1.1.10).
"""
import pytest

from peers import ScriptedPeer, make_ca, make_cert
from test_mandatory_outbound import RCPT, SENDER, assert_no_mail, start
from test_outbound_tls import REFUSALS

# 5xx: refusals that look permanent; 250: a 2xx that is not 220 (no handshake may follow it)
REPLIES = [r for mode, r in REFUSALS.items() if mode != "refuse"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki-starttls-reply")
    ca = make_ca(d)
    return make_cert(d, ca, names=("internal.test",), stem="internal")


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
