"""tests/e2e/test_mandatory_outbound.py - outbound mandatory TLS per connection profile
(SPEC §1.2-1.4, issue 4).

Every test delivers mail for the hosted domain internal.test (relay_to = the scripted peers)
under a [[profile]] "partner" matched by recipient domain (or by the destination host: IP,
name or "*"), and judges Postern by what the PEER saw:
- "no mail" cases (no STARTTLS, broken handshake, a certificate or session that does not meet
  the profile): the peer never receives MAIL FROM - neither in plaintext nor over the rejected
  TLS session, on the first attempt or any later one; a usable connection is ended with QUIT
  (inside TLS when the TLS session was set up and then rejected); the recipient stays deferred
  in the queue with 4.7.4 (TLS not offered) or 4.7.5 (anything else), and the delivery log line
  names profile=partner, result=deferred and that code;
- positive cases: the message arrives inside TLS (the peer's tls flag), attempt 1, profile=partner.
Certificates come from the openssl CLI (peers.make_ca / make_cert): one test CA, a second CA
nobody trusts, self-signed, expired, not yet valid, wildcard. Host names (peer.test,
mx.partner.test) resolve through a test NSD (dns_server.py); everything is on loopback.
"""
import datetime
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import POSTERN, relay_domain, route, wait_until
from dns_server import DnsServer
from peers import (ScriptedPeer, cert_sha256, envelope_sender, make_ca, make_cert, openssl_fingerprint,
                   spki_sha256)

PROFILE = "partner"
RCPT = "bob@internal.test"
SENDER = "alice@sender.test"
RETRY = 'retry_schedule = ["1s"]'
FORBIDDEN = {"MAIL", "RCPT", "DATA", "BDAT"}  # never on a connection that does not meet the profile


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """One trusted test CA and leaf certificates for every case; none carries an IP address SAN,
    so that no name check can match the 127.0.0.1 relay_to literal."""
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d)
    other_ca = make_ca(d, cn="Untrusted Other CA", stem="other-ca")
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    c = {"ca": ca["ca"], "other_ca": other_ca["ca"]}
    for stem, names in {
        "internal": ("internal.test",),          # the recipient domain (a default peer name)
        "peer": ("peer.test",),                  # the relay host name used through DNS
        "other": ("other.test",),                # names nothing Postern expects
        "override": ("gw.override.test",),       # only for peer_names = ["gw.override.test"]
        "wild_partner": ("*.partner.test",),
        "wild_test": ("*.test",),
    }.items():
        c[stem] = make_cert(d, ca, names=names, stem=stem)
    c["self"] = make_cert(d, None, names=("internal.test", "peer.test"), stem="self")
    c["foreign"] = make_cert(d, other_ca, names=("internal.test",), stem="foreign")
    c["expired"] = make_cert(d, ca, names=("internal.test",), stem="expired",
                             not_before=now - 10 * day, not_after=now - day)
    c["future"] = make_cert(d, ca, names=("internal.test",), stem="future",
                            not_before=now + day, not_after=now + 10 * day)
    return c


@pytest.fixture(scope="module")
def dns():
    zone = ("peer A 127.0.0.1\n"
            "mx.partner A 127.0.0.1\n")
    with DnsServer(zones={"test": zone}) as d:
        yield d


def peer_for(pki, name, **kw):
    c = pki[name]
    return ScriptedPeer(cert=c["cert"], key=c["key"], **kw)


def toml_value(v):
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v) + '"'


def profile_toml(name=PROFILE, domains=("internal.test",), hosts=None, **outbound):
    """A [[profile]] matched by recipient domain (or, with `hosts`, by destination host only)
    with a [profile.outbound] table (tls defaults to "mandatory")."""
    outbound.setdefault("tls", "mandatory")
    match = f"hosts = {toml_value(hosts)}" if hosts else f"recipient_domains = {toml_value(domains)}"
    lines = ["[[profile]]", f'name = "{name}"', match, "", "[profile.outbound]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in outbound.items()]
    return "\n".join(lines) + "\n"


def start(make_instance, hosts, outbound=None, ca=None, dns=None, tls_extra="", queue_extra=RETRY,
          extra="", more_domains=""):
    """An instance relaying internal.test to `hosts`, with the "partner" profile (`outbound`
    keys) unless outbound is None, tls.ca_file = `ca`, and dns.servers = the test NSD."""
    t = tls_extra + (f'\nca_file = "{ca}"\n' if ca else "")
    x = f'[dns]\nservers = ["{dns.address}"]\n\n' if dns else ""
    x += extra + "\n"
    if outbound is not None:
        x += profile_toml(**outbound)
    return make_instance(domains=relay_domain("internal.test", *hosts) + more_domains, tls_extra=t,
                         queue_extra=queue_extra, extra=x)


# --- assertions ----------------------------------------------------------------------------------


def queue_entry(inst, qid):
    for m in inst.queue_json("list"):
        if m["id"] == qid:
            return m
    raise AssertionError(f"{qid} is not in `postern queue list`; log:\n{inst.log()[-3000:]}")


def quit_expected(peer, conn):
    """A usable connection is ended with QUIT: a plaintext session after EHLO (no STARTTLS
    issued), STARTTLS answered 454, or a TLS session that was set up and then rejected."""
    verbs = conn.verbs()
    return "STARTTLS" not in verbs or peer.tls_mode == "refuse" or conn.tls


def assert_no_mail(inst, peer, qid, dsn, attempts=2, reason=None, relay_in_reason=None):
    """`attempts` attempts all deferred with `dsn`, the recipient still deferred in the queue,
    and the peer never saw MAIL FROM (or RCPT/DATA/BDAT) on any connection."""
    ev = inst.wait_events("delivery", attempts, id=qid, timeout=6.0 + 2.0 * attempts)
    for e in ev:
        assert e["result"] == "deferred", e
        assert e["dsn"] == dsn, e
        assert e["profile"] == PROFILE, e
        assert e["tls"] != "fallback", f"mandatory TLS must never fall back to plaintext: {e}"
        if reason:
            assert re.search(reason, e["reason"], re.I), f"reason does not match /{reason}/: {e}"
        if relay_in_reason:
            assert relay_in_reason in e["reason"], e
    m = queue_entry(inst, qid)
    assert [r["status"] for r in m["recipients"]] == ["deferred"], m
    assert m["recipients"][0]["last_reply"].startswith(dsn), m
    assert qid in inst.spool_files("queue")
    # what the peer saw: the instance stopped first, so no attempt is still in flight
    inst.stop()
    assert "tls=fallback" not in inst.log()
    assert not peer.saw_mail_from(), peer.all_commands()
    assert peer.messages == []
    conns = peer.connections
    assert len(conns) >= attempts, [c.commands for c in conns]
    for c in conns:
        verbs = c.verbs()
        assert verbs and verbs[0] == "EHLO", c.commands
        assert not FORBIDDEN & set(verbs), f"mail transaction on a rejected connection: {c.commands}"
        if quit_expected(peer, c):
            assert verbs[-1] == "QUIT", f"usable connection not ended with QUIT: {c.commands}"
            if c.tls:  # a TLS session that was set up: the QUIT travels inside it
                assert c.commands[-1][1] is True, c.commands
    return ev


def assert_delivered_tls(inst, peer, qid, trust=None, proto=None):
    msgs = peer.wait_messages(1, timeout=10)
    assert len(msgs) == 1, msgs
    mail_from, rcpts, data, tls = msgs[0]
    assert tls is True, "the message must travel inside TLS"
    assert envelope_sender(mail_from) == SENDER and rcpts == [RCPT]
    # every transaction command of every connection inside TLS
    for c in peer.connections:
        for cmd, t in c.commands:
            if cmd.split(" ", 1)[0].upper() in FORBIDDEN:
                assert t, f"{cmd!r} outside TLS: {c.commands}"
    e = inst.wait_events("delivery", 1, id=qid)[0]
    assert e["result"] == "sent" and e["attempt"] == "1", e
    assert e["profile"] == PROFILE, e
    assert e["tls"] not in ("none", "fallback"), e
    if trust:
        assert e["tls"] == trust, e
    if proto:
        assert e["proto"] == proto, e
    wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")
    return e


# --- 4.7.4: TLS required but not offered ---------------------------------------------------------


def test_no_starttls_defers_and_never_falls_back(make_instance):
    with ScriptedPeer(starttls=False) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={}, tls_extra='handshake_retry_delay = "1s"')
        qid = inst.send(SENDER, [RCPT], "no starttls")
        relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
        ev = assert_no_mail(inst, peer, qid, "4.7.4", attempts=3, reason="TLS required but not offered",
                            relay_in_reason=relay)
        assert [e["attempt"] for e in ev[:3]] == ["1", "2", "3"], ev
        for e in ev:
            assert e["relay"] == relay and e["tls"] == "none", e
        for c in peer.connections:  # EHLO, no STARTTLS offered, QUIT: nothing else
            assert set(c.verbs()) <= {"EHLO", "QUIT", "NOOP", "RSET"}, c.commands


# --- 4.7.5: the handshake fails --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["garbage", "close", "refuse"])
def test_broken_handshake_defers_and_never_falls_back(make_instance, pki, mode):
    """Opportunistic TLS delivers in plaintext on the second failed handshake (SPEC §1.1,
    test_outbound_tls.py and the contrast test below); mandatory TLS never does."""
    with peer_for(pki, "internal", tls_mode=mode) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={}, ca=pki["ca"],
                     tls_extra='handshake_retry_delay = "1s"')
        qid = inst.send(SENDER, [RCPT], f"broken {mode}")
        assert_no_mail(inst, peer, qid, "4.7.5", attempts=3)
        for c in peer.connections:  # STARTTLS on every connection: no plaintext reconnect
            assert "STARTTLS" in c.verbs(), c.commands


def test_contrast_opportunistic_falls_back(make_instance, pki):
    """The same broken peer without a profile: the second failure delivers in plaintext, so
    the checks above would see a fallback if mandatory TLS allowed one."""
    with peer_for(pki, "internal", tls_mode="garbage") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound=None, ca=pki["ca"],
                     tls_extra='handshake_retry_delay = "1s"')
        qid = inst.send(SENDER, [RCPT], "contrast")
        msgs = peer.wait_messages(1, timeout=10)
        assert msgs[0][3] is False
        e = inst.wait_events("delivery", 1, id=qid, result="sent")[0]
        assert e["tls"] == "fallback" and e["profile"] == "-", e


# --- verify = "ca" ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cert,where,ok,reason", [
    ("other", "tls", True, None),                        # chain ok; names are not checked by "ca"
    ("other", "profile", True, None),                    # the profile's ca_file, tls.ca_file is another CA
    ("self", "tls", False, r"certif|verif|self|trust|issuer"),
    ("foreign", "tls", False, r"certif|verif|trust|issuer"),  # from a CA nobody configured
    ("foreign", "profile-wrong", False, r"certif|verif|trust|issuer"),  # profile ca_file wins over tls.ca_file
    ("expired", "tls", False, r"expired|validity"),
    ("future", "tls", False, r"not yet valid|validity"),
])
def test_verify_ca(make_instance, pki, cert, where, ok, reason):
    outbound = {"verify": "ca"}
    if where == "tls":
        ca = pki["ca"]
    elif where == "profile":
        ca, outbound["ca_file"] = pki["other_ca"], pki["ca"]
    else:  # profile-wrong: tls.ca_file would trust the certificate, the profile's does not
        ca, outbound["ca_file"] = pki["foreign"]["ca"], pki["ca"]
    with peer_for(pki, cert) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound=outbound, ca=ca)
        qid = inst.send(SENDER, [RCPT], f"ca {cert} {where}")
        if ok:
            assert_delivered_tls(inst, peer, qid, trust="trusted")
        else:
            assert_no_mail(inst, peer, qid, "4.7.5", reason=reason)


# --- verify = "ca+name" ------------------------------------------------------------------------------


@pytest.mark.parametrize("cert,via,peer_names,ok", [
    ("internal", "ip", None, True),          # default name: the recipient domain
    ("peer", "dns", None, True),             # default name: the relay host name peer.test
    ("wild_partner", "mx.partner", None, True),  # *.partner.test covers the relay host mx.partner.test
    ("override", "ip", ["gw.override.test"], True),  # peer_names names the gateway
    ("other", "ip", None, False),            # names neither the relay host nor the domain
    ("other", "dns", None, False),
    ("internal", "ip", ["gw.override.test"], False),  # peer_names replaces the defaults
    ("wild_test", "ip", ["a.b.test"], False),          # a wildcard covers one label only
    ("wild_partner", "ip", ["a.b.partner.test"], False),
    ("self", "ip", None, False),             # the right names, but no chain to the CA
])
def test_verify_ca_name(make_instance, pki, dns, cert, via, peer_names, ok):
    outbound = {"verify": "ca+name"}
    if peer_names:
        outbound["peer_names"] = peer_names
    with peer_for(pki, cert) as peer:
        host = {"ip": "127.0.0.1", "dns": "peer.test", "mx.partner": "mx.partner.test"}[via]
        inst = start(make_instance, [f"{host}:{peer.port}"], outbound=outbound, ca=pki["ca"], dns=dns)
        qid = inst.send(SENDER, [RCPT], f"ca+name {cert} {via}")
        if ok:
            e = assert_delivered_tls(inst, peer, qid, trust="verified")
            assert e["relay"] == f"{host}[127.0.0.1]:{peer.port}", e
        else:
            reason = r"certif|verif|trust|issuer" if cert == "self" else r"name|match|host"
            assert_no_mail(inst, peer, qid, "4.7.5", reason=reason)


# --- verify = "fingerprint" ------------------------------------------------------------------------


@pytest.mark.parametrize("pins,ok", [
    ("cert-openssl", True),     # "sha256:AB:CD:..." as `openssl x509 -fingerprint -sha256` prints it
    ("cert-hex", True),         # lower-case hex of SHA-256 over the DER certificate
    ("spki", True),             # spki-sha256: the public key
    ("wrong-then-right", True),  # any one pin matches
    ("wrong", False),           # another certificate's fingerprint
    ("spki-as-cert", False),    # the key's hash is not the certificate's
])
def test_verify_fingerprint(make_instance, pki, pins, ok):
    cert = pki["self"]["cert"]  # self-signed: pinning needs no CA
    right = cert_sha256(cert)
    assert openssl_fingerprint(cert).split(":", 1)[1].replace(":", "").lower() == right  # two ways, one hash
    wrong = cert_sha256(pki["other"]["cert"])
    fingerprints = {
        "cert-openssl": [openssl_fingerprint(cert)],
        "cert-hex": [f"sha256:{right}"],
        "spki": [f"spki-sha256:{spki_sha256(cert)}"],
        "wrong-then-right": [f"sha256:{wrong}", f"sha256:{right}"],
        "wrong": [f"sha256:{wrong}"],
        "spki-as-cert": [f"sha256:{spki_sha256(cert)}"],
    }[pins]
    with peer_for(pki, "self") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"],
                     outbound={"verify": "fingerprint", "fingerprints": fingerprints})
        qid = inst.send(SENDER, [RCPT], f"fingerprint {pins}")
        if ok:
            assert_delivered_tls(inst, peer, qid)
        else:
            assert_no_mail(inst, peer, qid, "4.7.5", reason=r"fingerprint|pin")


# --- min_tls_version ---------------------------------------------------------------------------------


@pytest.mark.parametrize("peer_max,min_version,ok,proto", [
    ("1.2", "1.3", False, None),
    ("1.2", "1.2", True, "TLSv1.2"),
    (None, "1.3", True, "TLSv1.3"),
])
def test_min_tls_version(make_instance, pki, peer_max, min_version, ok, proto):
    """min_tls_version = "1.3" against a TLS 1.2-only peer: the session is set up (TLS 1.2) and
    then refused with exactly Postern's reason, naming the negotiated and the required version
    and the relay (a loose pattern would also pass a handshake failure or an unrelated
    "protocol" error); the same peer under "1.2", and a 1.3 peer under "1.3", get the mail."""
    with peer_for(pki, "internal", tls_max_version=peer_max) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={"min_tls_version": min_version})
        qid = inst.send(SENDER, [RCPT], f"version {peer_max} {min_version}")
        if ok:
            assert_delivered_tls(inst, peer, qid, proto=proto)
            assert peer.connections[0].tls_version == proto
        else:
            relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
            want = f"TLS version TLSv1.2 below the required 1.3 ({relay})"
            ev = assert_no_mail(inst, peer, qid, "4.7.5", reason=re.escape(want))
            for e in ev:
                assert e["reason"] == want, e
                assert e["proto"] == "TLSv1.2", e
            # the handshake itself succeeded: the refusal is Postern's check of the session
            assert all(c.tls_version == "TLSv1.2" and c.tls_error is None for c in peer.connections), \
                [(c.tls_version, c.tls_error) for c in peer.connections]


@pytest.mark.parametrize("peer_max,ok", [("1.1", False), ("1.2", True)])
def test_default_requirements_refuse_tls_1_1(make_instance, pki, peer_max, ok):
    """SPEC §1.3 defaults: a mandatory profile that states neither min_tls_version nor
    min_cipher_bits requires TLS 1.2 and 128 bits. A peer capped at TLS 1.1 (its ciphers at
    @SECLEVEL=0, so that it really can negotiate 1.1, and nothing else is in the way) gets no
    mail, on any attempt: deferred 4.7.5. Postern's client never offers less than TLS 1.2, so
    the handshake itself fails on the version - the peer's own error says so - and that is
    what the reason names. The same peer allowed TLS 1.2 gets the message: the profile asks
    nothing else this peer cannot give. `postern tls-policy` shows the two defaults."""
    with peer_for(pki, "internal", tls_max_version=peer_max, ciphers="DEFAULT:@SECLEVEL=0") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={})
        assert "min_tls_version" not in inst.config.read_text() and "min_cipher_bits" not in inst.config.read_text()
        qid = inst.send(SENDER, [RCPT], f"defaults {peer_max}")
        if ok:
            assert_delivered_tls(inst, peer, qid, proto="TLSv1.2")
            assert peer.connections[0].tls_version == "TLSv1.2"
        else:
            relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
            ev = assert_no_mail(inst, peer, qid, "4.7.5",
                                reason=re.escape(f"TLS handshake with {relay} failed: ") + r".*protocol version",
                                relay_in_reason=relay)
            for e in ev:
                assert e["tls"] == "none" and e["proto"] == "-", e
            for c in peer.connections:  # refused for the version, by the peer's TLS 1.1 ceiling
                assert c.verbs() == ["EHLO", "STARTTLS"], c.commands
                assert c.tls_version is None and re.search(r"UNSUPPORTED_PROTOCOL|protocol version", c.tls_error or "", re.I), \
                    (c.tls_version, c.tls_error)
    r = subprocess.run([POSTERN, "tls-policy", "internal.test", "-c", str(inst.config)],
                       capture_output=True, text=True, timeout=30, cwd="/")
    assert r.returncode == 0, r.stderr
    assert re.search(r"min TLS 1\.2; min cipher bits 128\b", r.stdout), r.stdout


# --- tls = "none", and mandatory over tls.opportunistic = false --------------------------------------


def test_tls_none_profile_sends_plaintext(make_instance, pki):
    with peer_for(pki, "internal") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={"tls": "none"}, ca=pki["ca"])
        qid = inst.send(SENDER, [RCPT], "tls none")
        msgs = peer.wait_messages(1, timeout=10)
        assert msgs[0][3] is False and msgs[0][1] == [RCPT]
        for c in peer.connections:
            assert "STARTTLS" not in c.verbs(), c.commands
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "sent" and e["profile"] == PROFILE and e["tls"] == "none", e
        assert e["proto"] == "-", e


def test_mandatory_wins_over_opportunistic_off(make_instance, pki):
    """tls.opportunistic = false: the profile's domain still gets STARTTLS and TLS; a domain
    without a profile on the same peer gets plaintext, STARTTLS never issued."""
    with peer_for(pki, "internal") as peer:
        port = peer.port
        inst = start(make_instance, [f"127.0.0.1:{port}"], outbound={"verify": "ca"}, ca=pki["ca"],
                     tls_extra="opportunistic = false",
                     more_domains=relay_domain("plain.test", f"127.0.0.1:{port}"))
        qid = inst.send(SENDER, [RCPT], "mandatory beats off")
        assert_delivered_tls(inst, peer, qid)
        assert "STARTTLS" in peer.connections[0].verbs()
        qid2 = inst.send(SENDER, ["carol@plain.test"], "global off")
        msgs = peer.wait_messages(2, timeout=10)
        assert msgs[1][1] == ["carol@plain.test"] and msgs[1][3] is False
        e = inst.wait_events("delivery", 1, id=qid2)[0]
        assert e["result"] == "sent" and e["profile"] == "-" and e["tls"] == "none", e
        plain_conns = [c for c in peer.connections if any("carol@plain.test" in cmd for cmd, _ in c.commands)]
        assert plain_conns and all("STARTTLS" not in c.verbs() for c in plain_conns), \
            [c.commands for c in peer.connections]


def test_mandatory_over_opportunistic_off_still_refuses_plaintext(make_instance):
    """The config of the test above, against a peer that offers no STARTTLS: mandatory still
    means no mail without TLS (SPEC §1.2) - deferred 4.7.4 on every attempt, never plaintext -
    although tls.opportunistic = false would send plaintext to a domain without a profile."""
    with ScriptedPeer(starttls=False) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={"verify": "ca"},
                     tls_extra="opportunistic = false")
        qid = inst.send(SENDER, [RCPT], "mandatory, global off, no starttls")
        relay = f"127.0.0.1[127.0.0.1]:{peer.port}"
        ev = assert_no_mail(inst, peer, qid, "4.7.4", reason="TLS required but not offered",
                            relay_in_reason=relay)
        for e in ev:
            assert e["tls"] == "none", e
        for c in peer.connections:
            assert c.verbs() == ["EHLO", "QUIT"], c.commands


# --- next host ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("first", ["no-starttls", "self-signed"])
def test_next_host_in_same_attempt(make_instance, pki, first):
    """relay_to = [A, B]: A does not meet the profile (no STARTTLS / untrusted certificate) and
    gets QUIT and no MAIL; B gets the message over TLS in the same attempt."""
    a = ScriptedPeer(starttls=False) if first == "no-starttls" else peer_for(pki, "self")
    with a, peer_for(pki, "internal") as b:
        inst = start(make_instance, [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"],
                     outbound={"verify": "ca"}, ca=pki["ca"])
        qid = inst.send(SENDER, [RCPT], f"next host {first}")
        e = assert_delivered_tls(inst, b, qid)
        assert e["relay"] == f"127.0.0.1[127.0.0.1]:{b.port}", e
        time.sleep(0.2)
        assert len(inst.events("delivery", id=qid)) == 1
        assert len(a.connections) == 1, [c.commands for c in a.connections]
        assert not a.saw_mail_from(), a.all_commands()
        c = a.connections[0]
        assert not FORBIDDEN & set(c.verbs()), c.commands
        if first == "no-starttls":
            # nothing to set up: EHLO, then QUIT in plaintext
            assert c.verbs() == ["EHLO", "QUIT"] and not any(t for _, t in c.commands), c.commands
        else:
            # the TLS session was set up and then rejected: the QUIT travels inside it, and
            # nothing else does (not even EHLO: the session is never used)
            assert c.tls and c.tls_version, (c.tls_version, c.tls_error)
            assert c.verbs() == ["EHLO", "STARTTLS", "QUIT"], c.commands
            assert c.commands[-1] == ("QUIT", True), f"QUIT outside the TLS session: {c.commands}"
        assert b.connections[0].accepted >= a.connections[0].accepted


# How each broken handshake ends on the first host's side: only after a 454 does the peer
# still read commands (and records the QUIT); junk, a close or silence leave nothing to read.
FAILED_HANDSHAKES = {"garbage": ["EHLO", "STARTTLS"], "close": ["EHLO", "STARTTLS"],
                     "refuse": ["EHLO", "STARTTLS", "QUIT"], "stall": ["EHLO", "STARTTLS"]}


@pytest.mark.parametrize("mode", sorted(FAILED_HANDSHAKES))
def test_next_host_after_failed_handshake_in_same_attempt(make_instance, pki, mode):
    """SPEC §1.2: "if ... the handshake fails ... Postern sends QUIT, tries the next MX host if
    any". relay_to = [A, B]: A answers STARTTLS with junk, closes after 220, answers 454, or
    never reads the ClientHello (the handshake times out after delivery.command_timeout); B is
    a CA-signed peer. B gets the message inside TLS in attempt 1 - the one delivery event - and
    A saw STARTTLS and no mail transaction. Fails if a failed handshake under mandatory TLS
    deferred the recipient (as opportunistic TLS does) instead of moving on to B."""
    with peer_for(pki, "internal", tls_mode=mode) as a, peer_for(pki, "internal") as b:
        inst = start(make_instance, [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"],
                     outbound={"verify": "ca"}, ca=pki["ca"], extra=STALL if mode == "stall" else "")
        qid = inst.send(SENDER, [RCPT], f"next host after {mode}")
        e = assert_delivered_tls(inst, b, qid)
        assert e["relay"] == f"127.0.0.1[127.0.0.1]:{b.port}", e
        inst.stop()  # no attempt in flight: what the peers saw is final
        assert len(inst.events("delivery", id=qid)) == 1, inst.events("delivery", id=qid)
        assert "tls=fallback" not in inst.log()
        assert len(a.connections) == 1, [c.commands for c in a.connections]
        assert not a.saw_mail_from(), a.all_commands()
        c = a.connections[0]
        assert c.verbs() == FAILED_HANDSHAKES[mode], c.commands
        assert not c.tls and not any(t for _, t in c.commands), c.commands
        assert len(b.messages) == 1, b.messages
        assert b.connections[0].accepted >= c.accepted


# --- expiry ------------------------------------------------------------------------------------------


def assert_tls_bounce_dsn(origin, status, reason):
    """The one DSN `origin` received for RCPT: from <>, to SENDER, a multipart/report failing
    bob@internal.test with `status` and `reason`. RFC 3464 2.3.5/2.3.6: the reason is
    Postern's, not a reply of the partner: our own diagnostic type and no Remote-MTA."""
    dsn = origin.wait_messages(1, timeout=10)
    assert len(dsn) == 1
    mail_from, rcpts, data, _ = dsn[0]
    assert envelope_sender(mail_from) == "" and rcpts == [SENDER]
    text = re.sub(r"\r?\n[ \t]+", " ", data.decode("utf-8", "replace"))
    assert "multipart/report" in text and "message/delivery-status" in text, text
    assert re.search(r"^Final-Recipient: rfc822;\s*bob@internal\.test\s*$", text, re.M | re.I), text
    assert re.search(r"^Action: failed\s*$", text, re.M | re.I), text
    assert re.search(r"^Status: " + re.escape(status) + r"\s*$", text, re.M), text
    assert re.search(r"^Diagnostic-Code: X-Postern;.*" + re.escape(reason), text, re.M), text
    assert "Remote-MTA" not in text and "Diagnostic-Code: smtp" not in text, text


def test_expiry_bounces_with_tls_reason(make_instance):
    with ScriptedPeer(starttls=False) as partner, ScriptedPeer(starttls=False) as origin:
        inst = start(make_instance, [f"127.0.0.1:{partner.port}"], outbound={},
                     queue_extra=RETRY + '\nmax_age = "3s"',
                     extra=route("sender.test", f"127.0.0.1:{origin.port}"))
        qid = inst.send(SENDER, [RCPT], "expires")
        b = inst.wait_events("delivery", 1, id=qid, result="bounced", timeout=15)[0]
        assert b["dsn"] == "4.7.4" and b["profile"] == PROFILE, b
        assert "TLS required but not offered" in b["reason"], b
        for e in inst.events("delivery", id=qid):
            assert e["result"] in ("deferred", "bounced") and e["dsn"] == "4.7.4", e

        assert_tls_bounce_dsn(origin, "4.7.4", "TLS required but not offered")
        wait_until(lambda: inst.spool_files("queue") == [], timeout=10, what="queue empty after the bounce")

        inst.stop()
        assert not partner.saw_mail_from(), partner.all_commands()
        assert partner.messages == []
        assert len(partner.connections) >= 2
        for c in partner.connections:
            assert c.verbs()[0] == "EHLO" and c.verbs()[-1] == "QUIT", c.commands
            assert not FORBIDDEN & set(c.verbs()), c.commands


def test_expiry_bounces_with_certificate_reason(make_instance, pki):
    """SPEC §1.2: mail whose partner never meets the profile is bounced at queue.max_age with
    the reason it was deferred for - here the certificate's (a self-signed peer under
    verify = "ca"), not 4.7.4 nor a generic "expired in queue": the bounce event and the DSN
    carry 4.7.5 and "certificate verification failed: self-signed certificate", and the
    partner never saw MAIL FROM on any attempt (checked once the instance has stopped, so that
    no attempt is still in flight)."""
    want = "certificate verification failed: self-signed certificate"
    with peer_for(pki, "self") as partner, ScriptedPeer(starttls=False) as origin:
        inst = start(make_instance, [f"127.0.0.1:{partner.port}"], outbound={"verify": "ca"}, ca=pki["ca"],
                     queue_extra=RETRY + '\nmax_age = "3s"',
                     extra=route("sender.test", f"127.0.0.1:{origin.port}"))
        qid = inst.send(SENDER, [RCPT], "expires cert")
        b = inst.wait_events("delivery", 1, id=qid, result="bounced", timeout=15)[0]
        assert b["dsn"] == "4.7.5" and b["profile"] == PROFILE, b
        assert want in b["reason"], b
        assert b["tls"] != "fallback", b
        bounce = inst.wait_events("bounce", 1, id=qid, timeout=10)[0]  # the DSN was queued
        assert bounce["to"] == f"<{SENDER}>", bounce
        attempts = inst.events("delivery", id=qid)
        assert len(attempts) >= 2, attempts
        for e in attempts:
            assert e["result"] in ("deferred", "bounced") and e["dsn"] == "4.7.5", e
            assert want in e["reason"], e

        assert_tls_bounce_dsn(origin, "4.7.5", want)
        wait_until(lambda: inst.spool_files("queue") == [], timeout=10, what="queue empty after the bounce")

        inst.stop()
        assert not partner.saw_mail_from(), partner.all_commands()
        assert partner.messages == []
        assert len(partner.connections) >= 2
        for c in partner.connections:  # each session set up, refused, and ended inside TLS
            assert c.verbs() == ["EHLO", "STARTTLS", "QUIT"], c.commands
            assert c.commands[-1] == ("QUIT", True), c.commands


# --- a parked connection is reused only under the rules it was checked against ----------------------


def test_reload_never_reuses_a_connection_checked_under_the_old_pins(make_instance, pki):
    """A session checked against pin P1 and parked for reuse (SPEC §3.4) must not carry mail
    after SIGHUP replaces P1 (say, a compromised key): the next message gets a fresh connection,
    which fails the new pin, so nothing is sent (SPEC §1.2)."""
    cert = pki["self"]["cert"]
    right, wrong = cert_sha256(cert), cert_sha256(pki["other"]["cert"])
    with peer_for(pki, "self") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"],
                     outbound={"verify": "fingerprint", "fingerprints": [f"sha256:{right}"]})
        q1 = inst.send(SENDER, [RCPT], "pinned one")
        inst.wait_events("delivery", 1, id=q1)
        q2 = inst.send(SENDER, [RCPT], "pinned two")
        e2 = inst.wait_events("delivery", 1, id=q2)[0]
        assert e2["result"] == "sent", e2
        # the premise: the second message went over the parked connection
        assert len(peer.connections) == 1 and len(peer.messages) == 2, [c.commands for c in peer.connections]

        inst.write_config(inst.config.read_text().replace(f"sha256:{right}", f"sha256:{wrong}"))
        inst.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(inst.events("reload")) == 1, what="reload logged")
        q3 = inst.send(SENDER, [RCPT], "pinned three")
        e3 = inst.wait_events("delivery", 1, id=q3)[0]
        assert e3["result"] == "deferred" and e3["dsn"] == "4.7.5", e3
        assert re.search(r"fingerprint|pin", e3["reason"], re.I), e3
        inst.stop()
        assert len(peer.messages) == 2, "mail sent over a session checked under the old pin"
        assert len(peer.connections) >= 2, [c.commands for c in peer.connections]
        first = peer.connections[0]
        assert sum(1 for v in first.verbs() if v == "MAIL") == 2, first.commands
        for c in peer.connections[1:]:
            assert not FORBIDDEN & set(c.verbs()), f"mail transaction on a rejected connection: {c.commands}"


class HeldGreeting:
    """A relay host that accepts connections and holds each one's greeting until release(),
    then answers 421 (try the next host) and closes."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.set()
            self.released.wait(30)
            try:
                c.sendall(b"421 4.3.2 held.test busy\r\n")
            except OSError:
                pass
            c.close()

    def release(self):
        self.released.set()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.released.set()
        self.sock.close()


def reload_to_mandatory_then(inst, qid, go_on):
    """SIGHUP with the "partner" profile (mandatory) added while message qid's delivery pass
    waits on a relay host; then go_on() lets that host answer. The pass must end without
    delivering (delivery_replanned) and the new pass, under the profile, defer with 4.7.4 (the
    hosts offer no STARTTLS)."""
    inst.write_config(inst.config.read_text() + "\n" + profile_toml())
    inst.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: len(inst.events("reload")) == 1, what="reload logged")
    go_on()
    ev = inst.wait_events("delivery", 1, id=qid, timeout=15)[0]
    assert ev["result"] == "deferred" and ev["dsn"] == "4.7.4" and ev["profile"] == PROFILE, ev
    assert inst.events("delivery_replanned", id=qid), inst.log()[-3000:]
    inst.stop()


def test_reload_during_a_delivery_pass_applies_to_its_next_host(make_instance):
    """A delivery pass under way when SIGHUP makes the destination mandatory must not go on under
    the old, opportunistic config: while the first relay host holds its greeting, the reload
    adds a mandatory profile for the recipient domain; when that host gives up (421), the pass
    does not deliver to the second host (plaintext only) under the old config. It ends, a new
    pass under the new config takes the recipient: no STARTTLS there -> 4.7.4, no mail."""
    with HeldGreeting() as first, ScriptedPeer(starttls=False) as second:
        inst = start(make_instance, [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"], outbound=None,
                     queue_extra='retry_schedule = ["1h"]')
        qid = inst.send(SENDER, [RCPT], "reload while delivering")
        assert first.accepted.wait(10), "the delivery never reached the first relay host"
        reload_to_mandatory_then(inst, qid, first.release)
        assert not second.saw_mail_from(), f"delivered under the superseded config: {second.all_commands()}"


def test_reload_while_connecting_starts_no_transaction_under_the_old_config(make_instance):
    """The same, when the only relay host then answers 220 (a slow greeting, not a refusal): the
    connection set up under the old config carries no mail (QUIT before MAIL FROM); the new
    pass, under the mandatory profile, finds no STARTTLS there -> 4.7.4, nothing sent."""
    hold = threading.Event()
    with ScriptedPeer(starttls=False, greeting_hold=hold) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound=None, queue_extra='retry_schedule = ["1h"]')
        qid = inst.send(SENDER, [RCPT], "reload while connecting")
        peer.wait_connections(1)
        reload_to_mandatory_then(inst, qid, hold.set)
        assert not peer.saw_mail_from(), f"mail sent under the superseded config: {peer.all_commands()}"
        assert "QUIT" in peer.connections[0].verbs(), peer.connections[0].commands


def test_reload_during_a_forced_pass_still_retries_now(make_instance):
    """`queue retry` forces a pass for a recipient whose retry is an hour away; a reload while
    that pass waits for the greeting ends it before MAIL FROM (as above). The new pass is not
    forced, yet must still attempt the recipient at once: the admin's retry is not lost to the
    reload (before, the recipient went back to waiting for its hour)."""
    hold = threading.Event()
    hold.set()  # the first connection answers at once (421: deferred for an hour)
    with ScriptedPeer(starttls=False, greeting_codes=(421, 220), greeting_hold=hold) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound=None, queue_extra='retry_schedule = ["1h"]')
        qid = inst.send(SENDER, [RCPT], "reload during a forced pass")
        ev = inst.wait_events("delivery", 1, id=qid)[0]
        assert ev["result"] == "deferred", ev
        hold.clear()  # the next connection waits for its greeting
        assert inst.queue_cli("retry", qid).returncode == 0
        peer.wait_connections(2)
        inst.write_config(inst.config.read_text() + "\n# reloaded\n")
        inst.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(inst.events("reload")) == 1, what="reload logged")
        hold.set()
        ev = inst.wait_events("delivery", 2, id=qid, timeout=15)[1]
        assert ev["result"] == "sent", ev
        assert inst.events("delivery_replanned", id=qid), inst.log()[-3000:]
        assert "QUIT" in peer.connections[1].verbs() and "MAIL" not in peer.connections[1].verbs(), \
            peer.connections[1].commands
        inst.stop()
        assert [rcpts for _f, rcpts, _d, _t in peer.messages] == [[RCPT]]


@pytest.mark.parametrize("how", ["one message", "two messages"])
def test_names_checked_for_each_recipient_domain(make_instance, pki, how):
    """verify = "ca+name" without peer_names: the certificate must name the host or the
    recipient domain (SPEC §1.3). The peer's names internal.test only, so second.test's mail
    must not be delivered to it - neither in internal.test's transaction nor over the
    connection parked after internal.test's message."""
    with peer_for(pki, "internal") as peer:
        hosts = f"127.0.0.1:{peer.port}"
        inst = start(make_instance, [hosts], ca=pki["ca"], more_domains=relay_domain("second.test", hosts),
                     outbound={"verify": "ca+name", "domains": ("internal.test", "second.test")}, queue_extra='retry_schedule = ["1h"]')
        other = "carol@second.test"
        if how == "one message":
            qid = inst.send(SENDER, [RCPT, other], "two domains")
            ev = {e["to"]: e for e in inst.wait_events("delivery", 2, id=qid)}
            sent, refused = ev[f"<{RCPT}>"], ev[f"<{other}>"]
        else:
            q1 = inst.send(SENDER, [RCPT], "first domain")
            sent = inst.wait_events("delivery", 1, id=q1)[0]
            q2 = inst.send(SENDER, [other], "second domain")
            refused = inst.wait_events("delivery", 1, id=q2)[0]
        assert sent["result"] == "sent" and sent["tls"] == "verified", sent
        assert refused["result"] == "deferred" and refused["dsn"] == "4.7.5", refused
        assert re.search(r"name", refused["reason"], re.I), refused
        inst.stop()
        got = [rcpts for _f, rcpts, _d, _t in peer.messages]
        assert got == [[RCPT]], f"second.test's mail reached a peer whose certificate does not name it: {got}"


# --- a profile matched by destination host (IP, name, "*"), not by recipient domain ------------------


@pytest.mark.parametrize("peer_kind", ["self-signed", "no-starttls"])
@pytest.mark.parametrize("match", ["ip", "name", "any"])
def test_profile_matched_by_destination_host(make_instance, pki, dns, match, peer_kind):
    """SPEC §1.4, outbound selection: recipient domain -> destination host IP -> destination
    host name -> "*". internal.test has no profile of its own; the profile names the relay host
    by IP (127.0.0.1), by name (peer.test, resolved through the test NSD) or as "*", and its
    mandatory TLS with verify = "ca" must hold for the mail: a self-signed peer gets no mail
    (4.7.5), nor does a peer that offers no STARTTLS (4.7.4)."""
    hosts, relay_host = {"ip": (["127.0.0.1"], "127.0.0.1"), "name": (["peer.test"], "peer.test"),
                         "any": (["*"], "127.0.0.1")}[match]
    peer = peer_for(pki, "self") if peer_kind == "self-signed" else ScriptedPeer(starttls=False)
    with peer:
        inst = start(make_instance, [f"{relay_host}:{peer.port}"], outbound={"hosts": hosts, "verify": "ca"},
                     ca=pki["ca"], dns=dns)
        qid = inst.send(SENDER, [RCPT], f"by host {match} {peer_kind}")
        if peer_kind == "self-signed":
            ev = assert_no_mail(inst, peer, qid, "4.7.5", reason=r"certif|verif|self|trust|issuer")
        else:
            ev = assert_no_mail(inst, peer, qid, "4.7.4", reason="TLS required but not offered")
        for e in ev:
            assert e["relay"] == f"{relay_host}[127.0.0.1]:{peer.port}", e


def test_profile_matched_by_destination_host_contrast(make_instance, pki, dns):
    """The same peer and recipient without the host profile: delivered (opportunistic TLS,
    untrusted), so a profile that did not reach the destination would show in the test above."""
    with peer_for(pki, "self") as peer:
        inst = start(make_instance, [f"peer.test:{peer.port}"], outbound=None, ca=pki["ca"], dns=dns)
        qid = inst.send(SENDER, [RCPT], "no host profile")
        msgs = peer.wait_messages(1, timeout=10)
        assert msgs[0][3] is True
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "sent" and e["profile"] == "-" and e["tls"] == "untrusted", e


# --- a connection parked under a weaker policy never carries mandatory mail --------------------------


def test_connection_parked_for_opportunistic_mail_is_not_reused_for_mandatory(make_instance, pki):
    """One self-signed peer is the relay for plain.test (no profile: opportunistic, delivered
    with tls=untrusted, the session parked for reuse, SPEC §3.4) and for internal.test (profile
    verify = "ca" with the test CA, which did not sign the peer's certificate). internal.test's
    mail must not go over the parked session: a fresh connection fails verification, the
    recipient is deferred with 4.7.5, and the peer never sees internal.test's MAIL."""
    with peer_for(pki, "self") as peer:
        hosts = f"127.0.0.1:{peer.port}"
        inst = start(make_instance, [hosts], outbound={"verify": "ca"}, ca=pki["ca"],
                     more_domains=relay_domain("plain.test", hosts), queue_extra='retry_schedule = ["1h"]')
        plain = "carol@plain.test"
        q1 = inst.send(SENDER, [plain], "plain one")
        e1 = inst.wait_events("delivery", 1, id=q1)[0]
        assert e1["result"] == "sent" and e1["profile"] == "-" and e1["tls"] == "untrusted", e1
        q2 = inst.send(SENDER, [plain], "plain two")
        e2 = inst.wait_events("delivery", 1, id=q2)[0]
        assert e2["result"] == "sent" and e2["tls"] == "untrusted", e2
        # the premise: plain.test's session was parked and reused
        assert len(peer.connections) == 1 and len(peer.messages) == 2, [c.commands for c in peer.connections]

        q3 = inst.send(SENDER, [RCPT], "mandatory after plain")
        e3 = inst.wait_events("delivery", 1, id=q3)[0]
        assert e3["result"] == "deferred" and e3["dsn"] == "4.7.5" and e3["profile"] == PROFILE, e3
        assert re.search(r"certif|verif|self|trust|issuer", e3["reason"], re.I), e3
        m = queue_entry(inst, q3)
        assert [r["status"] for r in m["recipients"]] == ["deferred"], m
        inst.stop()
        got = [rcpts for _f, rcpts, _d, _t in peer.messages]
        assert got == [[plain], [plain]], f"internal.test's mail went over a session it did not check: {got}"
        first = peer.connections[0]
        assert sum(1 for v in first.verbs() if v == "MAIL") == 2, first.commands
        assert not any(RCPT in cmd for cmd, _ in first.commands), first.commands
        assert len(peer.connections) >= 2, [c.commands for c in peer.connections]
        for c in peer.connections[1:]:
            assert not FORBIDDEN & set(c.verbs()), f"mail transaction on a rejected connection: {c.commands}"


# --- min_cipher_bits -----------------------------------------------------------------------------------

# The peers' certificates are ECDSA P-256 (make_cert); the RSA names are there in case that changes.
AES128 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
AES256 = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"


@pytest.mark.parametrize("ciphers,ok", [(AES128, False), (AES256, True)])
def test_min_cipher_bits(make_instance, pki, ciphers, ok):
    """min_cipher_bits = 256 against a TLS 1.2 peer that offers only AES-128-GCM: no mail
    (4.7.5, the cipher strength named); the same peer offering AES-256-GCM gets the message."""
    with peer_for(pki, "internal", tls_max_version="1.2", ciphers=ciphers) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={"min_cipher_bits": 256})
        qid = inst.send(SENDER, [RCPT], f"cipher bits {ok}")
        if ok:
            e = assert_delivered_tls(inst, peer, qid, proto="TLSv1.2")
            assert "AES256-GCM" in e["cipher"], e
        else:
            ev = assert_no_mail(inst, peer, qid, "4.7.5", reason=r"cipher strength 128 bits below the required 256")
            assert all("AES128-GCM" in e["cipher"] for e in ev), ev
            assert all(c.tls_version == "TLSv1.2" for c in peer.connections), \
                [(c.tls_version, c.tls_error) for c in peer.connections]


# --- a handshake that never completes (delivery.command_timeout) ------------------------------------


STALL = '[delivery]\ncommand_timeout = "1s"\n'


def test_handshake_timeout_mandatory_defers(make_instance, pki):
    """The peer answers 220 to STARTTLS and then never reads the ClientHello: the handshake
    times out (delivery.command_timeout), nothing is sent, and mandatory TLS defers with 4.7.5
    naming the timeout, on every attempt."""
    with peer_for(pki, "internal", tls_mode="stall") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={}, extra=STALL,
                     tls_extra='handshake_retry_delay = "1s"')
        qid = inst.send(SENDER, [RCPT], "stalled handshake")
        assert_no_mail(inst, peer, qid, "4.7.5", attempts=2, reason=r"handshake.*tim(ed )?out")
        for c in peer.connections:  # STARTTLS on every connection: no plaintext reconnect
            assert c.verbs() == ["EHLO", "STARTTLS"], c.commands


def test_handshake_timeout_opportunistic_defers_then_falls_back(make_instance, pki):
    """SPEC §1.1: a timeout during the handshake is a failed handshake. Without a profile, the
    first attempt defers (nothing sent); the second fails again and delivers without TLS in that
    same attempt (tls=fallback)."""
    with peer_for(pki, "internal", tls_mode="stall") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound=None, extra=STALL,
                     tls_extra='handshake_retry_delay = "1s"')
        qid = inst.send(SENDER, [RCPT], "stalled opportunistic")
        first = inst.wait_events("delivery", 1, id=qid, timeout=10)[0]
        assert first["result"] == "deferred" and first["attempt"] == "1", first
        assert first["dsn"].startswith("4.") and re.search(r"tim(ed )?out", first["reason"], re.I), first
        assert not peer.saw_mail_from(), peer.all_commands()
        msgs = peer.wait_messages(1, timeout=15)
        assert msgs[0][3] is False and msgs[0][1] == [RCPT]
        e = inst.wait_events("delivery", 1, id=qid, result="sent")[0]
        assert e["attempt"] == "2" and e["tls"] == "fallback" and e["profile"] == "-", e
        conns = peer.connections
        assert len(conns) == 3, [c.commands for c in conns]
        assert conns[0].verbs() == ["EHLO", "STARTTLS"] and conns[1].verbs() == ["EHLO", "STARTTLS"], \
            [c.commands for c in conns]
        assert "STARTTLS" not in conns[2].verbs(), conns[2].commands


# --- verify = "dane": not implemented, so every session under it is refused -------------------------


def test_verify_dane_refuses_even_a_valid_named_certificate(make_instance, pki):
    """DANE (RFC 7672) is not implemented: a session under verify = "dane" can never be shown to
    meet it, so even a CA-signed peer that names the recipient domain gets no mail (4.7.5)."""
    with peer_for(pki, "internal") as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={"verify": "dane"}, ca=pki["ca"])
        qid = inst.send(SENDER, [RCPT], "dane")
        assert_no_mail(inst, peer, qid, "4.7.5", reason=r"DANE")


# --- the end of a rejected TLS session (RFC 8446 6.1) ---------------------------------------------


def test_a_rejected_tls_session_ends_with_quit_and_close_notify(make_instance, pki):
    """A TLS 1.2 peer under min_tls_version = "1.3": the session is rejected after the
    handshake, QUIT goes inside it, and then the close_notify alert (RFC 8446 6.1: each party
    MUST send one before closing its write side). Before, the TCP connection was closed after
    the QUIT without it (the peer saw an EOF in violation of the protocol)."""
    with peer_for(pki, "internal", tls_max_version="1.2", quit_reply=False) as peer:
        inst = start(make_instance, [f"127.0.0.1:{peer.port}"], outbound={"min_tls_version": "1.3"})
        qid = inst.send(SENDER, [RCPT], "rejected session")
        assert_no_mail(inst, peer, qid, "4.7.5", attempts=1)
        c = peer.connections[0]
        wait_until(lambda: c.closed_after_quit is not None, what="the rejected session closed")
        assert c.tls and c.commands[-1] == ("QUIT", True), c.commands
        assert c.close_notify is True, "closed without a TLS close_notify"
