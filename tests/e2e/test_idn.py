"""tests/e2e/test_idn.py - internationalized domains (RFC 6531 3.2) and address limits, against
the real binary.

A U-label domain ("bücher.test") and its A-label ("xn--bcher-kva.test") name the same domain:
the configuration writes A-labels, SMTPUTF8 clients may write either, and Postern must match
and route both the same way - inbound (hosted [[domain]], sender-domain profiles) and outbound
(MX lookup, recipient-domain profiles) - while the envelope keeps the address as written.
Also: local parts over 64 octets (SRS senders, RFC 5321 4.5.3.1) and RFC 1870's 20-digit
SIZE values. Clients are smtplib (SMTPUTF8) and the raw-socket client from conftest; the
next hops are scripted peers and a real DNS server (NSD).
"""
import smtplib
import subprocess
import time

import pytest

from conftest import POSTERN, as_maildir, qid_of, relay_domain, route
from dns_server import DnsServer
from peers import ScriptedPeer, envelope_sender

ULABEL = "b\u00fccher.test"
ALABEL = "xn--bcher-kva.test"
BODY = b"Subject: idn\r\n\r\nhello\r\n"
RELAY_ANY = '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n'


def hosted_maildir(name, folder):
    return f'[[domain]]\nname = "{name}"\nmaildir = "var/mail/{folder}"\n'


def nothing_stored(inst, folder="localhost"):
    return inst.spool_files("queue") == [] and inst.maildir_messages("bob", folder) == []


# --- inbound: hosted domains and sender-domain profiles --------------------------------------


def test_hosted_a_label_domain_takes_u_label_recipient_into_maildir(make_instance):
    """[[domain]] name = the A-label: RCPT TO:<bob@bücher.test> is for it (was 554 5.7.1 relay
    access denied), in either case; the message keeps the recipient as written."""
    inst = make_instance(domains=hosted_maildir(ALABEL, "buecher"))
    with smtplib.SMTP(inst.host, inst.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("smtputf8")
        refused = s.sendmail("alice@example.test", [f"bob@{ULABEL}", "carol@B\u00dcCHER.test"], BODY,
                             mail_options=["SMTPUTF8"])
        assert refused == {}
    bob = inst.wait_maildir("bob", domain="buecher")
    assert f"Delivered-To: bob@{ULABEL}\n".encode() in bob[0]
    carol = inst.wait_maildir("carol", domain="buecher")
    assert "Delivered-To: carol@B\u00dcCHER.test\n".encode() in carol[0]
    assert bob[0].endswith(as_maildir(BODY))


def test_hosted_a_label_domain_relays_u_label_recipient_as_written(make_instance):
    """[[domain]] with relay_to: accepted, and the internal server gets RCPT TO with the
    U-label (the message stays SMTPUTF8); both spellings are one recipient."""
    with ScriptedPeer(starttls=False, extra_ehlo=("SMTPUTF8",)) as peer:
        inst = make_instance(domains=relay_domain(ALABEL, f"127.0.0.1:{peer.port}"))
        with inst.smtp() as c:
            c.ehlo()
            c.expect("MAIL FROM:<alice@example.test> SMTPUTF8", 250)
            c.expect(f"RCPT TO:<bob@{ULABEL}>".encode(), 250, "2.1.5")
            c.expect(f"RCPT TO:<bob@{ALABEL.upper()}>", 250, "2.1.5")  # the same recipient
            c.expect("DATA", 354)
            c.send(BODY + b".\r\n")
            qid = qid_of(c.read_reply())
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "sent", e
        mail_from, rcpts, _data, _tls = peer.messages[0]
        assert rcpts == [f"bob@{ULABEL}"], rcpts
        assert "SMTPUTF8" in mail_from.upper(), mail_from


def test_u_label_domains_go_as_a_labels_to_a_next_hop_without_smtputf8(make_instance):
    """RFC 6531 3.2: the next hop does not offer SMTPUTF8 and the only non-ASCII parts are the
    domains: the message goes with the A-labels and no SMTPUTF8 parameter (was bounced 5.6.7).
    A UTF-8 local part still cannot go there: that recipient bounces 5.6.7."""
    with ScriptedPeer(starttls=False) as peer:
        inst = make_instance(domains=relay_domain(ALABEL, f"127.0.0.1:{peer.port}"))
        with inst.smtp() as c:
            c.ehlo()
            c.expect(f"MAIL FROM:<alice@{ULABEL}> SMTPUTF8".encode(), 250)
            c.expect(f"RCPT TO:<bob@{ULABEL}>".encode(), 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(BODY + b".\r\n")
            qid = qid_of(c.read_reply())
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "sent", e
        mail_from, rcpts, data, _tls = peer.messages[0]
        assert rcpts == [f"bob@{ALABEL}"], rcpts
        assert envelope_sender(mail_from) == f"alice@{ALABEL}", mail_from
        assert "SMTPUTF8" not in mail_from.upper(), mail_from
        assert data.endswith(BODY), data

        with inst.smtp() as c:
            c.ehlo()
            c.expect("MAIL FROM:<alice@example.test> SMTPUTF8", 250)
            c.expect(f"RCPT TO:<b\u00f6b@{ULABEL}>".encode(), 250, "2.1.5")
            c.expect("DATA", 354)
            c.send(BODY + b".\r\n")
            qid = qid_of(c.read_reply())
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "bounced" and e["dsn"] == "5.6.7", e
        # Postern's own refusal: no reply code the server never sent; the server named
        assert e["reason"] == (f"SMTPUTF8 required but not supported by the server "
                               f"(127.0.0.1[127.0.0.1]:{peer.port}; nothing sent)"), e
        assert len(peer.messages) == 1


def sender_profile(domains):
    return ('[[profile]]\nname = "by-sender"\nsender_domains = [' + ", ".join(f'"{d}"' for d in domains) +
            ']\n[profile.inbound]\ntls = "mandatory"\n')


def test_sender_profile_in_a_label_form_refuses_u_label_sender_in_plaintext(make_instance):
    """A sender-domain profile with mandatory inbound TLS, written with the A-label, applies to
    MAIL FROM:<a@bücher.test> SMTPUTF8 over plaintext: 530 5.7.0 (was 250: a bypass), for any
    case of the U-label; nothing is stored. After STARTTLS the same sender is accepted."""
    inst = make_instance(extra=sender_profile([ALABEL]))
    with inst.smtp() as c:
        c.ehlo()
        for sender in (f"a@{ULABEL}", "a@B\u00dcCHER.TEST", f"a@{ALABEL}"):
            r = c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8".encode())
            assert r.code == 530 and r.last.startswith("5.7.0"), (sender, r)
            r = c.cmd("RCPT TO:<bob@localhost>")
            assert r.code == 503, r  # no transaction was started
        r = c.cmd("DATA")
        assert r.code == 503, r
    time.sleep(0.3)
    assert nothing_stored(inst)
    with smtplib.SMTP(inst.host, inst.port, timeout=10) as s:
        s.starttls()
        s.ehlo("client.test")
        assert s.sendmail(f"a@{ULABEL}", ["bob@localhost"], BODY, mail_options=["SMTPUTF8"]) == {}
    msg = inst.wait_maildir("bob")[0]
    assert f"Return-Path: <a@{ULABEL}>".encode() in msg and b"with UTF8SMTPS id" in msg  # RFC 6531 3.7.3


def test_domain_without_a_label_refused_with_553(make_instance):
    """A well-formed UTF-8 domain that IDNA2008 does not allow (a snowman) can be neither matched
    nor routed: 553 5.1.7 at MAIL, 553 5.1.3 at RCPT, with the reason."""
    inst = make_instance()
    with inst.smtp() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@\u2603.test> SMTPUTF8".encode())
        assert r.code == 553 and r.last.startswith("5.1.7"), r
        assert "internationalized domain name" in r.last, r
        c.expect("MAIL FROM:<a@example.test> SMTPUTF8", 250)
        r = c.cmd("RCPT TO:<bob@\u2603.localhost>".encode())
        assert r.code == 553 and r.last.startswith("5.1.3"), r
    assert inst.alive


def test_config_may_write_u_labels(make_instance):
    """The configuration may name a domain with U-labels: it is held as its A-label, so mail to
    either spelling (the A-label needs no SMTPUTF8) lands in its maildir. A name that has no
    A-label form is a FILE:LINE error from check-config."""
    inst = make_instance(domains=hosted_maildir("B\u00fccher.test", "buecher"))
    with smtplib.SMTP(inst.host, inst.port, timeout=10) as s:
        assert s.sendmail("alice@example.test", [f"bob@{ALABEL}"], BODY) == {}
        assert s.sendmail("alice@example.test", [f"bob@{ULABEL}"], BODY, mail_options=["SMTPUTF8"]) == {}
    assert len(inst.wait_maildir("bob", 2, domain="buecher")) == 2
    bad = make_instance(start=False, domains=hosted_maildir("\u2603.test", "snow"))
    r = subprocess.run([POSTERN, "check-config", "-c", str(bad.config)], capture_output=True, text=True)
    assert r.returncode == 2, r
    line = next(i for i, l in enumerate(bad.config.read_text().splitlines(), 1) if "\u2603" in l)
    assert f"{bad.config}:{line}: domain.name: '\u2603.test' is not a valid internationalized domain name" \
        in r.stderr, r.stderr


# --- outbound: MX lookup and recipient-domain profiles -----------------------------------------


@pytest.fixture(scope="module")
def dns():
    with DnsServer(zones={ALABEL: "@ MX 10 mx\nmx A 127.0.0.2\n"}) as d:
        yield d


def test_mx_lookup_uses_the_a_label(make_instance, dns):
    """bob@bücher.test relayed by MX: the MX of xn--bcher-kva.test is asked for and used (the
    DNS holds only the A-label zone); the RCPT TO the MX host gets keeps the U-label."""
    with ScriptedPeer(host="127.0.0.2", starttls=False, extra_ehlo=("SMTPUTF8",)) as mx:
        inst = make_instance(extra=f'[delivery]\nport = {mx.port}\n\n[dns]\nservers = ["{dns.address}"]\n\n' +
                             RELAY_ANY, queue_extra='retry_schedule = ["1h"]')
        with smtplib.SMTP(inst.host, inst.port, timeout=10) as s:
            assert s.sendmail("alice@example.test", [f"bob@{ULABEL}"], BODY, mail_options=["SMTPUTF8"]) == {}
        # The delivery line first: its outcome is known at once (peers.wait_messages would
        # wait out its timeout when nothing comes).
        e = inst.wait_events("delivery", 1, to=f"<bob@{ULABEL}>")[0]
        assert e["result"] == "sent", e
        assert e["relay"] == f"mx.{ALABEL}[127.0.0.2]:{mx.port}", e
        mail_from, rcpts, _data, _tls = mx.messages[0]
        assert envelope_sender(mail_from) == "alice@example.test"
        assert rcpts == [f"bob@{ULABEL}"], rcpts


def test_recipient_domain_profile_in_a_label_form_applies_to_u_label_recipient(make_instance):
    """A recipient-domain profile with mandatory outbound TLS, written with the A-label, holds for
    mail to bob@bücher.test: a smarthost without STARTTLS gets no mail (deferred 4.7.4) - before,
    the profile did not match and the message went out in plaintext."""
    with ScriptedPeer(host="127.0.0.2", starttls=False, extra_ehlo=("SMTPUTF8",)) as peer:
        profile = (f'[[profile]]\nname = "partner"\nrecipient_domains = ["{ALABEL}"]\n'
                   '[profile.outbound]\ntls = "mandatory"\n')
        inst = make_instance(extra=route("*", f"127.0.0.2:{peer.port}") + RELAY_ANY + profile,
                             queue_extra='retry_schedule = ["1h"]')
        with smtplib.SMTP(inst.host, inst.port, timeout=10) as s:
            assert s.sendmail("alice@example.test", [f"bob@{ULABEL}"], BODY, mail_options=["SMTPUTF8"]) == {}
        e = inst.wait_events("delivery", 1, to=f"<bob@{ULABEL}>")[0]
        assert e["result"] == "deferred" and e["dsn"] == "4.7.4", e
        assert e["profile"] == "partner", e
        inst.stop()
        assert not peer.saw_mail_from(), peer.all_commands()
        assert peer.messages == []


# --- limits: local parts over 64 octets, 20-digit SIZE values ----------------------------------


SRS = ("SRS0=HHH=TT=orig-domain.example=some.long.user.name+list-bounces-12345=subscriber.example"
       "@forwarder.test")


def test_srs_sender_with_local_part_over_64_octets_accepted(postern):
    """RFC 5321 4.5.3.1: a ~100-octet SRS sender (local part > 64 octets) is accepted (was
    501 5.1.7) and delivered with its Return-Path intact; so is a long recipient local part."""
    assert len(SRS.split("@")[0]) > 64
    long_rcpt = "bob+" + "x" * 90
    with smtplib.SMTP(postern.host, postern.port, timeout=10) as s:
        assert s.sendmail(SRS, ["bob@localhost", f"{long_rcpt}@localhost"], BODY) == {}
    msg = postern.wait_maildir("bob")[0]
    assert f"Return-Path: <{SRS}>\n".encode() in msg
    assert postern.wait_maildir(long_rcpt)[0].endswith(as_maildir(BODY))


def test_size_value_of_20_digits(postern):
    """RFC 1870: size-value = 1*20DIGIT. 20 nines exceed the limit (552 5.3.4, was 501 5.5.4);
    20 digits with leading zeros are a small size (was 501) and the mail is accepted."""
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test> SIZE=99999999999999999999", 552, "5.3.4")
        c.expect("MAIL FROM:<a@example.test> SIZE=000000000000000000000", 501, "5.5.4")  # 21 digits
        c.expect("MAIL FROM:<a@example.test> SIZE=00000000000000000100", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(BODY + b".\r\n")
        qid_of(c.read_reply())
    assert postern.wait_maildir("bob")[0].endswith(as_maildir(BODY))
