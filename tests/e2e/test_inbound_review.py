"""tests/e2e/test_inbound_review.py - inbound defects found by review, against the real binary:
sender-specified routing through a relayed hosted domain (SPEC §2, relay control); BDAT lines
the parser refuses, BDAT after HELO (RFC 3030); `with ESMTPS` after HELO in TLS (RFC 3848); what
of a UTF-8 EHLO name reaches the Received: header (RFC 6532); one recipient under several
spellings is stored, and delivered, once."""
from conftest import relay_domain

# example.test is relayed onward to an internal server (never reached here: every test stops
# at RCPT); localhost is delivered into a maildir.
DOMAINS = relay_domain("example.test", "127.0.0.1:9") + '[[domain]]\nname = "localhost"\nmaildir = "var/mail/localhost"\n'
ROUTING = ("victim%external.test", '"victim@external.test"', "external.test!victim")


def test_sender_specified_routing_refused_for_a_relayed_domain(make_instance):
    inst = make_instance(domains=DOMAINS)
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@sender.test>", 250)
        for local in ROUTING:
            r = c.expect(f"RCPT TO:<{local}@example.test>", 554, "5.7.1")
            assert "sender-specified routing" in r.last, r
        c.expect("RCPT TO:<bob@example.test>", 250)
        # a maildir domain delivers here: the local part is a folder name, nothing routes on it
        for local in ROUTING:
            c.expect(f"RCPT TO:<{local}@localhost>", 250)


def test_sender_specified_routing_accepted_from_a_client_that_may_relay(make_instance):
    profile = '[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n'
    inst = make_instance(domains=DOMAINS, extra=profile)
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@sender.test>", 250)
        for local in ROUTING:
            c.expect(f"RCPT TO:<{local}@example.test>", 250)


def test_bdat_with_a_bad_marker_has_its_chunk_read_not_executed(postern):
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@sender.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        r = c.cmd("BDAT 6 FIRST\r\nQUIT")  # the chunk is "QUIT\r\n"
        assert r.code == 501 and r.last.startswith("5.5.4"), r
        assert c.nothing_received()  # no 221: the QUIT was content
        c.expect("NOOP", 250)
        c.expect("RSET", 250)


def test_bdat_size_past_64_bits_closes_the_session(postern):
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@sender.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.send("BDAT 99999999999999999999999 LAST\r\nRSET\r\nMAIL FROM:<evil@x.test>\r\n")
        r = c.read_reply()
        assert r.code == 552 and r.last.startswith("5.3.4") and "closing connection" in r.last, r
        assert c.wait_closed() == b""  # nothing after it was run as a command
    assert "evil@x.test" not in postern.log()


def test_bdat_after_helo_refused_and_its_chunk_read(postern):
    with postern.smtp() as c:
        c.expect("HELO client.test", 250)
        c.expect("MAIL FROM:<a@sender.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        r = c.cmd("BDAT 6 LAST\r\nQUIT")
        assert r.code == 503 and "send EHLO first" in r.last, r
        assert c.nothing_received()
        c.expect("DATA", 354)
        c.send("Subject: helo\r\n\r\nafter a refused BDAT\r\n.\r\n")
        assert c.read_reply().code == 250
    assert b"after a refused BDAT" in postern.wait_maildir("bob")[0]


def test_helo_over_starttls_is_received_with_esmtps(postern):
    with postern.smtp() as c:
        c.expect("HELO client.test", 250)
        c.starttls()
        c.expect("HELO client.test", 250)
        r = c.send_mail("a@sender.test", ["carol@localhost"], b"Subject: helo tls\r\n\r\nx\r\n")
        assert r.code == 250, r
    msg = postern.wait_maildir("carol")[0]
    assert b"(using TLSv1." in msg
    assert b") with ESMTPS id " in msg and b" SMTPS" not in msg, msg


def test_utf8_ehlo_name_keeps_only_visible_valid_characters_in_received(postern):
    # U+2603 has no A-label form, so the name is written as sent; U+202E (right-to-left
    # override) would show the rest of the line reversed, \xff is not UTF-8.
    with postern.smtp() as c:
        c.expect(b"EHLO " + "\u2603a\u202eb\u00e9.test".encode() + b"\xff", 250)
        c.expect("MAIL FROM:<a@sender.test> SMTPUTF8", 250)
        c.expect("RCPT TO:<dora@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: utf8\r\n\r\nx\r\n.\r\n")
        assert c.read_reply().code == 250
    msg = postern.wait_maildir("dora")[0]
    assert "Received: from \u2603a?b\u00e9.test? (unknown [127.0.0.1])".encode() in msg, msg


def test_one_mailbox_under_several_spellings_gets_one_copy(postern):
    with postern.smtp() as c:
        c.ehlo()
        r = c.send_mail("a@sender.test", ['"erin"@localhost', "Erin@localhost", '"E\\rin"@LOCALHOST', "erin@localhost"],
                        b"Subject: once\r\n\r\nx\r\n")
        assert r.code == 250, r
    postern.wait_log("result=sent")
    msgs = postern.maildir_messages("erin")
    assert len(msgs) == 1, msgs
    assert msgs[0].startswith(b'Return-Path: <a@sender.test>\nDelivered-To: "erin"@localhost\n'), msgs[0][:200]
