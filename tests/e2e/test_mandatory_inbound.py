"""tests/e2e/test_mandatory_inbound.py - inbound mandatory TLS per connection profile (SPEC
§1.2-1.4): 530 5.7.0 before STARTTLS for clients a profile matches by IP, CIDR, wildcard IP or
sender domain; client-certificate requirements (ca, fingerprint) refused with 554 5.7.0; the
global opportunistic switch off does not stop a mandatory profile from offering STARTTLS.
Every refusal is checked on the wire and by the absence of any queued or delivered message."""
import hashlib
import ssl
import subprocess

from conftest import ConnectionClosed, RawSMTP
from peers import make_test_ca
from inbound_refusal import assert_every_command_refused, assert_nothing_stored

BODY = b"Subject: inbound mandatory\r\n\r\nhello\r\n"


def profile(name, hosts=None, senders=None, inbound='tls = "mandatory"'):
    p = f'[[profile]]\nname = "{name}"\n'
    if hosts:
        p += "hosts = [" + ", ".join(f'"{h}"' for h in hosts) + "]\n"
    if senders:
        p += "sender_domains = [" + ", ".join(f'"{d}"' for d in senders) + "]\n"
    return p + f"[profile.inbound]\n{inbound}\n"


def starttls(c, cert=None, key=None):
    c.expect("STARTTLS", 220, "2.0.0")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    c.sock = ctx.wrap_socket(c.sock)
    return c


def nothing_stored(inst):
    return inst.spool_files("queue") == [] and inst.maildir_messages("bob") == []


def test_mandatory_by_ip_530_before_starttls(make_instance):
    inst = make_instance(extra=profile("by-ip", hosts=["127.0.0.5"]))
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        assert "STARTTLS" in c.ehlo().text
        for cmd in ("MAIL FROM:<a@example.test>", "RCPT TO:<bob@localhost>", "DATA"):
            r = c.cmd(cmd)
            assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), (cmd, r)
        c.send(b"BDAT 3 LAST\r\nabc")  # the chunk is consumed even when refused (RFC 3030)
        r = c.read_reply()
        assert r.code == 530 and r.last.startswith("5.7.0"), r
        starttls(c)
        c.ehlo()
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    assert len(inst.wait_maildir("bob")) == 1
    # another client address is not matched: plaintext is fine
    with RawSMTP(inst.host, inst.port, source="127.0.0.6") as c:
        unmatched = "127.0.0.6:%d" % c.sock.getsockname()[1]
        c.ehlo()
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    assert len(inst.wait_maildir("bob", 2)) == 2
    # the log names the profile per session: by-ip for 127.0.0.5, none ("-") for 127.0.0.6
    ev = inst.wait_events("connect", client=unmatched)
    assert len(ev) == 1 and ev[0]["profile"] == "-" and ev[0]["tls_policy"] == "may", ev
    matched = [e for e in inst.events("connect") if e["client"].startswith("127.0.0.5:")]
    assert len(matched) == 1 and matched[0]["profile"] == "by-ip", matched


def blind_send(inst, source):
    """A client that ignores replies: after EHLO it pipelines MAIL, RCPT, DATA, the message,
    the final dot and QUIT in one write, then reads every reply up to QUIT's 221 (or the close).
    Returns the replies after EHLO's."""
    with RawSMTP(inst.host, inst.port, source=source) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.test>\r\nRCPT TO:<bob@localhost>\r\nDATA\r\n" + BODY + b".\r\nQUIT\r\n")
        replies = []
        while len(replies) < 20:  # bounded: at most one reply per line sent
            try:
                r = c.read_reply()
            except ConnectionClosed:
                break
            replies.append(r)
            if r.code == 221:
                break
        return replies


def test_mandatory_by_cidr_and_wildcard_ip(make_instance):
    """SPEC §1.2/§1.4: a mandatory profile matched by a CIDR block (127.0.3.0/24) or a
    trailing-wildcard IPv4 (127.0.4.*): MAIL, RCPT, DATA and BDAT (a whole message in its chunk)
    each get 530 5.7.0 before STARTTLS, and a client that ignores the refusals and pipelines a
    whole DATA transaction gets 530 for MAIL, RCPT and DATA: nothing is stored. The control: the
    same blind client from 127.0.5.1, which neither block matches, has its message stored - so
    the nothing-stored check can see a message that got through."""
    inst = make_instance(extra=profile("cidr", hosts=["127.0.3.0/24"]) + profile("wild", hosts=["127.0.4.*"]))
    for src in ("127.0.3.9", "127.0.4.200"):
        with RawSMTP(inst.host, inst.port, source=src) as c:
            assert "STARTTLS" in c.ehlo().text, src
            for cmd in ("MAIL FROM:<a@example.test>", "RCPT TO:<bob@localhost>", "DATA"):
                r = c.cmd(cmd)
                assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), (src, cmd, r)
            c.send(b"BDAT %d LAST\r\n" % len(BODY) + BODY)  # the chunk is consumed even when refused
            r = c.read_reply()
            assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), (src, "BDAT", r)
            assert c.cmd("QUIT").code == 221
        replies = blind_send(inst, src)
        assert [r.code for r in replies[:3]] == [530, 530, 530], (src, replies)
        assert all(r.last.startswith("5.7.0 Must issue a STARTTLS command first") for r in replies[:3]), replies
        assert not any(r.code in (250, 354) for r in replies), (src, replies)  # no transaction, no data
        assert replies[-1].code == 221, (src, replies)
        assert_nothing_stored(inst)
    connects = inst.wait_events("connect", 4)  # the four sessions (and the start-up probe)
    assert {e["profile"] for e in connects if e["client"].startswith("127.0.3.9:")} == {"cidr"}, connects
    assert {e["profile"] for e in connects if e["client"].startswith("127.0.4.200:")} == {"wild"}, connects
    # unmatched: the same client sends in plaintext, and its message is stored
    replies = blind_send(inst, "127.0.5.1")
    assert [r.code for r in replies] == [250, 250, 354, 250, 221], replies
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"Subject: inbound mandatory" in msgs[0] and b"ESMTPS" not in msgs[0], msgs


def test_mandatory_by_sender_domain_at_mail_from(make_instance):
    inst = make_instance(extra=profile("by-sender", senders=["partner.test"]))
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<alice@partner.test>")
        assert r.code == 530 and r.last.startswith("5.7.0"), r
        assert c.cmd("MAIL FROM:<alice@other.test>").code == 250  # other senders: plaintext ok
        c.cmd("RSET")
        starttls(c)
        c.ehlo()
        assert c.send_mail("alice@partner.test", ["bob@localhost"], BODY).code == 250
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"ESMTPS" in msgs[0]


def test_opportunistic_off_but_mandatory_profile_still_offers_starttls(make_instance):
    inst = make_instance(tls_extra="opportunistic = false", extra=profile("must", hosts=["127.0.0.5"]))
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        assert "STARTTLS" in c.ehlo().text
        starttls(c)
        c.ehlo()
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    with RawSMTP(inst.host, inst.port, source="127.0.0.6") as c:
        assert "STARTTLS" not in c.ehlo().text
        assert c.cmd("STARTTLS").code == 502


def test_tls_none_profile_turns_starttls_off(make_instance):
    inst = make_instance(extra=profile("plain", hosts=["127.0.0.7"], inbound='tls = "none"'))
    with RawSMTP(inst.host, inst.port, source="127.0.0.7") as c:
        assert "STARTTLS" not in c.ehlo().text
        assert c.cmd("STARTTLS").code == 502


def make_client_cert(d, ca):
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{d}/client.key", "-out", f"{d}/client.csr", "-subj", "/CN=client.partner.test")
    with open(f"{d}/client-ext.cnf", "w") as e:
        e.write("subjectAltName=DNS:client.partner.test\n")  # no clientAuth EKU on purpose
    run("openssl", "x509", "-req", "-in", f"{d}/client.csr", "-CA", ca["ca"], "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-out", f"{d}/client.pem", "-days", "30", "-extfile", f"{d}/client-ext.cnf")
    return f"{d}/client.pem", f"{d}/client.key"


def test_client_certificate_required_and_chain_verified(make_instance, tmp_path):
    ca = make_test_ca(tmp_path)
    cert, key = make_client_cert(tmp_path, ca)
    inst = make_instance(extra=profile("certs", hosts=["127.0.0.5"],
                                       inbound=f'tls = "mandatory"\nverify = "ca"\nca_file = "{ca["ca"]}"'))
    # no client certificate: TLS works, but every command except QUIT gets 554 5.7.0
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        c.ehlo()
        starttls(c)
        r = c.cmd("EHLO client.partner.test")
        assert r.code == 554 and r.last.startswith("5.7.0"), r
        assert c.cmd("MAIL FROM:<a@example.test>").code == 554
        assert c.cmd("QUIT").code == 221
    assert nothing_stored(inst)
    # a certificate from the profile's CA (without the clientAuth EKU): accepted
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        c.ehlo()
        starttls(c, cert, key)
        c.ehlo()
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    assert len(inst.wait_maildir("bob")) == 1


def test_client_certificate_pinned_by_fingerprint(make_instance, tmp_path):
    ca = make_test_ca(tmp_path)
    cert, key = make_client_cert(tmp_path, ca)
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    right = hashlib.sha256(der).hexdigest()
    inst = make_instance(extra=profile("pinned", hosts=["127.0.0.5"],
                                       inbound=f'tls = "mandatory"\nverify = "fingerprint"\n'
                                               f'fingerprints = ["sha256:{right}"]') +
                         profile("wrong-pin", hosts=["127.0.0.6"],
                                 inbound='tls = "mandatory"\nverify = "fingerprint"\n'
                                         f'fingerprints = ["sha256:{"00" * 32}"]'))
    with RawSMTP(inst.host, inst.port, source="127.0.0.6") as c:
        c.ehlo()
        starttls(c, cert, key)
        # EHLO, MAIL, RCPT, DATA, BDAT... all refused, naming the unmet requirement
        assert_every_command_refused(c, "certificate fingerprint does not match any pin")
    assert nothing_stored(inst)
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        c.ehlo()
        starttls(c, cert, key)
        c.ehlo()
        assert c.send_mail("a@example.test", ["bob@localhost"], BODY).code == 250
    assert len(inst.wait_maildir("bob")) == 1


def test_opportunistic_off_mandatory_profile_refuses_plaintext_mail(make_instance):
    """SPEC §1.2: mandatory wins over tls.opportunistic = false - not only is STARTTLS offered
    (the test above): MAIL, RCPT and DATA before STARTTLS get 530 5.7.0 and nothing is stored.
    The control: a client no profile matches sends in plaintext (STARTTLS is off for it)."""
    inst = make_instance(tls_extra="opportunistic = false", extra=profile("must", hosts=["127.0.0.5"]))
    with RawSMTP(inst.host, inst.port, source="127.0.0.5") as c:
        assert "STARTTLS" in c.ehlo().text
        for cmd in ("MAIL FROM:<a@example.test>", "RCPT TO:<bob@localhost>", "DATA"):
            r = c.cmd(cmd)
            assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), (cmd, r)
        assert c.cmd("QUIT").code == 221
    assert nothing_stored(inst)
    with RawSMTP(inst.host, inst.port, source="127.0.0.6") as c:
        assert "STARTTLS" not in c.ehlo().text
        assert c.send_mail("a@example.test", ["bob@localhost"], b"Subject: control\r\n\r\nplain\r\n").code == 250
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"Subject: control" in msgs[0] and b"ESMTPS" not in msgs[0], msgs


def test_mandatory_by_wildcard_sender_domain(make_instance):
    """sender_domains = ["*.partner.test"] (SPEC §1.4; one or more labels in front, never
    partner.test itself): a sender below partner.test gets 530 5.7.0 at MAIL FROM before
    STARTTLS; partner.test itself and another domain are not matched and send in plaintext; a
    matched sender is accepted once TLS is up."""
    inst = make_instance(extra=profile("wild-sender", senders=["*.partner.test"]))
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        for sender in ("a@x.partner.test", "a@y.x.partner.test", "a@X.Partner.Test"):
            r = c.cmd(f"MAIL FROM:<{sender}>")
            assert r.code == 530 and r.last.startswith("5.7.0 Must issue a STARTTLS command first"), (sender, r)
        for sender in ("a@partner.test", "a@x.other.test", "a@xpartner.test"):
            assert c.cmd(f"MAIL FROM:<{sender}>").code == 250, sender
            assert c.cmd("RSET").code == 250
        assert c.send_mail("a@partner.test", ["bob@localhost"], b"Subject: apex\r\n\r\nplain\r\n").code == 250
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"Subject: apex" in msgs[0] and b"ESMTPS" not in msgs[0], msgs
    with RawSMTP(inst.host, inst.port) as c:
        c.ehlo()
        starttls(c)
        c.ehlo()
        assert c.send_mail("a@x.partner.test", ["bob@localhost"], b"Subject: wild\r\n\r\ntls\r\n").code == 250
    msgs = inst.wait_maildir("bob", 2)
    assert len(msgs) == 2 and any(b"Subject: wild" in m and b"ESMTPS" in m for m in msgs), msgs
