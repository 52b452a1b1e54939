"""tests/e2e/test_outbound_cert_checks.py - what a server certificate must be, outbound, with a
configured CA file (SPEC §1.3): fit for a TLS server (serverAuth EKU, or none) whichever store
decides, and named the way SPEC §1.3 says - an IP host (relay_to = ["127.0.0.1:port"]) by an
iPAddress SAN only, never by a dNSName spelling the address; the CN only when there is no SAN.

Judged by what the peer saw: a refused certificate gets no MAIL FROM on any attempt and the
recipient stays deferred with 4.7.5; an accepted one gets the message inside TLS.
Certificates come from the openssl CLI (peers.make_ca / make_cert).
"""
import re

import pytest

from conftest import relay_domain, wait_until
from peers import ScriptedPeer, make_ca, make_cert

RCPT = "bob@internal.test"
SENDER = "alice@sender.test"
FORBIDDEN = {"MAIL", "RCPT", "DATA", "BDAT"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d)
    other_ca = make_ca(d, cn="Untrusted Other CA", stem="other-ca")
    c = {"ca": ca["ca"], "other_ca": other_ca["ca"]}
    # the purpose: the same names, different EKUs
    c["server_auth"] = make_cert(d, ca, names=("internal.test",), stem="server-auth")
    c["no_eku"] = make_cert(d, ca, names=("internal.test",), stem="no-eku", eku=None)
    c["client_auth"] = make_cert(d, ca, names=("internal.test",), stem="client-auth", eku="clientAuth")
    c["email"] = make_cert(d, ca, names=("internal.test",), stem="email", eku="emailProtection")
    # the names: the relay is 127.0.0.1, the recipient domain internal.test
    c["ip_san"] = make_cert(d, ca, names=(), ip="127.0.0.1", cn="other.test", stem="ip-san")
    c["ip_as_dns"] = make_cert(d, ca, names=("127.0.0.1",), cn="other.test", stem="ip-as-dns")
    c["ip_san_cn"] = make_cert(d, ca, names=(), ip="192.0.2.1", cn="internal.test", stem="ip-san-cn")
    c["cn_only"] = make_cert(d, ca, names=(), cn="internal.test", stem="cn-only")
    return c


def start(make_instance, peer, outbound=None, ca=None, match="domain"):
    """internal.test relayed to the peer at 127.0.0.1; tls.ca_file = `ca`; with `outbound`, a
    mandatory profile "partner" matched by recipient domain or (match="host") by 127.0.0.1."""
    x = ""
    if outbound is not None:
        m = 'recipient_domains = ["internal.test"]' if match == "domain" else 'hosts = ["127.0.0.1"]'
        x = f'[[profile]]\nname = "partner"\n{m}\n\n[profile.outbound]\ntls = "mandatory"\n'
        x += "".join(f'{k} = "{v}"\n' for k, v in outbound.items())
    return make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                         tls_extra=f'ca_file = "{ca}"\n' if ca else "",
                         queue_extra='retry_schedule = ["1s"]', extra=x)


def assert_delivered(inst, peer, qid, trust):
    msgs = peer.wait_messages(1, timeout=10)
    assert msgs[0][3] is True, "the message must travel inside TLS"
    e = inst.wait_events("delivery", 1, id=qid)[0]
    assert e["result"] == "sent" and e["attempt"] == "1", e
    assert e["tls"] == trust, e
    wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")
    return e


def assert_refused(inst, peer, qid, reason, attempts=2):
    ev = inst.wait_events("delivery", attempts, id=qid, timeout=6.0 + 2.0 * attempts)
    for e in ev:
        assert e["result"] == "deferred" and e["dsn"] == "4.7.5", e
        assert e["profile"] == "partner", e
        assert re.search(reason, e["reason"]), f"reason does not match /{reason}/: {e}"
    m = [x for x in inst.queue_json("list") if x["id"] == qid][0]
    assert [r["status"] for r in m["recipients"]] == ["deferred"], m
    inst.stop()
    assert not peer.saw_mail_from(), peer.all_commands()
    assert peer.messages == []
    for c in peer.connections:
        assert not FORBIDDEN & set(c.verbs()), c.commands
    return ev


# --- the purpose: a server certificate, whichever CA file decides ---------------------------------


@pytest.mark.parametrize("cert,ok", [
    ("server_auth", True),
    ("no_eku", True),         # no EKU extension: any purpose
    ("client_auth", False),   # a client certificate is not a server certificate
    ("email", False),
])
@pytest.mark.parametrize("where", ["tls", "profile"])
def test_verify_ca_requires_a_server_certificate(make_instance, pki, cert, ok, where):
    """tls.ca_file, or the profile's ca_file (tls.ca_file then trusts another CA only): both
    check the TLS server purpose, as OpenSSL's handshake does with the system store."""
    outbound = {"verify": "ca"}
    ca = pki["ca"]
    if where == "profile":
        ca, outbound["ca_file"] = pki["other_ca"], pki["ca"]
    c = pki[cert]
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as peer:
        inst = start(make_instance, peer, outbound=outbound, ca=ca)
        qid = inst.send(SENDER, [RCPT], f"purpose {cert} {where}")
        if ok:  # "ca" does not enforce names, but the log still says one matched
            assert_delivered(inst, peer, qid, "verified")
        else:
            assert_refused(inst, peer, qid, r"certificate verification failed: unsuitable certificate purpose")


# --- the names: an IP relay, and the CN ------------------------------------------------------------


@pytest.mark.parametrize("cert,ok", [
    ("ip_san", True),       # SAN IP:127.0.0.1 names the relay 127.0.0.1
    ("ip_as_dns", False),   # SAN DNS:127.0.0.1 is no IP identity
    ("ip_san_cn", False),   # CN=internal.test beside a SAN (IP only): the CN is not a name
    ("cn_only", True),      # no SAN at all: the CN is the name
])
@pytest.mark.parametrize("match", ["domain", "host"])
def test_verify_ca_name_ip_relay(make_instance, pki, cert, ok, match):
    """verify = "ca+name" without peer_names: the names are the relay host 127.0.0.1 and the
    recipient domain internal.test."""
    c = pki[cert]
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as peer:
        inst = start(make_instance, peer, outbound={"verify": "ca+name"}, ca=pki["ca"], match=match)
        qid = inst.send(SENDER, [RCPT], f"names {cert} {match}")
        if ok:
            assert_delivered(inst, peer, qid, "verified")
        else:
            assert_refused(inst, peer, qid, r"certificate name mismatch: expected 127\.0\.0\.1 or internal\.test")


@pytest.mark.parametrize("cert,trust", [("ip_san", "verified"), ("ip_as_dns", "trusted"),
                                        ("ip_san_cn", "trusted"), ("cn_only", "verified")])
def test_opportunistic_log_uses_the_same_name_rules(make_instance, pki, cert, trust):
    """No profile: the mail goes either way; the log's tls= says whether a name matched."""
    c = pki[cert]
    with ScriptedPeer(cert=c["cert"], key=c["key"]) as peer:
        inst = start(make_instance, peer, ca=pki["ca"])
        qid = inst.send(SENDER, [RCPT], f"opportunistic {cert}")
        e = assert_delivered(inst, peer, qid, trust)
        assert e["profile"] == "-", e
