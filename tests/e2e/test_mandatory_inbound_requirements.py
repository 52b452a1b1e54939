"""tests/e2e/test_mandatory_inbound_requirements.py - the requirements an inbound connection
profile states (SPEC §1.2-1.3), end to end against the real binary: verify = "ca+name" with
peer_names (exact, leftmost-label wildcard, CN only without a SAN), min_tls_version,
min_cipher_bits, client certificate dates under verify = "ca", no clientAuth EKU demanded.

A session that does not meet its profile completes the handshake and then gets
`554 5.7.0 <the unmet requirement>` to every command but QUIT (RFC 3207 4.1; SPEC also allows a
failed handshake, which Postern does only to a client below TLS 1.2: its listener never
negotiates less). Every refusal is checked on the wire (code,
enhanced code, text) and by nothing stored: no spool file in any area, no maildir message, no
`queued` log event. Each test ends with the same profile accepting a conforming client, so a
refusal cannot come from a profile that refuses everything."""
import datetime
import socket
import ssl
import threading
import warnings

from conftest import RawSMTP
from inbound_refusal import assert_every_command_refused, assert_nothing_stored, start_tls
from peers import make_ca, make_cert

BODY = b"Subject: inbound requirements\r\n\r\nhello\r\n"
HOST = "127.0.0.5"  # the profile's client address; RawSMTP binds to it with source=


def profile(name, inbound, hosts=(HOST,)):
    return (f'[[profile]]\nname = "{name}"\nhosts = [' + ", ".join(f'"{h}"' for h in hosts) + "]\n"
            f'[profile.inbound]\ntls = "mandatory"\n{inbound}\n')


def ca_profile(name, ca, verify="ca", names=(), hosts=(HOST,)):
    inbound = f'verify = "{verify}"\nca_file = "{ca["ca"]}"'
    if names:
        inbound += "\npeer_names = [" + ", ".join(f'"{n}"' for n in names) + "]"
    return profile(name, inbound, hosts)


def refused_session(inst, reason, **tls):
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        start_tls(c, **tls)
        assert_every_command_refused(c, reason)
    assert_nothing_stored(inst)


def accepted_session(inst, count, **tls):
    """Delivers one message over TLS from the profile's address; returns the stored message
    and the negotiated (version, cipher, bits)."""
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        negotiated = start_tls(c, **tls)
        c.ehlo("client.partner.test")
        r = c.send_mail("alice@partner.test", ["bob@localhost"], BODY)
        assert r.code == 250 and r.last.startswith("2.0.0 Ok: queued as"), r
        assert c.cmd("QUIT").code == 221
    msgs = inst.wait_maildir("bob", count)
    assert len(msgs) == count
    assert len(inst.wait_events("queued", count)) == count  # what assert_nothing_stored looks for
    return msgs[-1], negotiated


# --- verify = "ca+name" ---------------------------------------------------------------------


def test_ca_name_accepts_only_a_certificate_naming_a_peer_name(make_instance, tmp_path):
    ca = make_ca(tmp_path)
    good = make_cert(tmp_path, ca, names=("client.partner.test",), stem="good", eku="clientAuth")
    other = make_cert(tmp_path, ca, names=("other.test",), stem="other", eku="clientAuth")
    inst = make_instance(extra=ca_profile("names", ca, "ca+name", ["client.partner.test"]))

    # CA-signed, in date, but naming other.test: every command but QUIT refused, naming why
    refused_session(inst, "certificate name mismatch: expected client.partner.test", cert=other)
    ev = inst.wait_events("tls_policy", verdict="refused")
    assert len(ev) == 1, ev
    assert ev[0]["profile"] == "names" and ev[0]["level"] == "ca+name", ev[0]
    assert ev[0]["reason"] == "certificate name mismatch: expected client.partner.test", ev[0]

    msg, _ = accepted_session(inst, 1, cert=good)
    assert b"with ESMTPS" in msg
    assert inst.wait_events("tls_policy", verdict="ok", profile="names")


def test_ca_name_refuses_the_right_name_from_an_untrusted_ca(make_instance, tmp_path):
    ca = make_ca(tmp_path)
    rogue_ca = make_ca(tmp_path, cn="Rogue CA", stem="rogue")
    rogue = make_cert(tmp_path, rogue_ca, names=("client.partner.test",), stem="rogue-leaf", eku="clientAuth")
    selfsigned = make_cert(tmp_path, None, names=("client.partner.test",), stem="self", eku="clientAuth")
    good = make_cert(tmp_path, ca, names=("client.partner.test",), stem="good", eku="clientAuth")
    inst = make_instance(extra=ca_profile("names", ca, "ca+name", ["client.partner.test"]))
    refused_session(inst, "certificate verification failed: ", cert=rogue)
    refused_session(inst, "certificate verification failed: ", cert=selfsigned)
    accepted_session(inst, 1, cert=good)


def test_ca_name_wildcard_matches_the_leftmost_label_only(make_instance, tmp_path):
    """peer_names = ["*.partner.test"]: RFC 6125 6.4.3, one label, the leftmost."""
    ca = make_ca(tmp_path)
    deep = make_cert(tmp_path, ca, names=("a.b.partner.test",), stem="deep")
    bare = make_cert(tmp_path, ca, names=("partner.test",), stem="bare")
    suffix = make_cert(tmp_path, ca, names=("mx1.notpartner.test",), stem="suffix")
    mx1 = make_cert(tmp_path, ca, names=("mx1.partner.test",), stem="mx1")
    inst = make_instance(extra=ca_profile("wild", ca, "ca+name", ["*.partner.test"]))
    for cert in (deep, bare, suffix):
        refused_session(inst, "certificate name mismatch: expected *.partner.test", cert=cert)
    assert len(inst.wait_events("tls_policy", 3, verdict="refused", profile="wild")) == 3
    accepted_session(inst, 1, cert=mx1)


def test_ca_name_common_name_counts_only_without_san(make_instance, tmp_path):
    """RFC 6125 6.4.4 / SPEC §1.3: the CN is a name only when there is no SAN dNSName."""
    ca = make_ca(tmp_path)
    san_other = make_cert(tmp_path, ca, names=("other.test",), cn="client.partner.test", stem="san-other")
    cn_only = make_cert(tmp_path, ca, names=(), cn="client.partner.test", stem="cn-only")
    inst = make_instance(extra=ca_profile("names", ca, "ca+name", ["client.partner.test"]))
    refused_session(inst, "certificate name mismatch: expected client.partner.test", cert=san_other)
    accepted_session(inst, 1, cert=cn_only)


# --- min_tls_version / min_cipher_bits --------------------------------------------------------


def test_min_tls_version_1_3_refuses_a_tls_1_2_client(make_instance):
    inst = make_instance(extra=profile("tls13", 'min_tls_version = "1.3"'))
    # The handshake itself succeeds (the listener allows TLS 1.2); the session is refused.
    refused_session(inst, "TLS version TLSv1.2 below the required 1.3", max_version=ssl.TLSVersion.TLSv1_2)
    ev = inst.wait_events("tls_policy", verdict="refused", profile="tls13")
    assert ev[0]["reason"] == "TLS version TLSv1.2 below the required 1.3", ev[0]
    msg, (version, _, _) = accepted_session(inst, 1, max_version=ssl.TLSVersion.TLSv1_3)
    assert version == "TLSv1.3"
    assert b"using TLSv1.3" in msg


def tls11_client_context():
    """A client that offers TLS 1.0-1.1 only, with every cipher OpenSSL has (security level 0:
    OpenSSL 3 refuses TLS below 1.2 at the default level)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("@SECLEVEL=0:ALL")
    return ctx


def tls11_handshake_works(inst):
    """(client's, server's) negotiated version, or the error: ("TLSv1.1", "TLSv1.1") when the
    client of tls11_client_context() completes a TLS 1.1 handshake with a server that allows it
    (Python's ssl, the instance's certificate). So a failed handshake with Postern is Postern
    refusing TLS 1.1, not a client unable to speak it."""
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        srv.minimum_version = ssl.TLSVersion.TLSv1
    srv.set_ciphers("@SECLEVEL=0:ALL")
    srv.load_cert_chain(inst.dir / "var/tls/cert.pem", inst.dir / "var/tls/key.pem")
    a, b = socket.socketpair()
    a.settimeout(10)
    b.settimeout(10)
    result = {}

    def serve():
        try:
            with srv.wrap_socket(b, server_side=True) as s:
                result["server"] = s.version()
        except (OSError, ssl.SSLError) as e:
            result["server"] = repr(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with tls11_client_context().wrap_socket(a) as s:
            version = s.version()
    except (OSError, ssl.SSLError) as e:
        version = repr(e)
    finally:
        t.join(10)
    return (version, result.get("server"))


def test_default_min_tls_version_refuses_a_tls_1_1_client(make_instance):
    """SPEC §1.3: min_tls_version defaults to "1.2", inbound too. A mandatory profile matched
    by IP that sets no requirement at all gets a client that can only speak TLS 1.1: the
    handshake fails (Postern's listener never negotiates below 1.2), or, if it completes, every
    command but QUIT is refused with `554 5.7.0 TLS version TLSv1.1 below the required 1.2`;
    either way nothing is stored. A TLS 1.2 client from the same address is then served, so the
    refusal is the version's. Fails if a TLS 1.1 session can hand over mail under a mandatory
    profile with the default minimum (e.g. the listener accepting TLS 1.0/1.1 for profiles that
    allow it, with the default not applied), and - by the self-check - if the client could not
    speak TLS 1.1 in the first place."""
    inst = make_instance(extra=profile("defaults", ""))
    assert tls11_handshake_works(inst) == ("TLSv1.1", "TLSv1.1"), "this client cannot make a TLS 1.1 handshake"
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        c.expect("STARTTLS", 220, "2.0.0")
        try:
            c.sock = tls11_client_context().wrap_socket(c.sock)
        except (ssl.SSLError, OSError) as e:
            handshake_error = e
        else:
            handshake_error = None
            assert c.sock.version() == "TLSv1.1", c.sock.version()
            assert_every_command_refused(c, "TLS version TLSv1.1 below the required 1.2")
    if handshake_error is not None:
        # the server's answer (a protocol_version alert, logged as tls_failed), not a hang
        assert not isinstance(handshake_error, TimeoutError), handshake_error
        assert inst.wait_events("tls_failed", profile="defaults")
    assert_nothing_stored(inst)
    _, (version, _, _) = accepted_session(inst, 1, max_version=ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"


def test_min_cipher_bits_256_refuses_aes128(make_instance):
    inst = make_instance(extra=profile("strong", "min_cipher_bits = 256"))
    # `postern init` makes an ECDSA P-256 certificate; the RSA names are there in case it changes.
    aes128 = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
    aes256 = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        version, cipher, bits = start_tls(c, max_version=ssl.TLSVersion.TLSv1_2, ciphers=aes128)
        assert (version, bits) == ("TLSv1.2", 128) and "AES128-GCM" in cipher, (version, cipher, bits)
        assert_every_command_refused(c, "cipher strength 128 bits below the required 256")
    assert_nothing_stored(inst)
    ev = inst.wait_events("tls_policy", verdict="refused", profile="strong")
    assert ev[0]["reason"] == "cipher strength 128 bits below the required 256", ev[0]

    msg, (version, cipher, bits) = accepted_session(inst, 1, max_version=ssl.TLSVersion.TLSv1_2, ciphers=aes256)
    assert (version, bits) == ("TLSv1.2", 256) and "AES256-GCM" in cipher, (version, cipher, bits)
    assert b"(256/256 bits)" in msg


# --- verify = "ca": dates, and no clientAuth EKU demanded ---------------------------------------


def test_ca_refuses_an_expired_or_not_yet_valid_client_certificate(make_instance, tmp_path):
    ca = make_ca(tmp_path)
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    expired = make_cert(tmp_path, ca, names=("client.partner.test",), stem="expired", eku="clientAuth",
                        not_before=now - 10 * day, not_after=now - day)
    future = make_cert(tmp_path, ca, names=("client.partner.test",), stem="future", eku="clientAuth",
                       not_before=now + day, not_after=now + 10 * day)
    current = make_cert(tmp_path, ca, names=("client.partner.test",), stem="current", eku="clientAuth")
    inst = make_instance(extra=ca_profile("dated", ca))
    refused_session(inst, "certificate verification failed: certificate has expired", cert=expired)
    ev = inst.wait_events("tls_policy", verdict="refused", profile="dated")
    assert ev[0]["reason"] == "certificate verification failed: certificate has expired", ev[0]
    refused_session(inst, "certificate verification failed: certificate is not yet valid", cert=future)
    accepted_session(inst, 1, cert=current)


def test_ca_does_not_demand_the_client_auth_eku(make_instance, tmp_path):
    """SPEC §1.3 / verify.cpp: mail servers reuse one certificate both ways and many carry only
    serverAuth; the chain and the dates are still checked for such a certificate."""
    ca = make_ca(tmp_path)
    rogue_ca = make_ca(tmp_path, cn="Rogue CA", stem="rogue")
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    server_only = make_cert(tmp_path, ca, names=("mx.partner.test",), stem="server-only", eku="serverAuth")
    no_eku = make_cert(tmp_path, ca, names=("mx.partner.test",), stem="no-eku", eku=None)
    expired = make_cert(tmp_path, ca, names=("mx.partner.test",), stem="expired", eku="serverAuth",
                        not_before=now - 10 * day, not_after=now - day)
    untrusted = make_cert(tmp_path, rogue_ca, names=("mx.partner.test",), stem="untrusted", eku="serverAuth")
    inst = make_instance(extra=ca_profile("eku", ca))
    refused_session(inst, "certificate verification failed: certificate has expired", cert=expired)
    refused_session(inst, "certificate verification failed: ", cert=untrusted)
    accepted_session(inst, 1, cert=server_only)
    accepted_session(inst, 2, cert=no_eku)
    assert len(inst.events("tls_policy", verdict="ok", profile="eku")) == 2


# --- a profile matched by sender domain: its requirements at MAIL FROM ---------------------------


def sender_profile(name, senders, inbound):
    return (f'[[profile]]\nname = "{name}"\nsender_domains = [' + ", ".join(f'"{d}"' for d in senders) + "]\n"
            f'[profile.inbound]\ntls = "mandatory"\n{inbound}\n')


def test_sender_domain_profile_refuses_a_session_below_its_requirements(make_instance):
    """SPEC §1.2: "a profile matched by sender domain enforces this at MAIL FROM", §1.3's
    requirements included. The client's address matches no profile, so EHLO and STARTTLS are
    served; a TLS 1.2 session then sends MAIL FROM a partner.test address, and the profile's
    min_tls_version = "1.3" refuses it (554 5.7.0 naming the requirement). Nothing is stored.
    The same kind of session with another sender domain is accepted, and so is a TLS 1.3
    session from partner.test, so the refusal comes from the requirement and nothing else."""
    inst = make_instance(extra=sender_profile("by-sender", ["partner.test"], 'min_tls_version = "1.3"'))
    reason = "TLS version TLSv1.2 below the required 1.3"
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        version, _, _ = start_tls(c, max_version=ssl.TLSVersion.TLSv1_2)
        assert version == "TLSv1.2"
        c.ehlo("client.partner.test")  # no profile by address or name: the session itself is fine
        r = c.cmd("MAIL FROM:<a@partner.test>")
        assert r.code == 554 and r.last == "5.7.0 " + reason, r
        for cmd in ("RCPT TO:<bob@localhost>", "DATA"):  # no transaction was opened
            r = c.cmd(cmd)
            assert r.code == 503, (cmd, r)
        c.send(b"BDAT 5 LAST\r\nhello")
        r = c.read_reply()
        assert r.code == 503, ("BDAT", r)
        assert c.cmd("QUIT").code == 221
        c.wait_closed()
    assert_nothing_stored(inst)
    ev = inst.wait_events("tls_policy", verdict="refused")
    assert len(ev) == 1, ev
    assert ev[0]["profile"] == "by-sender" and ev[0]["reason"] == reason, ev[0]
    rejects = inst.events("reject")
    assert any("MAIL FROM:<a@partner.test>: 554 5.7.0" in e["reply"] for e in rejects), rejects

    # the same kind of session (TLS 1.2) with a sender the profile does not name: accepted
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        start_tls(c, max_version=ssl.TLSVersion.TLSv1_2)
        c.ehlo("client.other.test")
        r = c.send_mail("a@other.test", ["bob@localhost"], BODY)
        assert r.code == 250 and r.last.startswith("2.0.0 Ok: queued as"), r
        assert c.cmd("QUIT").code == 221
    assert len(inst.wait_maildir("bob", 1)) == 1

    # partner.test over TLS 1.3 meets the profile: accepted, and the verdict is logged
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        version, _, _ = start_tls(c, max_version=ssl.TLSVersion.TLSv1_3)
        assert version == "TLSv1.3"
        c.ehlo("client.partner.test")
        r = c.send_mail("a@partner.test", ["bob@localhost"], BODY)
        assert r.code == 250 and r.last.startswith("2.0.0 Ok: queued as"), r
        assert c.cmd("QUIT").code == 221
    msgs = inst.wait_maildir("bob", 2)
    assert [b"using TLSv1.3" in m for m in msgs].count(True) == 1, msgs
    assert inst.wait_events("tls_policy", verdict="ok", profile="by-sender")


def test_sender_refused_then_another_sender_logs_the_session_tls_of_its_own(make_instance):
    """A sender-domain profile's verdict belongs to that transaction: after MAIL FROM a
    partner.test address is refused (TLS 1.2 below the profile's 1.3), the same session's next
    MAIL FROM another domain is accepted, and its `queued` line says tls=untrusted (a TLS
    session, not checked), not the earlier transaction's "refused"."""
    inst = make_instance(extra=sender_profile("by-sender", ["partner.test"], 'min_tls_version = "1.3"'))
    with RawSMTP(inst.host, inst.port, source=HOST) as c:
        c.ehlo()
        start_tls(c, max_version=ssl.TLSVersion.TLSv1_2)
        c.ehlo("client.other.test")
        r = c.cmd("MAIL FROM:<a@partner.test>")
        assert r.code == 554, r
        r = c.send_mail("a@other.test", ["bob@localhost"], BODY)
        assert r.code == 250 and r.last.startswith("2.0.0 Ok: queued as"), r
        assert c.cmd("QUIT").code == 221
    queued = inst.wait_events("queued")
    assert len(queued) == 1 and queued[0]["tls"] == "untrusted" and queued[0]["profile"] == "-", queued
    assert inst.wait_events("tls_policy", verdict="refused")


# --- relay rights: the sender domain never grants them ------------------------------------------


def test_sender_domain_profile_with_relay_any_grants_no_relay(make_instance):
    """SPEC §1.4/§2: relay = "any" applies to the profile's hosts; anyone can claim a sender
    domain, so a profile matched by sender domain only does not make Postern a relay.
    (tests/e2e/test_relay_profile.py covers the profile's hosts relaying and others not.)"""
    inst = make_instance(extra='[[profile]]\nname = "partner"\nhosts = ["127.0.0.5"]\n'
                               'sender_domains = ["partner.test"]\nrelay = "any"\n')
    with RawSMTP(inst.host, inst.port, source="127.0.0.6") as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@partner.test>").code == 250
        r = c.cmd("RCPT TO:<x@remote.test>")
        assert r.code == 554 and r.last.startswith("5.7.1 ") and "Relay access denied" in r.last, r
        c.cmd("QUIT")
    assert_nothing_stored(inst)
    with RawSMTP(inst.host, inst.port, source=HOST) as c:  # the profile's own host may relay
        c.ehlo()
        assert c.cmd("MAIL FROM:<alice@partner.test>").code == 250
        assert c.cmd("RCPT TO:<x@remote.test>").code == 250
        c.cmd("QUIT")
