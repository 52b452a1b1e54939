"""tests/e2e/test_protocol.py - the SMTP dialogue on the wire (SPEC §2; RFC 5321, 2920, 3030,
6531): bad commands, error limit, garbage, pipelining, BDAT, SMTP smuggling, SMTPUTF8, a
client that vanishes mid-DATA, RCPT TO:<Postmaster>, a repeated recipient, and an EHLO name
that tries to forge clauses of the Received: header."""
import random
import re
import time

import pytest

from conftest import ConnectionClosed, RawSMTP, as_maildir, qid_of, wait_until


def test_unknown_and_out_of_sequence_commands(postern):
    with postern.smtp() as c:
        r = c.cmd("FROBNICATE now")
        assert r.code == 500 and r.last.startswith("5.5.2"), r
        r = c.cmd("MAIL FROM:<a@example.test>")  # before EHLO
        assert r.code == 503 and r.last.startswith("5.5.1"), r
        c.ehlo()
        r = c.cmd("RCPT TO:<bob@localhost>")  # before MAIL
        assert r.code == 503 and r.last.startswith("5.5.1"), r
        r = c.cmd("DATA")  # before MAIL
        assert r.code == 503, r
        r = c.cmd("MAIL FROM:<a b@example.test>")
        assert r.code == 501, r
        r = c.cmd("MAIL FROM:<@@>")
        assert r.code == 501, r
        r = c.cmd("MAIL FROM:a@example.test>")
        assert r.code == 501, r
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd("MAIL FROM:<a@example.test>")  # nested
        assert r.code == 503, r
        r = c.cmd("RCPT TO:<bob@@localhost>")
        assert r.code == 501, r
        r = c.cmd("RCPT TO:<>")
        assert r.code == 501, r
        r = c.cmd("VRFY bob")
        assert r.code == 252 and r.last.startswith("2.0.0 "), r  # RFC 3463: X.5.2 is "syntax error"
        assert c.cmd("NOOP").code == 250
        # the transaction survived the errors
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: after errors\r\n\r\nx\r\n.\r\n")
        qid_of(c.read_reply())
        r = c.cmd("QUIT")
        assert r.code == 221
        assert c.wait_closed(3) == b""
    assert postern.wait_maildir("bob")
    with postern.smtp() as c:
        assert c.cmd("HELP").code == 214
        r = c.cmd("EXPN staff")
        assert r.code == 502, r
        r = c.cmd(b"NOOP \x00x")
        assert r.code == 500 and r.last.startswith("5.5.2"), r
        r = c.cmd("RSET now")
        assert r.code == 501, r
        assert c.cmd("noop").code == 250  # verbs are case-insensitive
        assert c.cmd("ehlo lower.test").code == 250


def test_overlong_command_line_500_and_session_continues(make_instance):
    inst = make_instance(server_extra="max_line_length = 512")
    with inst.smtp() as c:
        c.ehlo()
        r = c.cmd("NOOP " + "x" * 1000)
        assert r.code == 500 and r.last.startswith("5.5.2"), r
        # exactly one reply for the long line, then normal service
        assert c.nothing_received(0.3)
        r = c.cmd("MAIL FROM:<" + "a" * 600 + "@example.test>")
        assert r.code == 500 and r.last.startswith("5.5.2"), r
        # a long line read in several pieces, under the cap of (max_errors + 1) x 512 octets
        # (at least 16 KiB) past which the session would close, is still just one 500
        c.send(b"HELO " + b"h" * 15000 + b"\r\n")
        r = c.read_reply()
        assert r.code == 500 and r.last.startswith("5.5.2"), r
        assert c.nothing_received(0.3)
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: long\r\n\r\nx\r\n"))
        # a line of exactly the limit (incl. CRLF) is accepted
        line = "NOOP " + "y" * (512 - len("NOOP ") - 2)
        assert len(line) + 2 == 512
        assert c.cmd(line).code == 250
    assert inst.wait_maildir("bob")


def test_too_many_errors_421_and_close(make_instance):
    inst = make_instance(server_extra="max_errors = 3")
    with inst.smtp() as c:
        c.ehlo()
        for i in range(3):
            r = c.cmd(f"BOGUS{i}")
            assert r.code == 500, (i, r)
        # one more bad command exceeds the limit: its reply, then 421 and the close
        c.send(b"BOGUS3\r\n")
        replies = []
        for _ in range(2):
            replies.append(c.read_reply())
        assert replies[0].code == 500, replies
        assert replies[1].code == 421 and replies[1].last.startswith("4.7.0"), replies
        assert c.wait_closed(3) == b""
    with inst.smtp() as c:  # others are still served
        assert c.ehlo().code == 250


def test_binary_garbage_does_not_crash(postern):
    rnd = random.Random(1234)
    for i in range(5):
        with RawSMTP(postern.host, postern.port) as c:
            blob = bytes(rnd.randrange(256) for _ in range(20000)) + b"\x00\r\n\xff\xfe\r\n" * 50
            try:
                c.send(blob)
                c.wait_closed(5)  # the error limit closes the session
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                pass
    # a TLS ClientHello to the plaintext port, and an HTTP request
    with RawSMTP(postern.host, postern.port) as c:
        c.send(bytes.fromhex("16030100f4010000f00303") + bytes(rnd.randrange(256) for _ in range(200)) + b"\r\n")
        r = c.read_reply()  # whatever it is, it is a well-formed SMTP reply
        assert r.code >= 500, r
    with RawSMTP(postern.host, postern.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_reply()
        assert r.code in (221, 421, 500), r
    assert postern.alive
    with postern.smtp() as c:
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: after garbage\r\n\r\nx\r\n"))
    assert postern.wait_maildir("bob")
    assert postern.alive


def test_pipelined_transaction_replies_in_order(postern):
    with postern.smtp() as c:
        c.send(b"EHLO pipe.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<bob@localhost>\r\n"
               b"RCPT TO:<nobody@elsewhere.test>\r\nRCPT TO:<carol@localhost>\r\nDATA\r\n")
        ehlo = c.read_reply()
        assert ehlo.code == 250 and ehlo.lines[0] == "mx.postern.test" and "PIPELINING" in ehlo.lines
        codes = [c.read_reply().code for _ in range(5)]
        assert codes == [250, 250, 554, 250, 354], codes
        c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.test>\r\n"
               b"RCPT TO:<dave@localhost>\r\nDATA\r\n")
        qid_of(c.read_reply())
        assert [c.read_reply().code for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: second\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        qid_of(c.read_reply())
        assert c.read_reply().code == 221
    for u in ("bob", "carol"):
        assert b"Subject: pipelined" in postern.wait_maildir(u)[0]
    assert b"Subject: second" in postern.wait_maildir("dave")[0]


def test_bdat_two_chunks_byte_exact(make_instance):
    """The queue file holds the content byte for byte (held, to read it; the maildir file's LF
    line ends would not show a CR lost); released, it lands in the maildir with LF ends."""
    postern = make_instance(queue_extra="hold = true")
    content = (b"Subject: chunked\r\nX-Test: bdat\r\n\r\n"
               b".leading dot is not unstuffed\r\n..two dots stay two\r\n"
               b"a line\r\n.\r\nafter a lone dot\r\n")
    first, second = content[:40], content[40:]
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test> BODY=8BITMIME", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.send(b"BDAT %d\r\n" % len(first) + first)
        r = c.read_reply()
        assert r.code == 250 and r.last.startswith("2.0.0"), r
        c.send(b"BDAT %d LAST\r\n" % len(second) + second)
        qid = qid_of(c.read_reply())
        assert c.cmd("QUIT").code == 221
    received, stored = postern.held_content()[qid]
    assert f"id {qid}".encode() in received and received.endswith(b"\r\n")
    assert stored == content
    postern.release_held()
    msg = postern.wait_maildir("bob")[0]
    head, _, rest = msg.partition(b"Received: ")
    assert head == b"Return-Path: <a@example.test>\nDelivered-To: bob@localhost\n"
    received_end = rest.index(b"\nSubject: chunked")
    assert f"id {qid}".encode() in rest[:received_end]
    assert rest[received_end + 1:] == as_maildir(content)


def test_bdat_zero_last_and_pipelined(make_instance):
    postern = make_instance(queue_extra="hold = true")
    content = b"Subject: zero last\r\n\r\nbody\r\n"
    with postern.smtp() as c:
        c.send(b"EHLO b.test\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<bob@localhost>\r\n"
               + b"BDAT %d\r\n" % len(content) + content + b"BDAT 0 LAST\r\n")
        assert [c.read_reply().code for _ in range(4)] == [250, 250, 250, 250]
        qid = qid_of(c.read_reply())
    assert postern.held_content()[qid][1] == content
    postern.release_held()
    assert postern.wait_maildir("bob")[0].endswith(as_maildir(content))


SMUGGLE_TAIL = b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\nSubject: evil\r\n\r\nsmuggled\r\n"


@pytest.mark.parametrize("fake_end", [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"],
                         ids=["lf-dot-lf", "cr-dot-cr", "lf-dot-crlf", "crlf-dot-lf", "crlf-dot-cr"])
def test_smtp_smuggling_is_content(postern, fake_end):
    body = b"Subject: innocent\r\n\r\nhello" + fake_end + SMUGGLE_TAIL
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<alice@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(body + b".\r\n")
        r = c.read_reply()
        qid_of(r)
        # exactly one reply for the whole thing: nothing smuggled was executed
        assert c.nothing_received(0.5), c.buf
        assert c.cmd("QUIT").code == 221
    msgs = postern.wait_maildir("bob")
    time.sleep(0.3)
    assert len(postern.maildir_messages("bob")) == 1
    assert postern.maildir_messages("victim") == []
    msg = msgs[0]
    assert msg.endswith(as_maildir(b"Subject: innocent\r\n\r\nhello\r\n.\r\n" + SMUGGLE_TAIL)), msg
    # every line end was stored as CRLF, and so is LF in the maildir file: no CR is left
    assert b"\r" not in msg, msg
    assert postern.log().count(" queued ") == 1


def test_smuggled_bare_line_ends_are_stored_as_crlf(make_instance):
    """README: a bare LF or bare CR is stored as CRLF. The maildir file has LF line ends, where
    a bare LF stored as such would not show: the queue file of a held message shows it."""
    inst = make_instance(queue_extra="hold = true")
    for fake_end in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"):
        with inst.smtp() as c:
            c.ehlo()
            qid = qid_of(c.send_mail("alice@example.test", ["bob@localhost"],
                                     b"Subject: innocent\r\n\r\nhello" + fake_end + SMUGGLE_TAIL))
        received, content = inst.held_content()[qid]
        assert content == b"Subject: innocent\r\n\r\nhello\r\n.\r\n" + SMUGGLE_TAIL, (fake_end, content)
        stored = received + content
        assert stored.count(b"\n") == stored.count(b"\r\n") and stored.count(b"\r") == stored.count(b"\r\n")


def test_dot_stuffing_is_removed_in_data(postern):
    with postern.smtp() as c:
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"],
                           b"Subject: dots\r\n\r\n..one dot\r\n...two\r\n.\r\n"[:-3]))
    assert postern.wait_maildir("bob")[0].endswith(b"\n\n.one dot\n..two\n")


def test_smtputf8_local_part(postern):
    user = "J\u00f6rg"
    with postern.smtp() as c:
        ehlo = c.ehlo()
        assert "SMTPUTF8" in ehlo.lines
        # without SMTPUTF8: refused
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd(f"RCPT TO:<{user}@localhost>".encode())
        assert r.code == 553 and r.last.startswith("5.6.7"), r
        c.expect("RSET", 250)
        r = c.cmd("MAIL FROM:<s\u00e9nder@example.test>".encode())
        assert r.code == 553 and r.last.startswith("5.6.7"), r
        # with SMTPUTF8: accepted and delivered
        c.expect("MAIL FROM:<s\u00e9nder@example.test> SMTPUTF8".encode(), 250)
        c.expect(f"RCPT TO:<{user}@localhost>".encode(), 250)
        c.expect("DATA", 354)
        c.send("Subject: gr\u00fc\u00dfe\r\n\r\nh\u00e9llo\r\n.\r\n".encode())
        qid_of(c.read_reply())
    msg = postern.wait_maildir("j\u00f6rg")[0]
    assert f"Delivered-To: {user}@localhost\n".encode() in msg
    assert b"with UTF8SMTP id" in msg  # RFC 6531 3.7.3
    assert "Return-Path: <s\u00e9nder@example.test>".encode() in msg
    assert msg.endswith("h\u00e9llo\n".encode())


def test_client_disconnects_mid_data(postern):
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: cut\r\n\r\n" + b"partial line\r\n" * 100 + b"no end")
    postern.wait_log(" disconnect ")
    time.sleep(0.3)
    assert postern.maildir_messages("bob") == []
    for area in ("queue", "hold", "tmp"):
        assert postern.spool_files(area) == [], area
    with postern.smtp() as c:
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: whole\r\n\r\nx\r\n"))
    msgs = postern.wait_maildir("bob")
    assert len(msgs) == 1 and b"Subject: whole" in msgs[0]


def test_client_disconnects_mid_bdat(postern):
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.send(b"BDAT 1000 LAST\r\n" + b"z" * 500)
    wait_until(lambda: " disconnect " in postern.log(), what="disconnect logged")
    time.sleep(0.3)
    assert postern.maildir_messages("bob") == []
    assert all(postern.spool_files(a) == [] for a in ("queue", "hold", "tmp"))
    assert postern.alive


def test_smtputf8_non_ascii_upper_case_is_lower_cased(postern):
    # README: the maildir folder is the local part lower-cased, so "\u00c9mile" and "\u00e9mile"
    # are one mailbox, exactly like "Bob" and "bob".
    with postern.smtp() as c:
        c.ehlo()
        for user in ("\u00c9mile", "\u00e9mile"):
            c.expect("MAIL FROM:<a@example.test> SMTPUTF8", 250)
            c.expect(f"RCPT TO:<{user}@localhost>".encode(), 250)
            c.expect("DATA", 354)
            c.send(f"Subject: to {user}\r\n\r\nx\r\n.\r\n".encode())
            qid_of(c.read_reply())
    msgs = postern.wait_maildir("\u00e9mile", count=2)
    assert len(msgs) == 2
    assert not (postern.dir / "var/mail/localhost/\u00c9mile").exists()


def test_utf8_validation_of_addresses(postern):
    with postern.smtp() as c:
        c.ehlo()
        r = c.cmd(b"MAIL FROM:<\xff\xfe@example.test> SMTPUTF8")  # not UTF-8
        assert r.code == 501, r
        c.expect("MAIL FROM:<a@example.test> SMTPUTF8", 250)
        for bad in (b"\xc0\xaf", b"\xed\xa0\x80", b"\xc3"):  # overlong, surrogate, truncated
            r = c.cmd(b"RCPT TO:<" + bad + b"@localhost>")
            assert r.code == 501, (bad, r)
    assert postern.alive


def test_concurrent_clients_all_delivered_once(postern):
    import smtplib
    import threading

    from conftest import tls_client_context
    errors = []

    def client(t):
        try:
            with smtplib.SMTP(postern.host, postern.port, timeout=20) as s:
                s.ehlo("c%d.test" % t)
                if t % 2:
                    s.starttls(context=tls_client_context())
                    s.ehlo("c%d.test" % t)
                for i in range(5):
                    s.sendmail("a@example.test", ["bob@localhost", "carol@localhost"],
                               f"Subject: c{t}-m{i}\r\n\r\nbody {t} {i}\r\n".encode())
        except Exception as e:  # reported below
            errors.append((t, repr(e)))

    threads = [threading.Thread(target=client, args=(t,)) for t in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    expected = {f"c{t}-m{i}".encode() for t in range(10) for i in range(5)}
    for user in ("bob", "carol"):
        msgs = postern.wait_maildir(user, count=50, timeout=20)
        subjects = [m.split(b"\nSubject: ")[1].split(b"\n")[0] for m in msgs]
        assert sorted(subjects) == sorted(expected), user
    wait_until(lambda: postern.spool_files("queue") == [], what="queue empty")


def test_helo_and_null_sender(postern):
    with postern.smtp() as c:
        r = c.cmd("HELO old.test")
        assert r.code == 250 and r.lines == ["mx.postern.test"], r
        r = c.cmd("MAIL FROM:<> SIZE=100")  # no ESMTP parameters after HELO
        assert r.code == 555, r
        c.expect("MAIL FROM:<>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n")
        qid = qid_of(c.read_reply())
    msg = postern.wait_maildir("bob")[0]
    assert msg.startswith(b"Return-Path: <>\nDelivered-To: bob@localhost\n")
    assert f"by mx.postern.test (Postern) with SMTP id {qid}".encode() in msg


def random_lines(seed, size):
    rnd = random.Random(seed)
    alphabet = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789.-_=:\t\xc3\xa9"
    out = bytearray(b"Subject: large %d\r\n\r\n" % seed)
    while len(out) < size:
        n = rnd.choice([0, 1, 2, 40, 76, 200, 998])
        line = bytes(rnd.choice(alphabet) for _ in range(n))
        if rnd.random() < 0.1:
            line = b"." + line[:997]
        out += line + b"\r\n"
    return bytes(out)


def dot_stuff(content):
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in content.split(b"\r\n"))


@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "tls"])
def test_large_messages_byte_exact_data_and_bdat(make_instance, use_tls):
    """Both stored byte for byte: the queue files (held, to read them) hold what was sent, CRLF
    line ends included (the maildir file's LF ends would not show a CR lost on the way);
    released, both land in the maildir with LF ends."""
    postern = make_instance(queue_extra="hold = true")
    data_content = random_lines(1, 1_500_000)
    bdat_content = random_lines(2, 1_200_000)
    with postern.smtp(timeout=30) as c:
        c.ehlo()
        if use_tls:
            c.starttls()
            c.ehlo()
        c.expect("MAIL FROM:<a@example.test> BODY=8BITMIME", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        stuffed = dot_stuff(data_content)
        for i in range(0, len(stuffed), 7777):  # odd-sized writes
            c.send(stuffed[i:i + 7777])
        c.send(b".\r\n")
        data_qid = qid_of(c.read_reply())
        c.expect("MAIL FROM:<a@example.test> BODY=8BITMIME", 250)
        c.expect("RCPT TO:<carol@localhost>", 250)
        sizes = [1, 65536, 300001]
        pos = 0
        for n in sizes:
            c.send(b"BDAT %d\r\n" % n + bdat_content[pos:pos + n])
            assert c.read_reply().code == 250
            pos += n
        rest = bdat_content[pos:]
        c.send(b"BDAT %d LAST\r\n" % len(rest) + rest)
        bdat_qid = qid_of(c.read_reply())
    held = postern.held_content()
    assert held[data_qid][1] == data_content, "DATA content not stored byte for byte"
    assert held[bdat_qid][1] == bdat_content, "BDAT content not stored byte for byte"
    postern.release_held()
    assert postern.wait_maildir("bob", timeout=20)[0].endswith(b"\n" + as_maildir(data_content))
    assert postern.wait_maildir("carol", timeout=20)[0].endswith(b"\n" + as_maildir(bdat_content))


def our_received(msg):
    """The Received: header Postern prepended (after Return-Path and Delivered-To), unfolded."""
    lines = msg.split(b"\n")
    start = next(i for i, l in enumerate(lines) if l.startswith(b"Received: "))
    end = start + 1
    while lines[end][:1] in (b"\t", b" "):
        end += 1
    return b" ".join(l.strip() for l in lines[start:end])


def test_bare_postmaster_is_this_servers_postmaster(postern):
    """RFC 5321 4.1.1.3 / 4.5.1: RCPT TO:<Postmaster> without a domain MUST be accepted. The
    e2e config's hostname (mx.postern.test) is not a hosted domain: the mail goes to the
    postmaster of the first hosted domain, localhost (it used to be refused 554 5.7.1)."""
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<Postmaster>", 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(b"Subject: to the postmaster\r\n\r\nx\r\n.\r\n")
        qid = qid_of(c.read_reply())
    msg = postern.wait_maildir("postmaster")[0]
    assert msg.startswith(b"Return-Path: <a@example.test>\nDelivered-To: Postmaster@localhost\n"), msg[:200]
    assert f"id {qid} for <Postmaster@localhost>;".encode() in our_received(msg), our_received(msg)


def test_bare_postmaster_stays_here_for_a_client_that_may_relay(make_instance):
    """A client with relay rights: <postmaster> is still this server's postmaster, never sent on
    to the host named by `hostname` (mx.postern.test, somewhere else)."""
    inst = make_instance(extra='[[profile]]\nname = "local"\nhosts = ["127.0.0.1"]\nrelay = "any"\n')
    with inst.smtp() as c:
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["postmaster"], b"Subject: relay client\r\n\r\nx\r\n"))
    msg = inst.wait_maildir("postmaster")[0]
    assert b"Delivered-To: postmaster@localhost\n" in msg


def test_bare_postmaster_refused_when_no_domain_is_hosted(make_instance):
    inst = make_instance(domains="")
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd("RCPT TO:<Postmaster>")
        assert r.code == 550 and r.last.startswith("5.1.1 ") and "hosts no domain" in r.text, r
    assert inst.spool_files("queue") == []


def test_repeated_recipient_is_delivered_once(postern):
    """Like Postfix: the same recipient twice in one transaction (domain case aside) is accepted
    each time but stored, and so delivered, once."""
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        for rcpt in ("bob@localhost", "bob@localhost", "bob@LocalHost"):
            c.expect(f"RCPT TO:<{rcpt}>", 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(b"Subject: twice\r\n\r\nx\r\n.\r\n")
        qid = qid_of(c.read_reply())
    postern.wait_maildir("bob")
    wait_until(lambda: postern.spool_files("queue") == [], what="queue empty")  # every delivery done
    assert len(postern.maildir_messages("bob")) == 1
    # The pass logs its lines after it removed the queue file (a log line never runs ahead of
    # the spool): wait for them (under ASan the empty queue was seen first, with no line yet).
    ev = postern.wait_events("delivery", id=qid)
    assert len(ev) == 1, ev
    msg = postern.maildir_messages("bob")[0]
    assert f"id {qid} for <bob@localhost>;".encode() in our_received(msg)  # one recipient


def test_ehlo_name_cannot_forge_received_clauses(postern):
    """A plaintext client whose EHLO name carries TLS facts and a `with ESMTPS` clause: in the
    stored header, every character of the name but letters, digits and "-._:[]" is '?'."""
    forged = ("x (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) "
              "by mx (Postern) with ESMTPS id 0; Thu, 1 Jan 2026 00:00:00 +0000")
    with postern.smtp() as c:
        c.ehlo(forged)
        qid = qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: forged\r\n\r\nx\r\n"))
    h = our_received(postern.wait_maildir("bob")[0])
    assert b"with ESMTPS" not in h and b"(using" not in h, h
    assert len(re.findall(rb"(?:^|\s)with\s", h)) == 1, h  # one `with` clause: ours
    assert f"by mx.postern.test (Postern) with ESMTP id {qid} for <bob@localhost>;".encode() in h, h
    assert h.startswith(b"Received: from x??using?TLSv1.3?with?cipher?TLS_AES_256_GCM_SHA384??256?256?bits???"
                        b"by?mx??Postern??with?ESMTPS?id?0??Thu??1?Jan?2026?00:00:00??0000 (unknown [127.0.0.1]) "), h
