"""tests/e2e/test_inbound_basic.py - the quick start works: mail to user@localhost over plaintext
and STARTTLS from smtplib, swaks and openssl s_client lands in the maildir (SPEC §2, §3.3, §4)."""
import os
import pwd
import re
import smtplib
import ssl
import subprocess

from conftest import POSTERN


def tls_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # `postern init` makes a self-signed certificate
    return ctx


def test_smtplib_plaintext_delivers_to_maildir(postern):
    with smtplib.SMTP(postern.host, postern.port, timeout=10) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        assert s.has_extn("starttls") and s.has_extn("pipelining") and s.has_extn("size")
        assert s.has_extn("8bitmime") and s.has_extn("enhancedstatuscodes")
        assert s.has_extn("smtputf8") and s.has_extn("chunking")
        assert not s.has_extn("auth")  # never before TLS, and no users are configured
        refused = s.sendmail("alice@example.test", ["bob@localhost"], b"Subject: plain\r\n\r\nhello\r\n")
        assert refused == {}
    msg = postern.wait_maildir("bob")[0]
    assert msg.startswith(b"Return-Path: <alice@example.test>\nDelivered-To: bob@localhost\n")
    assert b"Received: from client.test (unknown [127.0.0.1])" in msg
    assert b"with ESMTP id" in msg and b"ESMTPS" not in msg
    assert msg.endswith(b"Subject: plain\n\nhello\n")
    postern.wait_log("result=sent")
    assert postern.spool_files() == []  # delivered and removed from the queue


def test_smtplib_message_lands_in_the_maildir_with_lf_line_ends(postern):
    """README: a maildir file has LF line ends, like Postfix's local delivery: the CRLFs of the
    message (smtplib sends CRLF) and of the Return-Path/Delivered-To/Received lines Postern
    adds are LF; a plain text message has no CR left at all, and its text is intact."""
    body = (b"From: <alice@example.test>\r\nSubject: line ends\r\n\r\n"
            b"first line\r\n.a line with a leading dot\r\n\r\n  indented\ttab\r\nlast line\r\n")
    with smtplib.SMTP(postern.host, postern.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.sendmail("alice@example.test", ["lf@localhost"], body) == {}
    msg = postern.wait_maildir("lf")[0]
    assert b"\r" not in msg, msg
    assert msg.startswith(b"Return-Path: <alice@example.test>\nDelivered-To: lf@localhost\nReceived: from client.test ")
    assert msg.endswith(b"\nFrom: <alice@example.test>\nSubject: line ends\n\nfirst line\n"
                        b".a line with a leading dot\n\n  indented\ttab\nlast line\n"), msg


def test_smtplib_starttls_received_header_has_tls_facts(postern):
    with smtplib.SMTP(postern.host, postern.port, timeout=10) as s:
        s.ehlo("client.test")
        code, _ = s.starttls(context=tls_ctx())
        assert code == 220
        s.ehlo("client.test")
        assert not s.has_extn("starttls")  # not inside TLS
        s.sendmail("alice@example.test", ["carol@localhost"], b"Subject: tls\r\n\r\nsecret\r\n")
    msg = postern.wait_maildir("carol")[0]
    assert b"(using TLSv1.3 with cipher TLS_" in msg
    assert b"with ESMTPS id" in msg
    log = postern.log()
    assert " tls " in log and "version=TLSv1.3" in log
    assert "queued" in log


def test_queued_reply_carries_the_queue_id(postern):
    with smtplib.SMTP(postern.host, postern.port, timeout=10) as s:
        s.ehlo("c")
        s.mail("a@example.test")
        s.rcpt("dave@localhost")
        code, text = s.data(b"Subject: id\r\n\r\nx\r\n")
    assert code == 250
    assert text.startswith(b"2.0.0 Ok: queued as ")
    qid = text.split()[-1].decode()
    msg = postern.wait_maildir("dave")[0]
    assert f"id {qid}".encode() in msg
    postern.wait_log(f"id={qid}")


def test_swaks_with_and_without_starttls(postern):
    base = ["swaks", "--server", f"{postern.host}:{postern.port}", "--from", "s@example.test",
            "--helo", "swaks.test", "--timeout", "10"]
    r = subprocess.run(base + ["--to", "erin@localhost"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0 Ok: queued as" in r.stdout
    r = subprocess.run(base + ["--to", "frank@localhost", "--tls"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    # swaks prints "TLS started with cipher ..." and marks every line it sends inside TLS "~>"
    # (plaintext ones "->"): only a session that really ran the transaction over TLS has these
    assert re.search(r"^=== TLS started with cipher TLSv1\.[23]:", r.stdout, re.M), r.stdout
    assert re.search(r"^ ~> MAIL FROM:<s@example\.test>", r.stdout, re.M), r.stdout
    assert not re.search(r"^ -> MAIL FROM", r.stdout, re.M), r.stdout
    assert "250 2.0.0 Ok: queued as" in r.stdout
    assert postern.wait_maildir("erin") and postern.wait_maildir("frank")
    assert b"ESMTPS" in postern.wait_maildir("frank")[0]


def test_openssl_s_client_starttls(postern):
    script = (b"EHLO ossl.test\r\nMAIL FROM:<o@example.test>\r\nRCPT TO:<gina@localhost>\r\nDATA\r\n"
              b"Subject: s_client\r\n\r\nvia openssl\r\n.\r\nQUIT\r\n")
    r = subprocess.run(["openssl", "s_client", "-connect", f"{postern.host}:{postern.port}",
                        "-starttls", "smtp", "-quiet", "-ign_eof"],
                       input=script, capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    assert "250 2.0.0 Ok: queued as" in out, out + r.stderr.decode(errors="replace")
    msg = postern.wait_maildir("gina")[0]
    assert b"via openssl" in msg and b"ESMTPS" in msg


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_check_config_accepts_the_init_default(tmpdir_postern):
    d = tmpdir_postern / "fresh"
    r = subprocess.run([POSTERN, "init", str(d)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (d / "var/tls/cert.pem").exists() and (d / "var/tls/key.pem").exists()
    # 0600, or 0640 for server.user's group when init ran as root and that user exists (a SIGHUP
    # reload after the privilege drop reads it again: test_privileges.py); never for others
    key_mode = (d / "var/tls/key.pem").stat().st_mode & 0o777
    assert key_mode == (0o640 if os.geteuid() == 0 and user_exists("postern") else 0o600), oct(key_mode)
    r = subprocess.run([POSTERN, "check-config", "-c", str(d / "postern.toml")], capture_output=True, text=True)
    if os.geteuid() == 0 and not user_exists("postern"):  # as root the user must exist (make deps makes it)
        assert r.returncode == 2 and "server.user: no such user 'postern'" in r.stderr, r.stderr
    else:
        assert r.returncode == 0, r.stderr
    # init refuses to overwrite
    r = subprocess.run([POSTERN, "init", str(d)], capture_output=True, text=True)
    assert r.returncode != 0 and "already exists" in r.stderr
    # the certificate is a real X.509 certificate for localhost
    r = subprocess.run(["openssl", "x509", "-in", str(d / "var/tls/cert.pem"), "-noout", "-subject", "-ext",
                        "subjectAltName"], capture_output=True, text=True)
    assert r.returncode == 0 and "localhost" in r.stdout
