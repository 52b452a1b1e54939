"""tests/e2e/test_limits.py - limits with clear replies (SPEC §2): message size at MAIL and
during DATA/BDAT, relay refusal, recipients, timeouts, connection limits."""
import socket
import time

from conftest import RawSMTP, as_maildir, qid_of, wait_until

LIMIT = 10240


def assert_nothing_stored(inst, users=("bob",)):
    time.sleep(0.3)  # a wrongly accepted message would be delivered within this
    for u in users:
        assert inst.maildir_messages(u) == [], f"{u} got mail"
    for area in ("queue", "tmp", "hold"):
        assert inst.spool_files(area) == [], f"spool/{area} not empty"


def test_size_parameter_over_limit_is_552(make_instance):
    inst = make_instance(server_extra=f"max_message_size = {LIMIT}")
    with inst.smtp() as c:
        ehlo = c.ehlo()
        assert f"SIZE {LIMIT}" in ehlo.lines
        r = c.cmd("MAIL FROM:<a@example.test> SIZE=20000")
        assert r.code == 552 and r.last.startswith("5.3.4"), r
        r = c.cmd("RCPT TO:<bob@localhost>")  # the MAIL was refused: no transaction
        assert r.code == 503, r
        # the session still works; SIZE at the limit is fine
        c.expect(f"MAIL FROM:<a@example.test> SIZE={LIMIT}", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: small\r\n\r\nsmall\r\n.\r\n")
        qid_of(c.read_reply())
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"Subject: small" in msgs[0]


def test_data_over_limit_is_552_and_nothing_stored(make_instance):
    inst = make_instance(server_extra=f"max_message_size = {LIMIT}")
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        line = b"x" * 70 + b"\r\n"
        c.send(b"Subject: big\r\n\r\n" + line * (2 * LIMIT // len(line)) + b".\r\n")
        r = c.read_reply()
        assert r.code == 552 and r.last.startswith("5.3.4"), r
        assert_nothing_stored(inst)
        # the transaction is over; the session is not
        r = c.cmd("RCPT TO:<bob@localhost>")
        assert r.code == 503, r
        reply = c.send_mail("a@example.test", ["bob@localhost"], b"Subject: small\r\n\r\nsmall\r\n")
        qid_of(reply)
    msgs = inst.wait_maildir("bob")
    assert len(msgs) == 1 and b"Subject: small" in msgs[0] and b"Subject: big" not in msgs[0]


def test_bdat_over_limit_is_552_and_nothing_stored(make_instance):
    inst = make_instance(server_extra=f"max_message_size = {LIMIT}")
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        chunk = b"y" * 8000
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        assert c.read_reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        r = c.read_reply()
        assert r.code == 552 and r.last.startswith("5.3.4"), r
        assert_nothing_stored(inst)
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: small\r\n\r\nsmall\r\n"))
    assert len(inst.wait_maildir("bob")) == 1


def test_relay_refused_hosted_accepted(postern):
    with postern.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd("RCPT TO:<x@elsewhere.test>")
        assert r.code == 554 and r.last.startswith("5.7.1"), r
        assert "Relay access denied" in r.last and "x@elsewhere.test" in r.last, r
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: relay\r\n\r\nbody\r\n.\r\n")
        qid = qid_of(c.read_reply())
        # a transaction with only foreign recipients gets nothing queued
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd("RCPT TO:<y@elsewhere.test>")
        assert r.code == 554, r
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
    msg = postern.wait_maildir("bob")[0]
    assert f"id {qid}".encode() in msg and b"Delivered-To: bob@localhost\n" in msg
    wait_until(lambda: postern.spool_files("queue") == [], what="queue empty")
    log = postern.log()
    assert log.count(" queued ") == 1, log
    assert "elsewhere.test" not in "".join(l for l in log.splitlines() if " delivery " in l)


def test_max_recipients_452(make_instance):
    inst = make_instance(server_extra="max_recipients = 2")
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<r1@localhost>", 250)
        c.expect("RCPT TO:<r2@localhost>", 250)
        r = c.cmd("RCPT TO:<r3@localhost>")
        assert r.code == 452 and r.last.startswith("4.5.3"), r
        c.expect("DATA", 354)
        c.send(b"Subject: two\r\n\r\nx\r\n.\r\n")
        qid_of(c.read_reply())
    assert inst.wait_maildir("r1") and inst.wait_maildir("r2")
    time.sleep(0.2)
    assert inst.maildir_messages("r3") == []


def test_excess_recipients_do_not_end_the_session(make_instance):
    # RFC 5321 4.5.3.1.10: 452 tells the client to send the other recipients in a later
    # transaction. A pipelining client that overshoots max_recipients must still get its
    # message through; Postfix-class servers do not count these 452s as client errors
    # (Postfix: smtpd_recipient_overshoot_limit = 1000).
    inst = make_instance(server_extra="max_recipients = 5")  # max_errors = 10 (default)
    with inst.smtp() as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@example.test>\r\n"
               + b"".join(b"RCPT TO:<r%d@localhost>\r\n" % i for i in range(20)) + b"DATA\r\n")
        codes = [c.read_reply().code for _ in range(22)]
        assert codes == [250] + [250] * 5 + [452] * 15 + [354], codes
        c.send(b"Subject: many\r\n\r\nx\r\n.\r\n")
        qid_of(c.read_reply())
        assert c.cmd("QUIT").code == 221
    for i in range(5):
        assert inst.wait_maildir(f"r{i}")
    assert inst.maildir_messages("r5") == []


def test_command_timeout_421(make_instance):
    inst = make_instance(server_extra='command_timeout = "1s"')
    with inst.smtp() as c:
        c.ehlo()
        t0 = time.time()
        r = c.read_reply(timeout=5)
        assert r.code == 421 and r.last.startswith("4.4.2"), r
        assert 0.8 <= time.time() - t0 <= 4
        assert c.wait_closed(3) == b""


def test_a_command_line_that_never_ends_closes_the_session(make_instance):
    """Found by review: octets without a line end were read and dropped forever (each read
    restarted the command timeout), so one client held a connection slot indefinitely. Past
    (max_errors + 1) lines of max_line_length (here 11 x 2048 octets), the session answers
    500 and 421 and closes; a long line that ends is still one 500."""
    inst = make_instance()
    with inst.smtp() as c:
        c.ehlo()
        c.send(b"NOOP " + b"A" * 20000 + b"\r\n")
        assert c.read_reply().code == 500
        assert c.cmd("NOOP").code == 250
        for _ in range(40):  # 80 KiB at most, in pieces
            try:
                c.send(b"A" * 2048)
            except OSError:
                break
            time.sleep(0.005)
        r = c.read_reply(timeout=5)
        assert r.code == 500 and r.last.startswith("5.5.2"), r
        r = c.read_reply(timeout=5)
        assert r.code == 421 and "line too long" in r.last, r
        assert c.wait_closed(3) == b""


def test_bdat_refused_for_want_of_recipients_fails_the_message(make_instance):
    """Found by review: after a BDAT refused with no valid recipients, RCPT and a later
    'BDAT n LAST' were taken and the message was stored without the refused chunk. Now RCPT
    gets 503 and the later chunk the same refusal; nothing is stored."""
    inst = make_instance()
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        assert c.cmd("RCPT TO:<x@elsewhere.test>").code == 554
        c.send(b"BDAT 8\r\nchunk1\r\n")
        assert c.read_reply().code == 554
        assert c.cmd("RCPT TO:<bob@localhost>").code == 503
        c.send(b"BDAT 8 LAST\r\nchunk2\r\n")
        assert c.read_reply().code == 554
        assert c.cmd("QUIT").code == 221
    assert_nothing_stored(inst)


def test_data_timeout_421_and_nothing_stored(make_instance):
    inst = make_instance(server_extra='data_timeout = "1s"\ncommand_timeout = "30s"')
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: slow\r\n\r\npart of the body\r\n")
        t0 = time.time()
        r = c.read_reply(timeout=5)
        assert r.code == 421 and r.last.startswith("4.4.2"), r
        assert 0.8 <= time.time() - t0 <= 4
        assert c.wait_closed(3) == b""
    assert_nothing_stored(inst)


def test_command_timeout_does_not_apply_during_data(make_instance):
    # data_timeout governs DATA: a 1.5 s pause in the body is fine with data_timeout = 30s
    inst = make_instance(server_extra='data_timeout = "30s"\ncommand_timeout = "1s"')
    with inst.smtp() as c:
        c.ehlo()
        c.expect("MAIL FROM:<a@example.test>", 250)
        c.expect("RCPT TO:<bob@localhost>", 250)
        c.expect("DATA", 354)
        c.send(b"Subject: slow\r\n\r\nfirst\r\n")
        time.sleep(1.5)
        c.send(b"second\r\n.\r\n")
        qid_of(c.read_reply())
    assert b"first\nsecond\n" in inst.wait_maildir("bob")[0]


def test_max_connections_per_ip(make_instance):
    inst = make_instance(server_extra="max_connections_per_ip = 2")
    inst.wait_sessions_closed()
    a, b = inst.smtp(), inst.smtp()
    try:
        assert a.greeting.code == 220 and b.greeting.code == 220
        with RawSMTP(inst.host, inst.port, greeting=False) as third:
            r = third.read_reply()
            assert r.code == 421 and r.last.startswith("4.7.0"), r
            assert third.wait_closed(3) == b""
        # the two admitted sessions still work
        assert a.cmd("NOOP").code == 250 and b.cmd("NOOP").code == 250
        assert a.cmd("QUIT").code == 221
        a.close()
        # once one has gone, a new one is served (the server notices the close asynchronously)
        greeting = None
        for _ in range(40):
            with RawSMTP(inst.host, inst.port, greeting=False) as c:
                greeting = c.read_reply()
                if greeting.code == 220:
                    assert c.cmd("EHLO x").code == 250
                    break
            time.sleep(0.05)
        assert greeting is not None and greeting.code == 220, greeting
    finally:
        a.close()
        b.close()


def test_max_connections_across_addresses(make_instance):
    inst = make_instance(server_extra="max_connections = 2\nmax_connections_per_ip = 2")
    inst.wait_sessions_closed()
    a = RawSMTP(inst.host, inst.port, source="127.0.0.2")
    b = RawSMTP(inst.host, inst.port, source="127.0.0.3")
    try:
        assert a.greeting.code == 220 and b.greeting.code == 220
        with RawSMTP(inst.host, inst.port, source="127.0.0.4", greeting=False) as third:
            r = third.read_reply()
            assert r.code == 421 and r.last.startswith("4.7.0"), r
            assert third.wait_closed(3) == b""
        b.cmd("QUIT")
        b.close()
        greeting = None
        for _ in range(40):
            with RawSMTP(inst.host, inst.port, source="127.0.0.4", greeting=False) as c:
                greeting = c.read_reply()
                if greeting.code == 220:
                    break
            time.sleep(0.05)
        assert greeting.code == 220, greeting
        assert a.cmd("NOOP").code == 250
    finally:
        a.close()
        b.close()


def body_of_size(n):
    body = b"Subject: exact\r\n\r\n"
    line = b"z" * 68 + b"\r\n"
    while len(body) + len(line) <= n - 4:
        body += line
    body += b"q" * (n - len(body) - 2) + b"\r\n"
    assert len(body) == n
    return body


def test_size_limit_boundary_data_and_bdat(make_instance):
    # Held, to read the queue files: stored byte for byte (the maildir file's LF line ends would
    # not show a CR lost), then released and delivered.
    inst = make_instance(server_extra=f"max_message_size = {LIMIT}", queue_extra="hold = true")
    with inst.smtp() as c:
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], body_of_size(LIMIT)))
        r = c.send_mail("a@example.test", ["bob@localhost"], body_of_size(LIMIT + 1))
        assert r.code == 552 and r.last.startswith("5.3.4"), r
        for n, code in ((LIMIT, 250), (LIMIT + 1, 552)):
            c.expect("MAIL FROM:<a@example.test>", 250)
            c.expect("RCPT TO:<bob@localhost>", 250)
            c.send(b"BDAT %d LAST\r\n" % n + body_of_size(n))
            r = c.read_reply()
            assert r.code == code, (n, r)
    held = inst.held_content()
    assert [content for _, content in held.values()] == [body_of_size(LIMIT)] * 2
    inst.release_held()
    msgs = inst.wait_maildir("bob", count=2)
    time.sleep(0.3)
    msgs = inst.maildir_messages("bob")
    assert len(msgs) == 2 and all(m.endswith(as_maildir(body_of_size(LIMIT))) for m in msgs)
