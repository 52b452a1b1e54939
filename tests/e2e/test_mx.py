"""tests/e2e/test_mx.py - MX routing (SPEC §3.3) against a real DNS server (NSD, dns_server.py).

Postern resolves through `dns.servers` = the test's NSD and delivers on `delivery.port`, where
scripted peers listen on 127.0.0.2 and 127.0.0.3 (one port, several MX hosts).

Two ways to make Postern deliver to an MX host:
- "bounce": alice@DOMAIN sends to a hosted recipient whose internal server refuses it with 550;
  the DSN (MAIL FROM:<>) goes to alice@DOMAIN through DOMAIN's MX records. Works today.
- "relay": a [[profile]] with relay = "any" for 127.0.0.1 (SPEC §1.4) lets the test client send
  to bob@DOMAIN directly. Never skipped: profiles are part of the contract, and a build that
  rejected them must fail these tests, not hide them.
"""
import contextlib
import re
import signal
import socket
import time

import pytest

from conftest import relay_domain, render_config, route, wait_until
from dns_server import DnsServer
from peers import ScriptedPeer, envelope_sender, make_test_ca

A, B, DEAD = "127.0.0.2", "127.0.0.3", "127.0.0.4"  # nothing ever listens on DEAD

ZONES = {
    # MX 20 written first: the order in the zone must not matter, the preference does
    "pref.test": "@ MX 20 mxb\n@ MX 10 mxa\nmxa A 127.0.0.2\nmxb A 127.0.0.3\n",
    "next.test": "@ MX 10 mxa\n@ MX 20 mxb\nmxa A 127.0.0.4\nmxb A 127.0.0.3\n",
    "busy.test": "@ MX 10 mxa\n@ MX 20 mxb\nmxa A 127.0.0.2\nmxb A 127.0.0.3\n",
    "implicit.test": "@ A 127.0.0.2\n",
    "nullmx.test": "@ MX 0 .\n",
    "tls.test": "@ MX 10 mxa\nmxa A 127.0.0.2\n",
    # mandatory TLS: MX 10 offers no STARTTLS, MX 20 does
    "mtls.test": "@ MX 10 mxa\n@ MX 20 mxb\nmxa A 127.0.0.2\nmxb A 127.0.0.3\n",
    # Postern's own name (conftest: hostname = mx.postern.test) as an MX host (RFC 5321 5.1)
    "postern.test": "mx A 127.0.0.2\n",
    "self.test": "@ MX 10 mx.postern.test.\n@ MX 20 mxb\nmxb A 127.0.0.3\n",
    # an MX host at the address the test instance listens on (its delivery.port = its own)
    "loopaddr.test": "@ MX 10 mxa\nmxa A 127.0.0.1\n",
    "backup.test": "@ MX 10 mxb\n@ MX 20 mx.postern.test.\nmxb A 127.0.0.3\n",
    # an MX host at the unspecified address (a connection to it reaches 127.0.0.1); a backup MX
    # (Postern) whose primary does not exist (NXDOMAIN)
    "zero.test": "@ MX 10 z\nz A 0.0.0.0\n",
    "backupnx.test": "@ MX 10 gone\n@ MX 20 mx.postern.test.\n",
    # no host at all: no MX and no address; MX hosts that do not exist
    "nohost.test": '@ TXT "x"\n',
    "deadmx.test": "@ MX 10 nowhere\n@ MX 20 nothere\n",
    # an MX host whose lookup fails (the test's NSD refuses names outside its zones)
    "lookupfail.test": "@ MX 10 nowhere\n@ MX 20 mx.elsewhere.test.\n",
    # no usable MX host: every MX host an IP address, every MX record malformed (a space)
    "literalmx.test": "@ MX 10 127.0.0.2.\n@ MX 20 127.0.0.3.\n",
    "badmx.test": "@ MX 10 bad\\032name.badmx.test.\n",
    # seven addresses that greet 421 (MX 10), then a good host (MX 20): the address limit
    "manyaddr.test": "@ MX 10 busy\n@ MX 20 good\n" + "".join(f"busy A 127.0.0.{i}\n" for i in range(11, 18))
                     + "good A 127.0.0.3\n",
    # seven MX names on one address that greets 421, then a good host: each name is a try
    "onebusy.test": "".join(f"@ MX 10 n{i}\nn{i} A 127.0.0.11\n" for i in range(1, 8)) + "@ MX 20 good\ngood A 127.0.0.3\n",
    # three MX hosts that answer 451 to RCPT (greylisting): the session limit
    "greyfarm.test": "@ MX 10 g1\n@ MX 20 g2\n@ MX 30 g3\ng1 A 127.0.0.11\ng2 A 127.0.0.12\ng3 A 127.0.0.13\n",
}
MANY = [f"127.0.0.{i}" for i in range(11, 18)]


@contextlib.contextmanager
def running(*peers):
    """Every peer started for the block, and stopped after it."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(p) for p in peers]


def shared_port(hosts=(A, B, DEAD)):
    """A TCP port free on every one of `hosts`."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
            ok = True
            for h in hosts[1:]:
                with socket.socket() as t:
                    try:
                        t.bind((h, port))
                    except OSError:
                        ok = False
                        break
            if ok:
                return port
    raise RuntimeError("no port free on all of " + ", ".join(hosts))


@pytest.fixture(scope="module")
def dns():
    with DnsServer(zones=ZONES) as d:
        yield d


@pytest.fixture(scope="module")
def mx_port():
    return shared_port()


@pytest.fixture(params=["bounce", "relay"])
def mode(request):
    return request.param


class Setup:
    """A running instance for one test, and how to make it send mail to DOMAIN's MX hosts."""

    def __init__(self, make_instance, dns, mx_port, mode, origin_port=None, tls_extra="", extra=""):
        self.mode = mode
        self.internal = ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": 550}).__enter__()
        extra = f'[delivery]\nport = {mx_port}\n\n[dns]\nservers = ["{dns.address}"]\n\n' + extra
        if origin_port:  # where bounces for alice@origin.test go (relay mode)
            extra += route("origin.test", f"127.0.0.1:{origin_port}") + "\n"
        if mode == "relay":
            extra += '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n'
        self.inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{self.internal.port}"),
                                  extra=extra, queue_extra='retry_schedule = ["1h"]', tls_extra=tls_extra)

    def close(self):
        self.internal.__exit__()

    def send_to(self, domain, subject):
        """Makes Postern deliver a message to DOMAIN; returns the address the MX hosts get."""
        if self.mode == "bounce":
            self.inst.send(f"alice@{domain}", ["bob@internal.test"], subject)
            return f"alice@{domain}"
        self.inst.send("alice@origin.test", [f"bob@{domain}"], subject)
        return f"bob@{domain}"

    def mx_event(self, rcpt, count=1, timeout=10.0):
        return self.inst.wait_events("delivery", count, timeout=timeout, to=f"<{rcpt}>")

    def check_arrived(self, peer, rcpt):
        msgs = peer.wait_messages(1, timeout=10)
        assert len(msgs) == 1
        mail_from, rcpts, _data, _tls = msgs[0]
        assert rcpts == [rcpt]
        if self.mode == "bounce":
            assert envelope_sender(mail_from) == "", "a DSN has the null reverse-path"
        else:
            assert envelope_sender(mail_from) == "alice@origin.test"


@pytest.fixture
def setup(make_instance, dns, mx_port, mode):
    s = Setup(make_instance, dns, mx_port, mode)
    yield s
    s.close()


def queue_empty(inst):
    return inst.spool_files("queue") == [] and inst.queue_json("list") == []


@pytest.mark.parametrize("domain,best", [("pref.test", "mxa"), ("backup.test", "mxb")])
def test_preference_order(setup, mx_port, domain, best):
    """MX 10 takes the message; MX 20 is never tried. backup.test: Postern itself (its
    hostname) is MX 20 there, a backup MX below another host, which RFC 5321 5.1 keeps."""
    with ScriptedPeer(host=A, port=mx_port, starttls=False) as a, \
            ScriptedPeer(host=B, port=mx_port, starttls=False) as b:
        first, other, ip = (a, b, A) if best == "mxa" else (b, a, B)
        rcpt = setup.send_to(domain, "preference")
        setup.check_arrived(first, rcpt)
        e = setup.mx_event(rcpt)[0]
        assert e["result"] == "sent" and e["attempt"] == "1", e
        assert e["relay"] == f"{best}.{domain}[{ip}]:{mx_port}", e
        time.sleep(0.2)
        assert other.connections == [], "MX 20 must not be tried when MX 10 takes the message"
        wait_until(lambda: queue_empty(setup.inst), what="queue empty")


@pytest.mark.parametrize("failure", ["refused", "greets-421"])
def test_next_mx_on_failure(setup, mx_port, failure):
    """MX 10 unreachable (nothing listens on its address) or answering 421: MX 20 gets the
    message in the same attempt."""
    domain = "next.test" if failure == "refused" else "busy.test"
    busy = ScriptedPeer(host=A, port=mx_port, starttls=False, greeting_codes=(421,)) if failure == "greets-421" else None
    try:
        if busy:
            busy.__enter__()
        with ScriptedPeer(host=B, port=mx_port, starttls=False) as b:
            rcpt = setup.send_to(domain, f"next mx {failure}")
            setup.check_arrived(b, rcpt)
            ev = setup.mx_event(rcpt)
            time.sleep(0.2)
            ev = setup.inst.events("delivery", to=f"<{rcpt}>")
            assert len(ev) == 1, ev
            assert ev[0]["result"] == "sent" and ev[0]["attempt"] == "1", ev
            assert ev[0]["relay"] == f"mxb.{domain}[{B}]:{mx_port}", ev
            if busy:
                assert len(busy.connections) == 1 and not busy.saw_mail_from()
            wait_until(lambda: queue_empty(setup.inst), what="queue empty")
    finally:
        if busy:
            busy.__exit__()


def test_implicit_mx(setup, mx_port):
    """No MX records: the domain's own A record is the host (RFC 5321 5.1)."""
    with ScriptedPeer(host=A, port=mx_port, starttls=False) as a:
        rcpt = setup.send_to("implicit.test", "implicit")
        setup.check_arrived(a, rcpt)
        e = setup.mx_event(rcpt)[0]
        assert e["result"] == "sent", e
        assert e["relay"] == f"implicit.test[{A}]:{mx_port}", e
        wait_until(lambda: queue_empty(setup.inst), what="queue empty")


def test_null_mx_bounces_bounce_path(make_instance, dns, mx_port):
    """The DSN to a sender whose domain has a null MX (RFC 7505) fails with 5.1.10 and is not
    re-bounced (it has the null sender); the queue ends empty."""
    s = Setup(make_instance, dns, mx_port, "bounce")
    try:
        with ScriptedPeer(host=A, port=mx_port, starttls=False) as a:
            s.inst.send("alice@nullmx.test", ["bob@internal.test"], "null mx")
            orig = s.inst.wait_events("delivery", 1, to="<bob@internal.test>")[0]
            assert orig["result"] == "bounced" and orig["dsn"] == "5.1.1", orig
            e = s.mx_event("alice@nullmx.test")[0]
            assert e["result"] == "bounced", e
            assert e["dsn"] == "5.1.10", e
            assert "null MX" in e["reason"] or "does not accept mail" in e["reason"], e
            wait_until(lambda: queue_empty(s.inst), what="queue empty")
            time.sleep(0.3)
            bounces = [b for b in s.inst.events("bounce") if "dsn_id" in b]
            assert len(bounces) == 1, f"only the original is bounced, never the DSN: {bounces}"
            dsn_id = bounces[0]["dsn_id"]
            assert e["id"] == dsn_id, (e, bounces)
            assert any(dsn_id in b.get("message", "") and "null sender" in b["message"]
                       for b in s.inst.events("bounce", level="warning")), s.inst.log()
            assert len(s.inst.events("delivery")) == 2, s.inst.log()
            assert a.connections == []
    finally:
        s.close()


def test_null_mx_bounces_direct(make_instance, dns, mx_port):
    with ScriptedPeer(starttls=False) as origin:
        s = Setup(make_instance, dns, mx_port, "relay", origin_port=origin.port)
        try:
            qid = s.inst.send("alice@origin.test", ["bob@nullmx.test"], "null mx direct")
            e = s.inst.wait_events("delivery", 1, id=qid)[0]
            assert e["result"] == "bounced" and e["dsn"] == "5.1.10", e
            dsn = origin.wait_messages(1, timeout=10)[0]
            assert envelope_sender(dsn[0]) == "" and dsn[1] == ["alice@origin.test"]
            text = re.sub(r"\r?\n[ \t]+", " ", dsn[2].decode("utf-8", "replace"))
            assert re.search(r"^Final-Recipient: rfc822;\s*bob@nullmx\.test", text, re.M | re.I), text
            assert re.search(r"^Status: 5\.1\.10\s*$", text, re.M), text
            wait_until(lambda: queue_empty(s.inst), what="queue empty")
        finally:
            s.close()


@pytest.mark.parametrize("names,trust", [(("mxa.tls.test",), "verified"), (("other.test",), "trusted")])
def test_tls_name_check_uses_mx_host_name(make_instance, dns, mx_port, mode, tmp_path, names, trust):
    """Outbound, the certificate names checked are the MX host name and the recipient domain
    (SPEC §1.3 peer_names default): a certificate for mxa.tls.test is `verified`, one for
    another name only `trusted` (chain ok)."""
    ca = make_test_ca(tmp_path, names=names, ip=None)
    s = Setup(make_instance, dns, mx_port, mode, tls_extra=f'ca_file = "{ca["ca"]}"')
    try:
        with ScriptedPeer(host=A, port=mx_port, cert=ca["cert"], key=ca["key"]) as a:
            rcpt = s.send_to("tls.test", "tls by mx name")
            s.check_arrived(a, rcpt)
            assert a.messages[0][3] is True
            e = s.mx_event(rcpt)[0]
            assert e["result"] == "sent", e
            assert e["relay"] == f"mxa.tls.test[{A}]:{mx_port}", e
            assert e["tls"] == trust and e["proto"] == "TLSv1.3", e
    finally:
        s.close()


@pytest.mark.parametrize("first", ["no-starttls", "handshake-fails"])
def test_mandatory_tls_tries_the_next_mx_host(make_instance, dns, mx_port, mode, tmp_path, first):
    """SPEC §1.2 through real MX records: a [[profile]] for the recipient domain mtls.test
    requires TLS (verify = "ca+name"). MX 10 (mxa) offers no STARTTLS (it gets EHLO and QUIT),
    or answers STARTTLS with 220 and then junk instead of a handshake (EHLO, STARTTLS); never
    MAIL. Postern "tries the next MX host" in the same attempt, and MX 20 (mxb, whose
    certificate names it) gets the message over TLS - attempt 1, profile partner, verified.
    Fails if the missing STARTTLS or the failed handshake defers (or bounces) instead of moving
    on, if MX 10 gets the mail in plaintext, or if MX 20 is not reached over TLS."""
    ca = make_test_ca(tmp_path, names=("mxb.mtls.test",), ip=None)
    profile = ('[[profile]]\nname = "partner"\nrecipient_domains = ["mtls.test"]\n\n'
               '[profile.outbound]\ntls = "mandatory"\nverify = "ca+name"\n\n')
    s = Setup(make_instance, dns, mx_port, mode, tls_extra=f'ca_file = "{ca["ca"]}"', extra=profile)
    try:
        first_kw = {"starttls": False} if first == "no-starttls" else {"tls_mode": "garbage"}
        with ScriptedPeer(host=A, port=mx_port, **first_kw) as a, \
                ScriptedPeer(host=B, port=mx_port, cert=ca["cert"], key=ca["key"]) as b:
            rcpt = s.send_to("mtls.test", f"mandatory next mx {first}")
            s.check_arrived(b, rcpt)
            assert b.messages[0][3] is True, "the message must travel inside TLS"
            for c in b.connections:  # every transaction command inside TLS
                for cmd, t in c.commands:
                    if cmd.split(" ", 1)[0].upper() in ("MAIL", "RCPT", "DATA", "BDAT"):
                        assert t, f"{cmd!r} outside TLS: {c.commands}"
            e = s.mx_event(rcpt)[0]
            assert e["result"] == "sent" and e["attempt"] == "1", e
            assert e["relay"] == f"mxb.mtls.test[{B}]:{mx_port}", e
            assert e["profile"] == "partner" and e["tls"] == "verified", e
            s.inst.stop()  # no attempt in flight: what the peers saw is final
            assert len(s.inst.events("delivery", to=f"<{rcpt}>")) == 1, s.inst.events("delivery")
            assert not a.saw_mail_from(), a.all_commands()
            assert len(a.connections) == 1, [c.commands for c in a.connections]
            want = ["EHLO", "QUIT"] if first == "no-starttls" else ["EHLO", "STARTTLS"]
            assert a.connections[0].verbs() == want, a.connections[0].commands
            assert "tls=fallback" not in s.inst.log()
            assert a.connections[0].accepted <= b.connections[0].accepted
    finally:
        s.close()


# --- RFC 5321 5.1: MX records at or above our own preference are discarded -----------------


def test_mx_pointing_to_myself_bounces(setup, mx_port):
    """Postern's own name (hostname = mx.postern.test, see conftest) is MX 10 of self.test and
    another host MX 20: RFC 5321 5.1 discards our record and every one at or above its
    preference, nothing is left, so the mail loops back to us: bounce 5.4.6 at the first
    attempt (Postfix's wording), and no host gets a connection."""
    with ScriptedPeer(host=A, port=mx_port, starttls=False) as a, \
            ScriptedPeer(host=B, port=mx_port, starttls=False) as b:
        rcpt = setup.send_to("self.test", "loops back")
        e = setup.mx_event(rcpt)[0]
        assert e["result"] == "bounced" and e["dsn"] == "5.4.6" and e["attempt"] == "1", e
        assert "mail for self.test loops back to myself" in e["reason"], e
        time.sleep(0.2)
        assert a.connections == [] and b.connections == []
        if setup.mode == "bounce":  # relay: the bounce to origin.test stays queued (no route)
            wait_until(lambda: queue_empty(setup.inst), what="queue empty")


# --- hosts that do not exist ---------------------------------------------------------------


@pytest.mark.parametrize("domain", ["nohost.test", "deadmx.test"])
def test_no_address_anywhere_bounces_5_4_4(setup, domain):
    """No MX and no A/AAAA (nodata on both), or MX hosts that do not exist (NXDOMAIN): bounce
    5.4.4 at the first attempt, as Postfix does, instead of deferring until queue.max_age."""
    rcpt = setup.send_to(domain, "no host")
    e = setup.mx_event(rcpt)[0]
    assert e["result"] == "bounced" and e["dsn"] == "5.4.4" and e["attempt"] == "1", e
    assert "not found" in e["reason"], e
    if setup.mode == "bounce":  # relay: the bounce to origin.test stays queued (no route)
        wait_until(lambda: queue_empty(setup.inst), what="queue empty")


@pytest.mark.parametrize("domain,why", [("literalmx.test", "MX hosts that are IP addresses ignored: "),
                                        ("badmx.test", "every MX record is malformed")])
def test_no_usable_mx_host_bounces_5_4_4(setup, mx_port, domain, why):
    """Every MX host is an IP address (RFC 5321 5.1 wants names), or every MX record is
    malformed: the same records come back on every retry, so bounce 5.4.4 at once (Postfix's
    DNS_INVAL), saying why, instead of deferring 4.4.3 until queue.max_age. Nothing connects
    to the literal addresses."""
    with ScriptedPeer(host=A, port=mx_port, starttls=False) as a:
        rcpt = setup.send_to(domain, "no usable mx")
        e = setup.mx_event(rcpt)[0]
        assert e["result"] == "bounced" and e["dsn"] == "5.4.4" and e["attempt"] == "1", e
        assert f"no usable MX host for {domain}" in e["reason"] and why in e["reason"], e
        assert a.connections == []


def test_address_lookup_failure_still_defers(setup):
    """One MX host does not exist, the other's lookup fails (REFUSED -> SERVFAIL): a DNS failure
    is never read as "not found"; the recipient is deferred 4.4.3."""
    rcpt = setup.send_to("lookupfail.test", "lookup fails")
    e = setup.mx_event(rcpt, timeout=30)[0]
    assert e["result"] == "deferred" and e["dsn"] == "4.4.3", e


def many_busy_then_good(make_instance, dns, extra=lambda port: ""):
    """A relay-mode Setup on a port free on MANY and B (`extra(port)` added to its config), the
    peers greeting 421 on MANY (manyaddr.test's busy host) and a good peer on B (its good host),
    not started yet."""
    port = shared_port(MANY + [B])
    s = Setup(make_instance, dns, port, "relay", extra=extra(port))
    busy = [ScriptedPeer(host=h, port=port, starttls=False, greeting_codes=(421,)) for h in MANY]
    return s, busy, ScriptedPeer(host=B, port=port, starttls=False)


def test_at_most_five_addresses_per_attempt(make_instance, dns):
    """Like Postfix's smtp_mx_address_limit (5): MX 10 has seven addresses, each greeting 421
    (no session: the session limit does not stop them), MX 20 is a good host. Only five of the
    seven get a connection in the attempt (which five: the addresses of one host are shuffled),
    MX 20 none, and the recipient is deferred with the last reply. Without the limit all seven
    are tried and MX 20 takes the message: a domain with hundreds of black-hole addresses would
    hold a delivery slot for hours."""
    s, busy, good = many_busy_then_good(make_instance, dns)
    try:
        with running(*(busy + [good])):
            rcpt = s.send_to("manyaddr.test", "address limit")
            e = s.mx_event(rcpt, timeout=20)[0]
            assert e["result"] == "deferred" and e["attempt"] == "1" and "421" in e["reason"], e
            time.sleep(0.5)
            counts = [len(p.connections) for p in busy]
            assert sorted(counts) == [0, 0, 1, 1, 1, 1, 1], counts
            assert good.connections == [] and good.messages == []
    finally:
        s.close()


def test_every_mx_name_counts_towards_the_address_limit(make_instance, dns):
    """Seven MX names share one address that greets 421, MX 20 is good: each name is a try of
    its own (Postfix counts every address of the list), so five connections reach the busy
    address and MX 20 none. Before, tries were counted as distinct addresses: one address under
    a hundred names got a hundred tries (the black-hole case the limit is for)."""
    port = shared_port([MANY[0], B])
    s = Setup(make_instance, dns, port, "relay")
    busy = ScriptedPeer(host=MANY[0], port=port, starttls=False, greeting_codes=(421,))
    good = ScriptedPeer(host=B, port=port, starttls=False)
    try:
        with running(busy, good):
            rcpt = s.send_to("onebusy.test", "one address, seven names")
            e = s.mx_event(rcpt, timeout=20)[0]
            assert e["result"] == "deferred" and e["attempt"] == "1" and "421" in e["reason"], e
            time.sleep(0.5)
            assert len(busy.connections) == 5, len(busy.connections)
            assert good.connections == [] and good.messages == []
    finally:
        s.close()


def test_at_most_two_sessions_that_leave_the_recipient_open(make_instance, dns):
    """Like Postfix's smtp_mx_session_limit (2): three MX hosts, each answering 451 to RCPT (a
    greylisting farm, say). The first two are tried in the attempt; the third gets no
    connection, and the recipient is deferred with the reply. Without the limit every MX host
    would be tried in every attempt."""
    hosts = MANY[:3]
    port = shared_port(hosts)
    s = Setup(make_instance, dns, port, "relay")
    peers = [ScriptedPeer(host=h, port=port, starttls=False, rcpt_codes={"bob@greyfarm.test": 451}) for h in hosts]
    try:
        with running(*peers):
            rcpt = s.send_to("greyfarm.test", "greylisted")
            e = s.mx_event(rcpt, timeout=20)[0]
            assert e["result"] == "deferred" and e["attempt"] == "1" and "451" in e["reason"], e
            time.sleep(0.5)
            assert [len(p.connections) for p in peers] == [1, 1, 0], [len(p.connections) for p in peers]
    finally:
        s.close()


def test_address_limit_is_per_host_of_a_static_route(make_instance, dns):
    """A [[route]] to two hosts: busy.manyaddr.test (seven addresses greeting 421), then
    good.manyaddr.test. Each host of the list is a next-hop of its own (Postfix's limits are
    per next-hop or fall-back destination): five of busy's seven addresses are tried, then
    good takes the message. Before, the limit counted over the whole list and good was never
    reached."""
    s, busy, good = many_busy_then_good(
        make_instance, dns, lambda port: route("spread.test", f"busy.manyaddr.test:{port}", f"good.manyaddr.test:{port}"))
    try:
        with running(*(busy + [good])):
            rcpt = s.send_to("spread.test", "static route")
            e = s.mx_event(rcpt, timeout=20)[0]
            assert e["result"] == "sent" and e["attempt"] == "1", e
            counts = [len(p.connections) for p in busy]
            assert sorted(counts) == [0, 0, 1, 1, 1, 1, 1], counts
            assert len(good.messages) == 1
    finally:
        s.close()


def test_mx_at_our_own_address_stays_ours_after_a_reload_moving_listen(make_instance, dns, tmp_path):
    """An MX host whose address and port are where Postern listens is Postern (RFC 5321 5.1),
    also after a reload that changes server.listen: that key takes effect only at the next
    restart, so the check keeps comparing against the socket actually bound. Before the fix,
    the reloaded (unbound) address was used: Postern connected to itself and its DSN to
    alice@loopaddr.test was refused there as a relay attempt instead of 'loops back'."""
    inst = make_instance(start=False)
    internal = ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": 550}).__enter__()
    try:
        extra = f'[delivery]\nport = {inst.port}\n\n[dns]\nservers = ["{dns.address}"]\n\n'
        text = render_config(inst.dir, inst.port, extra=extra, queue_extra='retry_schedule = ["1h"]',
                             domains=relay_domain("internal.test", f"127.0.0.1:{internal.port}"))
        inst.write_config(text)
        inst.start()

        def bounce_of_dsn(n):
            inst.send("alice@loopaddr.test", ["bob@internal.test"], f"loop {n}")
            return inst.wait_events("delivery", n, to="<alice@loopaddr.test>")[n - 1]

        e = bounce_of_dsn(1)
        assert e["result"] == "bounced" and e["dsn"] == "5.4.6", e
        assert "mail for loopaddr.test loops back to myself" in e["reason"], e

        other = inst.port + 1 if inst.port < 65535 else inst.port - 1
        inst.write_config(text.replace(f'listen = ["127.0.0.1:{inst.port}"]', f'listen = ["127.0.0.1:{other}"]'))
        inst.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: any(e.get("message", "").startswith("server.listen changed")
                               for e in inst.events("reload")), what="restart-only warning")
        e = bounce_of_dsn(2)
        assert e["result"] == "bounced" and e["dsn"] == "5.4.6", e
        assert "mail for loopaddr.test loops back to myself" in e["reason"], e
    finally:
        internal.__exit__()


def test_routes_that_lead_back_here_or_nowhere(make_instance, dns):
    """Found by review (each relayed by a client allowed to, delivery.port = Postern's own):
    - an MX host at 0.0.0.0 reaches 127.0.0.1, i.e. Postern: it looped until the hop limit (50
      deliveries to itself, then 5.4.6 hop count exceeded); now 5.4.6 loops back at once;
    - an address literal naming Postern's own address ([127.0.0.1], and with leading zeros,
      which RFC 5321's Snum allows) looped likewise; now 5.4.6 at once;
    - an address literal with leading zeros for another host ([127.000.000.002]) was looked up
      in DNS and bounced 5.1.2 "does not exist"; now delivered to 127.0.0.2;
    - a general address literal ([x-tag:foo]) was looked up in DNS as a name; now 5.1.2 saying
      what it is, without a query;
    - Postern as a backup MX whose primary does not exist bounced 5.4.4; now deferred, as
      Postfix does ("unable to find primary relay")."""
    inst = make_instance(start=False)
    extra = (f'[delivery]\nport = {inst.port}\n\n[dns]\nservers = ["{dns.address}"]\n\n'
             '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n')
    inst.write_config(render_config(inst.dir, inst.port, extra=extra, queue_extra='retry_schedule = ["1h"]'))
    inst.start()
    with ScriptedPeer(host=A, port=inst.port, starttls=False) as a:
        cases = {"bob@zero.test": ("bounced", "5.4.6", "mail for zero.test loops back to myself"),
                 "bob@[127.0.0.1]": ("bounced", "5.4.6", "mail for [127.0.0.1] loops back to myself"),
                 "carol@[127.000.000.001]": ("bounced", "5.4.6", "loops back to myself"),
                 "dave@[127.000.000.002]": ("sent", "2.0.0", ""),
                 "erin@[x-tag:foo]": ("bounced", "5.1.2", "address literal [x-tag:foo] is not an IPv4 or IPv6 address"),
                 "frank@backupnx.test": ("deferred", "4.4.3", "cannot find an address for gone.backupnx.test")}
        for rcpt in cases:
            inst.send("alice@origin.test", [rcpt], f"to {rcpt}")
        for rcpt, (result, dsn, why) in cases.items():
            e = inst.wait_events("delivery", 1, to=f"<{rcpt}>")[0]
            assert e["result"] == result and e["dsn"] == dsn and e["attempt"] == "1", e
            assert why in e.get("reason", ""), e
        assert [m[1] for m in a.messages] == [["dave@[127.000.000.002]"]], a.messages
        time.sleep(0.5)  # no second delivery line: nothing came back to loop again
        for rcpt in cases:
            assert len(inst.events("delivery", to=f"<{rcpt}>")) == 1, inst.events("delivery", to=f"<{rcpt}>")
        assert not re.search(r"query.*x-tag", inst.log())
