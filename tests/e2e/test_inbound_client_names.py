"""tests/e2e/test_inbound_client_names.py - inbound profiles matched by the client's host name
(SPEC §1.4: "client host name (forward-confirmed reverse DNS; exact, then wildcard)").

A real DNS server (NSD, dns_server.py) serves the reverse zone 0.0.127.in-addr.arpa and the
forward zone partner.test; Postern resolves through it (`[dns] servers`). Clients bind to
127.0.0.x source addresses:
  127.0.0.5  PTR client.partner.test, which has A 127.0.0.5: confirmed
  127.0.0.6  PTR liar.partner.test, which points elsewhere: NOT confirmed, no name
  127.0.0.7  no PTR at all
  127.0.0.8, .9, .10  only malformed PTR names (a space, 8-bit octets, the root "."): no name
Every refusal is checked on the wire and by nothing being stored. The Received: header of
what is stored names the client host when, and only when, its name was confirmed."""
import re

import pytest

from conftest import RawSMTP
from dns_server import DnsServer
from peers import ScriptedPeer, envelope_sender

BODY = b"Subject: client names\r\n\r\nhello\r\n"

ZONES = {
    "0.0.127.in-addr.arpa": "5 PTR client.partner.test.\n6 PTR liar.partner.test.\n"
                            "8 PTR bad\\032name.partner.test.\n9 PTR \\200\\201.partner.test.\n10 PTR .\n",
    "partner.test": "client A 127.0.0.5\nliar A 127.0.0.99\n",
}


@pytest.fixture(scope="module")
def dns():
    with DnsServer(zones=ZONES) as d:
        yield d


def dns_config(port):
    return f'[dns]\nservers = ["127.0.0.1:{port}"]\n'


def profile(name, hosts, inbound='tls = "mandatory"', relay=None):
    p = f'[[profile]]\nname = "{name}"\nhosts = [' + ", ".join(f'"{h}"' for h in hosts) + "]\n"
    if relay:
        p += f'relay = "{relay}"\n'
    return p + f"[profile.inbound]\n{inbound}\n"


def nothing_stored(inst):
    return inst.spool_files("queue") == [] and inst.maildir_messages("bob") == []


def received_client(msg):
    """"NAME [IP]" from our Received: header ("Received: from HELO (NAME [IP])")."""
    m = re.search(rb"^Received: from \S+ \(([^)]*)\)\n", msg, re.M)
    assert m, msg[:300]
    return m.group(1).decode()


def must_starttls(c):
    r = c.cmd("MAIL FROM:<a@example.test>")
    assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), r


def test_wildcard_name_profile_applies_to_a_confirmed_name_only(make_instance, dns):
    inst = make_instance(extra=dns_config(dns.port) + profile("names", ["*.partner.test"]))
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        assert "STARTTLS" in c.ehlo().text
        must_starttls(c)
        c.starttls()
        c.ehlo()
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    assert len(inst.wait_maildir("bob")) == 1
    e = inst.wait_events("connect", client_name="client.partner.test")[0]
    assert e["profile"] == "names" and e["tls_policy"] == "encrypt" and e["tls"] == "none", e
    # the TLS session of that client: profile and verdict on the tls line
    t = inst.wait_events("tls", session=e["session"])[0]
    assert t["profile"] == "names" and t["tls"] == "untrusted", t

    # 127.0.0.6 claims liar.partner.test in its reverse zone, but the name points elsewhere:
    # not confirmed, so the profile does not apply, and plaintext mail is accepted
    for source in ("127.0.0.6", "127.0.0.7"):
        with RawSMTP(inst.host, inst.port, source=source) as c:
            c.ehlo()
            assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    assert len(inst.wait_maildir("bob", count=3)) == 3
    conns = [e for e in inst.events("connect") if e["client"].startswith(("127.0.0.6:", "127.0.0.7:"))]
    assert len(conns) == 2 and all(e["client_name"] == "unknown" and e["profile"] == "-" for e in conns), conns
    # the stored Received: header names the client host only when its name was confirmed
    assert sorted(received_client(m) for m in inst.maildir_messages("bob")) == [
        "client.partner.test [127.0.0.5]", "unknown [127.0.0.6]", "unknown [127.0.0.7]"]


def test_exact_name_beats_wildcard_and_ip_beats_name(make_instance, dns):
    # exact name -> "exact" (tls none: STARTTLS not even offered); the wildcard would require TLS
    extra = profile("wild", ["*.partner.test"]) + profile("exact", ["client.partner.test"], 'tls = "none"')
    inst = make_instance(extra=dns_config(dns.port) + extra)
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        assert "STARTTLS" not in c.ehlo().text
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    e = inst.wait_events("connect", client_name="client.partner.test")[0]
    assert e["profile"] == "exact", e

    # the client's IP address comes before its name: no name lookup is even needed
    extra = profile("names", ["client.partner.test"]) + profile("byip", ["127.0.0.5"], 'tls = "none"')
    inst2 = make_instance(extra=dns_config(dns.port) + extra)
    with RawSMTP(inst2.host, inst2.port, source="127.0.0.5") as c:
        assert "STARTTLS" not in c.ehlo().text
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    e = inst2.wait_events("connect", profile="byip")[0]
    assert e["client_name"] == "unknown", e  # not looked up
    assert [received_client(m) for m in inst.wait_maildir("bob")] == ["client.partner.test [127.0.0.5]"]
    assert [received_client(m) for m in inst2.wait_maildir("bob")] == ["unknown [127.0.0.5]"]


def test_name_profile_grants_relay(make_instance, dns):
    with ScriptedPeer(starttls=False) as peer:
        extra = (dns_config(dns.port) + profile("names", ["client.partner.test"], 'tls = "opportunistic"', relay="any")
                 + f'\n[[route]]\ndomain = "remote.test"\nhosts = ["127.0.0.1:{peer.port}"]\n')
        inst = make_instance(extra=extra)
        with RawSMTP(inst.host, inst.port, source="127.0.0.6") as c:  # unconfirmed name: no relay
            c.ehlo()
            c.expect("MAIL FROM:<a@example.test>", 250)
            r = c.cmd("RCPT TO:<x@remote.test>")
            assert r.code == 554 and r.last.startswith("5.7.1") and "Relay access denied" in r.text, r
        with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
            c.ehlo()
            assert c.send_mail("a@example.test", ["x@remote.test"], BODY).code == 250
        peer.wait_messages(1)
        assert [envelope_sender(m) for m, _tls in peer.mail_froms()] == ["a@example.test"]


def test_a_malformed_ptr_name_is_no_name_not_a_dns_failure(make_instance, dns):
    """PTR records whose every name is malformed (a space, 8-bit octets, the root) will not get
    better by asking again: like Postfix, the client has no name (the default profile), never
    a temporary failure. Before, it was "temporary", and under a mandatory name profile such a
    client got 451 4.4.3 to every command, forever."""
    inst = make_instance(extra=dns_config(dns.port) + profile("names", ["*.partner.test"]))
    for source in ("127.0.0.8", "127.0.0.9", "127.0.0.10"):
        with RawSMTP(inst.host, inst.port, source=source) as c:
            r = c.ehlo()
            assert r.code == 250, (source, r)
            assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250, source
    assert len(inst.wait_maildir("bob", 3)) == 3
    ev = [e for e in inst.events("connect") if e["client"].startswith(("127.0.0.8:", "127.0.0.9:", "127.0.0.10:"))]
    assert len(ev) == 3 and all(e["client_name"] == "unknown" and e["profile"] != "names" for e in ev), ev
    assert not inst.events("reject")


def test_dns_failure_never_lets_a_name_profile_client_in_without_tls(make_instance):
    # dns.servers points at a port where nothing answers: the name cannot be confirmed for now.
    # A mandatory profile matched by name might apply, so the client is told to come back later
    # (451 4.4.3) rather than being let in under the weaker default.
    with DnsServer(zones=ZONES) as d:
        port = d.port
    inst = make_instance(start=False, extra=dns_config(port) + profile("names", ["*.partner.test"]))
    inst.start(wait=False)  # the usual readiness probe would wait out the DNS timeout too
    inst.wait_log(" start ")
    with RawSMTP(inst.host, inst.port, source="127.0.0.5", timeout=40) as c:
        r = c.cmd("EHLO client.test", timeout=40)
        assert r.code == 451 and r.last.startswith("4.4.3"), r
        for cmd in ("MAIL FROM:<a@example.test>", "RCPT TO:<bob@localhost>", "DATA"):
            r = c.cmd(cmd)
            assert r.code == 451 and r.last.startswith("4.4.3"), (cmd, r)
        assert c.cmd("QUIT").code == 221
    assert nothing_stored(inst)
    e = inst.wait_events("reject")[0]
    assert "host name lookup failed" in e["reply"], e


def test_connect_line_names_the_clients_own_address_and_the_listening_port(make_instance):
    """The `connect` line's client address and port are what the client's own socket is bound
    to (taken from accept(2)), and `local` is the port the client connected to (the listener's),
    for clients on two different source addresses."""
    inst = make_instance()
    for source in ("127.0.0.8", "127.0.0.9"):
        c = RawSMTP(inst.host, inst.port, source=source)
        try:
            ip, port = c.sock.getsockname()[:2]
            e = inst.wait_events("connect", client=f"{ip}:{port}")[0]
            assert ip == source and e["local"] == str(inst.port), e
            assert c.cmd("QUIT").code == 221
        finally:
            c.close()
