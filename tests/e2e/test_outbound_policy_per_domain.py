"""tests/e2e/test_outbound_policy_per_domain.py - on a static route ([[route]], relay_to) one
message may carry recipients of several domains to one host; each recipient must be delivered
under the TLS policy resolved for ITS OWN domain with the facts of the host actually connected
(SPEC §1.4: recipient domain -> destination IP -> destination name -> "*"), and a transaction
never mixes recipients whose policies differ (SPEC §1.2: never plaintext under mandatory).

Judged by what the scripted peer saw (RCPT commands, messages, connections) and by the delivery
log lines and `postern queue show`:
- a "*" + recipient-domain mandatory profile beside an opportunistic host profile: the
  mandatory domain is never sent in plaintext, whatever the recipient order;
- a host-matched "ca+name" profile without peer_names: the certificate is checked against the
  names of each recipient's domain, not the first recipient's only;
- the trust logged (tls=verified / trusted) is the one of each recipient's own names, in a
  shared transaction and on a reused (parked) connection alike;
- the TLS reason (4.7.4) of a mandatory host is kept when the next host fails to connect.
"""
import re

import pytest

from conftest import free_port, relay_domain, route
from peers import ScriptedPeer, make_ca, make_cert

SENDER = "alice@sender.test"
RELAY_ANY = '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n'


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A trusted test CA and a leaf naming internal.test only (no IP SAN: the 127.0.0.1 relay
    name never matches)."""
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d)
    return {"ca": ca["ca"], "internal": make_cert(d, ca, names=("internal.test",), stem="internal")}


def rcpt_addresses(peer):
    return [c[8:].strip().strip("<>").split(">", 1)[0] for c, _ in peer.all_commands() if c.upper().startswith("RCPT TO:")]


def by_recipient(inst, qid, n):
    return {e["to"].strip("<>"): e for e in inst.wait_events("delivery", n, id=qid)}


# --- finding 1: a recipient-domain mandatory profile is not skipped by a host profile -------------


@pytest.mark.parametrize("order", ["other first", "bank first"])
def test_mandatory_recipient_domain_never_rides_an_opportunistic_transaction(make_instance, order):
    """Profile "strict" has hosts = ["*"] and recipient_domains = ["bank.test"] (mandatory,
    verify = "ca"); profile "relay" names the smarthost's IP (opportunistic). other.test falls to
    "relay" at the host, bank.test stays "strict". The smarthost offers no STARTTLS: other.test is
    delivered in plaintext, bank.test is deferred 4.7.4 and its RCPT never reaches the peer.
    Before the fix both were grouped by the profile name resolved without host facts and sent
    under the first recipient's policy: bank.test went out in plaintext ("other first")."""
    other, bank = "a@other.test", "b@bank.test"
    with ScriptedPeer(starttls=False) as peer:
        profiles = ('[[profile]]\nname = "strict"\nhosts = ["*"]\nrecipient_domains = ["bank.test"]\n'
                    '[profile.outbound]\ntls = "mandatory"\nverify = "ca"\n\n'
                    '[[profile]]\nname = "relay"\nhosts = ["127.0.0.1"]\nrelay = "any"\n'
                    '[profile.outbound]\ntls = "opportunistic"\n')
        inst = make_instance(extra=route("*", f"127.0.0.1:{peer.port}") + profiles,
                             queue_extra='retry_schedule = ["1h"]')
        rcpts = [other, bank] if order == "other first" else [bank, other]
        qid = inst.send(SENDER, rcpts, "bank and other")
        ev = by_recipient(inst, qid, 2)
        assert ev[other]["result"] == "sent" and ev[other]["profile"] == "relay", ev[other]
        assert ev[other]["tls"] == "none", ev[other]
        assert ev[bank]["result"] == "deferred" and ev[bank]["dsn"] == "4.7.4", ev[bank]
        assert ev[bank]["profile"] == "strict", ev[bank]
        assert re.search("TLS required but not offered", ev[bank]["reason"]), ev[bank]
        m = inst.queue_json("show", qid)
        status = {r["address"]: (r["status"], r["last_reply"][:5]) for r in m["recipients"]}
        assert status[bank] == ("deferred", "4.7.4"), m
        inst.stop()
        assert bank not in rcpt_addresses(peer), f"bank.test's RCPT reached a plaintext session: {peer.all_commands()}"
        assert [r for _f, r, _d, _t in peer.messages] == [[other]], peer.messages


# --- finding 2: a host-matched ca+name profile checks each recipient domain's names ----------------


@pytest.mark.parametrize("order", ["internal first", "second first"])
def test_host_matched_ca_name_checks_each_recipient_domain(make_instance, pki, order):
    """Profile "partner" is matched by the relay's IP (hosts = ["127.0.0.1"]), mandatory TLS,
    verify = "ca+name", no peer_names: the certificate must name the relay or the recipient's
    domain (SPEC §1.3). The peer's certificate names internal.test only, so carol@second.test is
    deferred 4.7.5 (name mismatch) and never sent, while bob@internal.test is delivered verified.
    Before the fix one transaction was checked against the first recipient's domain only."""
    internal, second = "bob@internal.test", "carol@second.test"
    c = pki["internal"]
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as peer:
        hosts = f"127.0.0.1:{peer.port}"
        profile = ('[[profile]]\nname = "partner"\nhosts = ["127.0.0.1"]\n'
                   '[profile.outbound]\ntls = "mandatory"\nverify = "ca+name"\n')
        inst = make_instance(domains=relay_domain("internal.test", hosts) + relay_domain("second.test", hosts),
                             tls_extra=f'ca_file = "{pki["ca"]}"\n', extra=profile,
                             queue_extra='retry_schedule = ["1h"]')
        rcpts = [internal, second] if order == "internal first" else [second, internal]
        qid = inst.send(SENDER, rcpts, "two domains, one relay")
        ev = by_recipient(inst, qid, 2)
        assert ev[internal]["result"] == "sent" and ev[internal]["tls"] == "verified", ev[internal]
        assert ev[second]["result"] == "deferred" and ev[second]["dsn"] == "4.7.5", ev[second]
        assert re.search(r"name", ev[second]["reason"], re.I), ev[second]
        assert ev[internal]["profile"] == ev[second]["profile"] == "partner"
        inst.stop()
        assert second not in rcpt_addresses(peer), peer.all_commands()
        assert [r for _f, r, _d, _t in peer.messages] == [[internal]], peer.messages


# --- finding 7: the logged trust is judged for each recipient's own names -------------------------


@pytest.mark.parametrize("how", ["reused connection", "one transaction"])
def test_logged_trust_is_judged_for_each_recipient_domain(make_instance, pki, how):
    """Opportunistic TLS (no profile): the certificate chains to the trusted CA and names
    internal.test only, so a fresh connection logs tls=verified for internal.test and
    tls=trusted for second.test (names: the relay, the recipient domain). The same must be
    logged when second.test's mail goes over the connection parked after internal.test's message
    (within 5 s), and when both share one transaction. Before the fix the reused connection and
    the shared transaction repeated internal.test's "verified"."""
    internal, second = "bob@internal.test", "carol@second.test"
    c = pki["internal"]
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as peer:
        hosts = f"127.0.0.1:{peer.port}"
        inst = make_instance(domains=relay_domain("internal.test", hosts) + relay_domain("second.test", hosts),
                             tls_extra=f'ca_file = "{pki["ca"]}"\n', queue_extra='retry_schedule = ["1h"]')
        if how == "reused connection":
            q1 = inst.send(SENDER, [internal], "first domain")
            first = inst.wait_events("delivery", 1, id=q1)[0]
            q2 = inst.send(SENDER, [second], "second domain")
            again = inst.wait_events("delivery", 1, id=q2)[0]
            # the premise: the second message went over the parked connection
            assert len(peer.connections) == 1, [conn.verbs() for conn in peer.connections]
        else:
            qid = inst.send(SENDER, [internal, second], "both domains")
            ev = by_recipient(inst, qid, 2)
            first, again = ev[internal], ev[second]
            assert len(peer.messages) == 1, peer.messages  # one transaction: names are not enforced
        assert first["result"] == "sent" and first["tls"] == "verified", first
        assert again["result"] == "sent" and again["tls"] == "trusted", again


# --- finding 8: the TLS reason of a mandatory host survives a later connect failure ---------------


def test_tls_reason_kept_when_the_next_host_refuses_the_connection(make_instance):
    """relay_to = [a peer without STARTTLS, a closed port], under a mandatory recipient-domain
    profile: the first host gives 4.7.4 (TLS required but not offered), the second 4.4.1
    (connection refused). SPEC §1.2: the recipient is deferred with the TLS reason, and `queue
    show` says so. Before the fix the last host's 4.4.1 replaced it."""
    rcpt = "bob@internal.test"
    closed = free_port()
    with ScriptedPeer(starttls=False) as peer:
        profile = ('[[profile]]\nname = "partner"\nrecipient_domains = ["internal.test"]\n'
                   '[profile.outbound]\ntls = "mandatory"\n')
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}", f"127.0.0.1:{closed}"),
                             extra=profile, queue_extra='retry_schedule = ["1h"]')
        qid = inst.send(SENDER, [rcpt], "primary without TLS, backup down")
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "deferred" and e["dsn"] == "4.7.4", e
        assert f"127.0.0.1[127.0.0.1]:{peer.port}" in e["reason"], e
        m = inst.queue_json("show", qid)
        assert m["recipients"][0]["status"] == "deferred", m
        assert m["recipients"][0]["last_reply"].startswith("4.7.4 TLS required but not offered"), m
        inst.stop()
        assert peer.wait_connections(1), "the first host was not tried"
        assert not peer.saw_mail_from(), peer.all_commands()
