"""tests/e2e/test_starttls.py - STARTTLS (SPEC §1.1, §2; RFC 3207): plaintext pipelined after
STARTTLS is never executed (CVE-2011-0411), session state is reset, STARTTLS inside TLS is 503,
and `tls.opportunistic = false` turns STARTTLS off."""
import subprocess
import time

import pytest

from conftest import RawSMTP, qid_of, tls_client_context


@pytest.mark.parametrize("injected", [
    b"RSET\r\n",
    b"EHLO evil.test\r\nMAIL FROM:<evil@evil.test>\r\n",
], ids=["rset", "ehlo-mail"])
def test_plaintext_pipelined_after_starttls_is_discarded(postern, injected):
    with postern.smtp() as c:
        assert c.greeting.code == 220
        ehlo = c.ehlo()
        assert "STARTTLS" in ehlo.lines
        c.send(b"STARTTLS\r\n" + injected)  # one write: the injection arrives with STARTTLS
        r = c.read_reply()
        assert (r.code, r.last) == (220, "2.0.0 Ready to start TLS")
        assert c.buf == b"", f"plaintext answered after 220: {c.buf!r}"
        c.sock.settimeout(10)
        c.sock = tls_client_context().wrap_socket(c.sock)
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        # Nothing was executed: no reply is waiting for us inside TLS.
        assert c.nothing_received(0.7), f"server answered injected commands: {c.buf!r}"
        # State was reset: MAIL needs a new EHLO (so neither an injected EHLO nor MAIL counted).
        r = c.cmd("MAIL FROM:<a@example.test>")
        assert r.code == 503 and r.last.startswith("5.5.1"), r
        r = c.cmd("EHLO client.test")
        assert r.code == 250 and r.lines[0] == "mx.postern.test", r  # EHLO's reply, not RSET's
        assert "STARTTLS" not in r.lines
        # An injected MAIL would make RCPT acceptable; it must still need MAIL.
        r = c.cmd("RCPT TO:<bob@localhost>")
        assert r.code == 503 and r.last.startswith("5.5.1"), r
        reply = c.send_mail("alice@example.test", ["bob@localhost"], b"Subject: after tls\r\n\r\nok\r\n")
        qid = qid_of(reply)
        assert c.cmd("QUIT").code == 221
    msg = postern.wait_maildir("bob")[0]
    assert b"Received: from client.test " in msg and b"evil" not in msg
    assert f"with ESMTPS id {qid}".encode() in msg


def test_ehlo_and_starttls_pipelined_together(postern):
    # STARTTLS may end a pipelined group (RFC 2920 3.1): EHLO is answered, then 220.
    with postern.smtp() as c:
        c.send(b"EHLO pipe.test\r\nSTARTTLS\r\n")
        assert c.read_reply().code == 250
        r = c.read_reply()
        assert r.code == 220, r
        assert c.buf == b""
        c.sock.settimeout(10)
        c.sock = tls_client_context().wrap_socket(c.sock)
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: p\r\n\r\nx\r\n"))
    assert b"ESMTPS" in postern.wait_maildir("bob")[0]


def test_starttls_inside_tls_is_503(postern):
    with postern.smtp() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert r.code == 503 and r.last.startswith("5.5.1"), r
        # the session still works inside TLS
        assert c.cmd("NOOP").code == 250
        qid_of(c.send_mail("a@example.test", ["carol@localhost"], b"Subject: x\r\n\r\ny\r\n"))
    assert postern.wait_maildir("carol")


def test_starttls_with_arguments_or_in_transaction_is_refused(postern):
    with postern.smtp() as c:
        c.ehlo()
        r = c.cmd("STARTTLS now")
        assert r.code == 501 and r.last.startswith("5.5.4"), r
        c.expect("MAIL FROM:<a@example.test>", 250)
        r = c.cmd("STARTTLS")
        assert r.code == 503 and r.last.startswith("5.5.1"), r
        c.expect("RSET", 250)
        c.starttls()  # and after RSET it works
        c.ehlo()


def test_opportunistic_off_no_starttls(make_instance):
    inst = make_instance(tls_extra="opportunistic = false")
    with inst.smtp() as c:
        ehlo = c.ehlo()
        assert "STARTTLS" not in ehlo.lines and "PIPELINING" in ehlo.lines
        r = c.cmd("STARTTLS")
        assert r.code == 502 and r.last.startswith("5.5.1"), r
        # still plaintext, still a working session
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: p\r\n\r\nplain\r\n"))
    base = ["swaks", "--server", f"{inst.host}:{inst.port}", "--from", "s@example.test",
            "--helo", "swaks.test", "--timeout", "10"]
    r = subprocess.run(base + ["--to", "tls@localhost", "--tls"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stdout
    assert "queued as" not in r.stdout
    r = subprocess.run(base + ["--to", "plain@localhost"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    assert inst.wait_maildir("plain") and inst.wait_maildir("bob")
    assert inst.maildir_messages("tls") == []


def test_failed_handshake_closes_and_server_keeps_serving(make_instance):
    inst = make_instance(server_extra="max_connections_per_ip = 2")
    for _ in range(4):  # more failures than the per-IP limit: no session slot may leak
        with inst.smtp() as c:
            c.ehlo()
            c.expect("STARTTLS", 220)
            c.send(b"this is not a TLS ClientHello\r\n" * 4)
            c.wait_closed(5)
    inst.wait_log("tls_failed")
    inst.wait_sessions_closed()
    a, b = inst.smtp(), inst.smtp()
    try:
        assert a.greeting.code == 220 and b.greeting.code == 220
        a.ehlo()
        a.starttls()
        a.ehlo()
        qid_of(a.send_mail("x@example.test", ["bob@localhost"], b"Subject: ok\r\n\r\nok\r\n"))
    finally:
        a.close()
        b.close()
    assert inst.wait_maildir("bob")


def test_stalled_handshake_times_out(make_instance):
    inst = make_instance(server_extra='command_timeout = "1s"')
    with inst.smtp() as c:
        c.ehlo()
        c.expect("STARTTLS", 220)
        t0 = time.time()
        c.wait_closed(5)  # we never start the handshake
        assert time.time() - t0 < 4
    with inst.smtp() as c:
        assert c.ehlo().code == 250


def test_idle_timeout_inside_tls_is_421(make_instance):
    inst = make_instance(server_extra='command_timeout = "1s"')
    with inst.smtp() as c:
        c.ehlo()
        c.starttls()
        c.ehlo()
        r = c.read_reply(timeout=5)
        assert r.code == 421 and r.last.startswith("4.4.2"), r


def test_quit_inside_tls_gets_221_then_close_notify(postern):
    # The 221 reply to QUIT is staged in the TLS layer and leaves with the close_notify (one
    # segment, issue 6): the client must still get the whole reply, then a clean TLS close
    # (close_notify), not a bare TCP FIN.
    with postern.smtp() as c:
        c.ehlo()
        assert c.cmd("STARTTLS").code == 220
        c.sock.settimeout(10)
        c.sock = tls_client_context().wrap_socket(c.sock, suppress_ragged_eofs=False)
        c.ehlo()
        qid_of(c.send_mail("a@example.test", ["bob@localhost"], b"Subject: q\r\n\r\nx\r\n"))
        r = c.cmd("QUIT")
        assert (r.code, r.last) == (221, "2.0.0 mx.postern.test closing connection"), r
        assert c.buf == b""
        # A bare FIN would raise SSLEOFError here (suppress_ragged_eofs=False).
        assert c.sock.recv(100) == b""


def test_place_is_free_once_quit_is_answered_inside_tls(make_instance):
    """At max_connections_per_ip = 1, a client that got its 221 inside TLS reconnects at once:
    the session's place was given back when the SMTP dialogue ended, not after the TLS
    close_notify exchange (which waits up to 2 s for a client that, like this one, never
    answers it). Before, the new connection got a spurious 421 4.7.0."""
    inst = make_instance(server_extra="max_connections_per_ip = 1")
    inst.wait_sessions_closed()  # the start-up probe's
    deadline = time.time() + 60
    for i in range(20):
        assert time.time() < deadline, f"iteration {i}: out of time"
        first = inst.smtp()
        first.ehlo()
        first.starttls()
        r = first.cmd("QUIT")
        assert r.code == 221, r
        # the first connection is still open, its close_notify unanswered
        second = RawSMTP(inst.host, inst.port)
        assert second.greeting.code == 220, (i, second.greeting)
        assert second.cmd("QUIT").code == 221
        second.sock.settimeout(10)
        assert second.sock.recv(100) == b"", "the server closes after 221"  # its place is free again
        second.close()
        first.close()  # no close_notify: Python's close() does not send one
