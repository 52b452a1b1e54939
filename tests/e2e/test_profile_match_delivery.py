"""tests/e2e/test_profile_match_delivery.py - outbound profile selection by pattern, proven by
delivery (SPEC §1.2, §1.4).

A mandatory-TLS [[profile]] "partner" is selected by
- a wildcard recipient domain (recipient_domains = ["*.partner.test"]),
- a CIDR block or a trailing-wildcard IPv4 covering the destination address,
- a wildcard host name matched against the name of a real MX record (mx.gateway.test, from a
  test NSD: dns_server.py), not a relay_to name,
and the peer cannot meet it (no STARTTLS, or a self-signed certificate under verify = "ca"):
the peer never sees MAIL FROM and the recipient is deferred 4.7.4 / 4.7.5 naming the relay
(test_mandatory_outbound.assert_no_mail). Each case has a control with the same peer and an
entry that does not match (or no profile): the message arrives in plaintext, profile "-", so
a refusal above is the match's doing and nothing else's.
"""
import pytest

from conftest import relay_domain
from dns_server import DnsServer
from peers import ScriptedPeer, make_cert
from test_mandatory_outbound import RETRY, SENDER, assert_no_mail, profile_toml

NOT_OFFERED = "TLS required but not offered"
MX = "127.0.0.2"  # mx.gateway.test
ZONES = {
    "hosts.test": "@ MX 10 mx.gateway.test.\n",
    "gateway.test": "mx A 127.0.0.2\n",
}


@pytest.fixture(scope="module")
def dns():
    with DnsServer(zones=ZONES) as d:
        yield d


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("pki"), None, names=("mx.gateway.test", "hosts.test"), stem="self")


def assert_plaintext_delivered(inst, peer, qid, rcpt):
    """The control: no profile applies, so the peer without STARTTLS gets the message in
    plaintext at the first attempt."""
    msgs = peer.wait_messages(1, timeout=10)
    assert len(msgs) == 1 and msgs[0][1] == [rcpt] and msgs[0][3] is False, msgs
    e = inst.wait_events("delivery", 1, id=qid)[0]
    assert e["result"] == "sent" and e["attempt"] == "1", e
    assert e["profile"] == "-" and e["tls"] == "none", e
    return e


@pytest.mark.parametrize("domain,matched", [
    ("a.partner.test", True),
    ("a.b.partner.test", True),   # one or more labels in front (README: like Postfix's .partner.test)
    ("partner.test", False),      # never the parent itself
    ("other.test", False),
])
def test_wildcard_recipient_domain(make_instance, domain, matched):
    """recipient_domains = ["*.partner.test"], tls = "mandatory": mail for a domain below
    partner.test, relayed to a peer without STARTTLS, is deferred 4.7.4 and the peer sees no
    MAIL; partner.test itself and another domain go through in plaintext."""
    with ScriptedPeer(starttls=False) as peer:
        inst = make_instance(domains=relay_domain(domain, f"127.0.0.1:{peer.port}"), queue_extra=RETRY,
                             extra=profile_toml(domains=("*.partner.test",)))
        rcpt = f"bob@{domain}"
        qid = inst.send(SENDER, [rcpt], f"wildcard recipient {domain}")
        if matched:
            assert_no_mail(inst, peer, qid, "4.7.4", reason=NOT_OFFERED,
                           relay_in_reason=f"127.0.0.1[127.0.0.1]:{peer.port}")
        else:
            assert_plaintext_delivered(inst, peer, qid, rcpt)


@pytest.mark.parametrize("entry,matched", [
    ("127.0.0.0/24", True),
    ("127.0.0.*", True),
    ("127.0.1.0/24", False),
    ("127.0.1.*", False),
])
def test_destination_ip_block(make_instance, entry, matched):
    """hosts = [a CIDR block or a trailing-wildcard IPv4], tls = "mandatory": the relay host
    127.0.0.1 inside the block, offering no STARTTLS, gets no mail (4.7.4); a block that does
    not contain it leaves the mail to opportunistic TLS (plaintext here)."""
    rcpt = "bob@internal.test"
    with ScriptedPeer(starttls=False) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"), queue_extra=RETRY,
                             extra=profile_toml(hosts=[entry]))
        qid = inst.send(SENDER, [rcpt], f"destination block {entry}")
        if matched:
            relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
            for e in assert_no_mail(inst, peer, qid, "4.7.4", reason=NOT_OFFERED, relay_in_reason=relay):
                assert e["relay"] == relay, e
        else:
            assert_plaintext_delivered(inst, peer, qid, rcpt)


@pytest.mark.parametrize("entry,peer_kind,matched", [
    ("*.gateway.test", "no-starttls", True),
    ("*.gateway.test", "self-signed", True),
    (None, "no-starttls", False),                 # no profile for the host at all
    ("*.mx.gateway.test", "no-starttls", False),  # needs a label in front of mx.gateway.test
    ("gateway.test", "no-starttls", False),       # the parent's name, not the MX host's
])
def test_wildcard_host_matches_the_mx_host_name(make_instance, dns, self_signed, entry, peer_kind, matched):
    """hosts.test has no profile of its own; its MX record names mx.gateway.test (127.0.0.2).
    A profile hosts = ["*.gateway.test"], tls = "mandatory", verify = "ca" must hold for the
    mail sent there: a peer without STARTTLS gets no mail (4.7.4), nor does a self-signed one
    (4.7.5), each reason naming mx.gateway.test[127.0.0.2]. Without the profile, or with an
    entry that does not cover mx.gateway.test, the same peer takes the message in plaintext.
    Mail to hosts.test is relayed for the test client through a relay = "any" profile for
    127.0.0.1 (the destination, 127.0.0.2, is not in it)."""
    kw = {"cert": self_signed["cert"], "key": self_signed["key"]} if peer_kind == "self-signed" else {"starttls": False}
    with ScriptedPeer(host=MX, **kw) as peer:
        extra = (f'[delivery]\nport = {peer.port}\n\n[dns]\nservers = ["{dns.address}"]\n\n'
                 '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n\n')
        if entry:
            extra += profile_toml(hosts=[entry], verify="ca")
        inst = make_instance(extra=extra, queue_extra=RETRY)
        rcpt = "bob@hosts.test"
        qid = inst.send(SENDER, [rcpt], f"mx host {entry} {peer_kind}")
        relay = f"mx.gateway.test[{MX}]:{peer.port}"
        if not matched:
            e = assert_plaintext_delivered(inst, peer, qid, rcpt)
            assert e["relay"] == relay, e
            return
        if peer_kind == "self-signed":
            ev = assert_no_mail(inst, peer, qid, "4.7.5", reason=r"certif|verif|self|trust|issuer",
                                relay_in_reason=relay)
        else:
            ev = assert_no_mail(inst, peer, qid, "4.7.4", reason=NOT_OFFERED, relay_in_reason=relay)
        for e in ev:
            assert e["relay"] == relay, e
