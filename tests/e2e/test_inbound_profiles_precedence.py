"""tests/e2e/test_inbound_profiles_precedence.py - which profile's inbound TLS rules apply, in
SPEC §1.4's order: client IP -> client host name -> sender domain at MAIL FROM -> "*".

- A "*" profile applies only where no sender-domain profile matches: when the client matched
  nothing more specific and some profile has sender_domains, the TLS decision (530 before
  STARTTLS, the requirements of a TLS session) is made at MAIL FROM with the sender's domain.
  The null sender has no domain: "*" applies.
- A client matched by IP or name is never under a sender-domain profile, so sender-domain
  profiles switch nothing on for it: its profile's tls = "none" (or the global switch off)
  keeps STARTTLS unadvertised and refused, and no client certificate is asked for.
Every check is made on the wire; a refused session is also checked by nothing stored."""
import subprocess

from conftest import RawSMTP
from inbound_refusal import assert_every_command_refused, assert_nothing_stored, start_tls
from peers import make_ca, make_cert

BODY = b"Subject: precedence\r\n\r\nhello\r\n"


def profile(name, inbound, hosts=None, senders=None):
    p = f'[[profile]]\nname = "{name}"\n'
    if hosts:
        p += "hosts = [" + ", ".join(f'"{h}"' for h in hosts) + "]\n"
    if senders:
        p += "sender_domains = [" + ", ".join(f'"{d}"' for d in senders) + "]\n"
    return p + (f"[profile.inbound]\n{inbound}\n" if inbound else "")


def deliver(c, sender):
    r = c.send_mail(sender, ["bob@localhost"], BODY)
    assert r.code == 250, (sender, r)


def refused(c, sender, code, text):
    r = c.cmd(f"MAIL FROM:<{sender}>")
    assert r.code == code and r.last.startswith("5.7.0 " + text), (sender, r)


# --- a "*" profile does not override a matching sender-domain profile ---------------------------


def star_and_legacy(ca):
    return (profile("everyone", f'tls = "mandatory"\nverify = "ca"\nca_file = "{ca["ca"]}"', hosts=["*"]) +
            profile("legacy", 'tls = "opportunistic"', senders=["legacy.test"]))


def test_star_profile_yields_to_sender_domain_in_plaintext(make_instance, tmp_path):
    inst = make_instance(extra=star_and_legacy(make_ca(tmp_path)))
    with RawSMTP(inst.host, inst.port) as c:
        assert "STARTTLS" in c.ehlo().text
        deliver(c, "a@legacy.test")  # the sender-domain profile: opportunistic, plaintext is fine
        refused(c, "a@other.test", 530, "Must issue a STARTTLS command first")  # "*": mandatory
        refused(c, "", 530, "Must issue a STARTTLS command first")  # null sender: "*"
        assert c.cmd("QUIT").code == 221
    assert len(inst.wait_maildir("bob")) == 1


def test_star_mandatory_refuses_commands_outside_a_transaction_with_530(make_instance, tmp_path):
    """SPEC §1.2: before STARTTLS, MAIL, RCPT, DATA, BDAT and AUTH get 530 5.7.0 under a
    mandatory profile. With a sender-domain profile present, MAIL is decided by its sender's
    domain; RCPT, DATA, BDAT (its chunk read and dropped) and AUTH outside a transaction fall
    under "*" (mandatory here) and get 530, not 503 / 502 (found by review). Inside a transaction
    the sender's opportunistic profile opened, RCPT is accepted; after RSET it is 530 again."""
    inst = make_instance(extra=star_and_legacy(make_ca(tmp_path)))
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        for cmd in ("RCPT TO:<bob@localhost>", "DATA", "AUTH PLAIN"):
            r = c.cmd(cmd)
            assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), (cmd, r)
        c.send(b"BDAT %d LAST\r\n" % len(BODY) + BODY)
        r = c.read_reply()
        assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), ("BDAT", r)
        assert c.cmd("MAIL FROM:<a@legacy.test>").code == 250
        assert c.cmd("RCPT TO:<bob@localhost>").code == 250
        assert c.cmd("RSET").code == 250
        r = c.cmd("RCPT TO:<bob@localhost>")
        assert r.code == 530 and r.last.startswith("5.7.0"), r
        assert c.cmd("QUIT").code == 221
    assert_nothing_stored(inst)


def test_star_profile_yields_to_sender_domain_over_tls(make_instance, tmp_path):
    ca = make_ca(tmp_path)
    client = make_cert(tmp_path, ca, names=("client.partner.test",), stem="client", eku="clientAuth")
    inst = make_instance(extra=star_and_legacy(ca))
    # no client certificate: the session is served; legacy.test mail is accepted, other mail
    # gets the "*" profile's refusal at MAIL FROM
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        start_tls(c)
        r = c.cmd("EHLO client.test")
        assert r.code == 250, r
        deliver(c, "a@legacy.test")
        refused(c, "a@other.test", 554, "no client certificate presented")
        refused(c, "", 554, "no client certificate presented")
        assert c.cmd("QUIT").code == 221
    assert len(inst.wait_maildir("bob")) == 1
    ev = inst.wait_events("tls_policy", verdict="refused")
    assert {e["profile"] for e in ev} == {"everyone"}, ev
    # with a certificate from the "*" profile's CA (asked for at STARTTLS): everyone's mail
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        start_tls(c, client)
        c.ehlo()
        deliver(c, "a@other.test")
        deliver(c, "")
        deliver(c, "a@legacy.test")
        assert c.cmd("QUIT").code == 221
    assert len(inst.wait_maildir("bob", 4)) == 4


def test_sender_domain_certificate_requirement_is_asked_for_at_starttls(make_instance, tmp_path):
    """A sender-domain profile that requires a client certificate: it is requested at STARTTLS
    (the "*" profile needs none), and checked at MAIL FROM."""
    ca = make_ca(tmp_path)
    client = make_cert(tmp_path, ca, names=("client.partner.test",), stem="client", eku="clientAuth")
    inst = make_instance(extra=profile("everyone", 'tls = "opportunistic"', hosts=["*"]) +
                         profile("partner", f'tls = "mandatory"\nverify = "ca"\nca_file = "{ca["ca"]}"',
                                 senders=["partner.test"]))
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        start_tls(c)
        c.ehlo()
        refused(c, "a@partner.test", 554, "no client certificate presented")
        deliver(c, "a@other.test")
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        start_tls(c, client)
        c.ehlo()
        deliver(c, "a@partner.test")
    assert len(inst.wait_maildir("bob", 2)) == 2


def test_star_profile_alone_still_decides_at_connect(make_instance, tmp_path):
    """Without sender-domain profiles nothing can override "*": its requirements are checked
    right after the handshake (SPEC §1.2, RFC 3207 4.1). Before STARTTLS, MAIL, RCPT, DATA and
    BDAT get 530 5.7.0; a TLS session without the client certificate the profile requires gets
    `554 5.7.0 no client certificate presented` to every command but QUIT - EHLO and HELO
    included, so the decision is not put off to MAIL FROM - and a whole message sent by BDAT
    is refused; nothing is stored. The control: a certificate from the profile's CA, same
    profile, and the message is stored, so the refusal is the missing certificate's."""
    ca = make_ca(tmp_path)
    client = make_cert(tmp_path, ca, names=("client.partner.test",), stem="client", eku="clientAuth")
    inst = make_instance(extra=profile("everyone", f'tls = "mandatory"\nverify = "ca"\nca_file = "{ca["ca"]}"',
                                       hosts=["*"]))
    with RawSMTP(inst.host, inst.port) as c:
        assert "STARTTLS" in c.ehlo().text
        for cmd in ("MAIL FROM:<a@legacy.test>", "RCPT TO:<bob@localhost>", "DATA"):
            r = c.cmd(cmd)
            assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), (cmd, r)
        c.send(b"BDAT %d LAST\r\n" % len(BODY) + BODY)  # the chunk is consumed even when refused
        r = c.read_reply()
        assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), ("BDAT", r)
        assert c.cmd("QUIT").code == 221
    assert_nothing_stored(inst)
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        start_tls(c)
        assert_every_command_refused(c, "no client certificate presented", sender="a@legacy.test")
    assert_nothing_stored(inst)
    ev = inst.wait_events("tls_policy", verdict="refused")
    assert len(ev) == 1 and ev[0]["profile"] == "everyone", ev
    assert ev[0]["reason"] == "no client certificate presented", ev[0]
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        start_tls(c, client)
        c.ehlo("client.partner.test")
        deliver(c, "a@legacy.test")
        assert c.cmd("QUIT").code == 221
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"with ESMTPS" in msgs[0], msgs


# --- sender-domain profiles do not switch TLS on for a client matched by IP or name --------------


PLAIN = "127.0.0.7"  # matched by IP to the profile that says tls = "none" / follows the global switch


def test_ip_profile_tls_none_keeps_starttls_off_despite_mandatory_sender_profile(make_instance):
    inst = make_instance(extra=profile("plain", 'tls = "none"', hosts=[PLAIN]) +
                         profile("partner", 'tls = "mandatory"', senders=["p.test"]))
    with RawSMTP(inst.host, inst.port, source=PLAIN) as c:
        assert "STARTTLS" not in c.ehlo().text
        r = c.cmd("STARTTLS")
        assert r.code == 502 and r.last.startswith("5.5.1"), r
        deliver(c, "a@p.test")  # the IP match wins: the sender-domain profile does not apply
    # a client no profile matches by IP: the sender-domain profile applies at MAIL FROM
    with RawSMTP(inst.host, inst.port) as c:
        assert "STARTTLS" in c.ehlo().text
        refused(c, "a@p.test", 530, "Must issue a STARTTLS command first")
    assert len(inst.wait_maildir("bob")) == 1


def test_ip_profile_following_global_off_keeps_starttls_off_despite_mandatory_sender_profile(make_instance):
    inst = make_instance(tls_extra="opportunistic = false",
                         extra=profile("known", None, hosts=[PLAIN]) +
                         profile("partner", 'tls = "mandatory"', senders=["p.test"]))
    with RawSMTP(inst.host, inst.port, source=PLAIN) as c:
        assert "STARTTLS" not in c.ehlo().text
        r = c.cmd("STARTTLS")
        assert r.code == 502 and r.last.startswith("5.5.1"), r
        deliver(c, "a@p.test")
    with RawSMTP(inst.host, inst.port) as c:  # unmatched: STARTTLS for the sender-domain profile
        assert "STARTTLS" in c.ehlo().text
    assert len(inst.wait_maildir("bob")) == 1


def certificate_requested(inst, source):
    """Whether the server asks for a client certificate during STARTTLS, as openssl s_client
    sees it (it prints the CertificateRequest's signature algorithms)."""
    out = subprocess.run(["openssl", "s_client", "-connect", f"{inst.host}:{inst.port}", "-bind", f"{source}:0",
                          "-starttls", "smtp", "-tls1_3"],
                         input=b"QUIT\r\n", capture_output=True, timeout=20).stdout.decode(errors="replace")
    assert "Cipher is" in out or "Cipher    :" in out, out
    return "Requested Signature Algorithms" in out


def test_ip_profile_gets_no_certificate_request_for_a_sender_profile(make_instance, tmp_path):
    ca = make_ca(tmp_path)
    inst = make_instance(extra=profile("known", 'tls = "opportunistic"', hosts=[PLAIN]) +
                         profile("partner", f'tls = "mandatory"\nverify = "ca"\nca_file = "{ca["ca"]}"',
                                 senders=["p.test"]))
    assert not certificate_requested(inst, PLAIN)
    assert certificate_requested(inst, "127.0.0.1")  # unmatched: the sender profile may apply


def test_mandatory_ip_profile_with_verify_none_requests_no_certificate(make_instance, tmp_path):
    """SPEC §1.3, inbound: `verify = "none"` requests no client certificate - on a mandatory
    profile too, where encryption is required but the client's identity is not (the check
    above covers an opportunistic profile only). A mandatory profile matched by IP with
    verify = "none" sends no CertificateRequest, and its client is served without one once
    TLS is up; a mandatory profile with verify = "ca" on another address does send one, so the
    probe can see a request. Fails if a mandatory profile asks every client for a certificate
    (clients that have none may abort or fail the handshake), or if verify = "none" is taken as
    "ca"."""
    ca = make_ca(tmp_path)
    inst = make_instance(extra=profile("encrypt-only", 'tls = "mandatory"\nverify = "none"', hosts=["127.0.0.5"]) +
                         profile("certs", f'tls = "mandatory"\nverify = "ca"\nca_file = "{ca["ca"]}"',
                                 hosts=["127.0.0.6"]))
    assert not certificate_requested(inst, "127.0.0.5")
    assert certificate_requested(inst, "127.0.0.6")
    # the profile is mandatory (530 before STARTTLS), and served over TLS without a certificate
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@example.test>")
        assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), r
        start_tls(c)
        c.ehlo()
        deliver(c, "a@example.test")
        assert c.cmd("QUIT").code == 221
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"with ESMTPS" in msgs[0]
    assert inst.wait_events("tls_policy", verdict="ok", profile="encrypt-only")
