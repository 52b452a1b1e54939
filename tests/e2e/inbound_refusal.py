"""tests/e2e/inbound_refusal.py - what the inbound mandatory-TLS tests share: a client's STARTTLS
handshake, and the checks that a session missing its profile's requirements is refused at every
command but QUIT (RFC 3207 4.1) and that nothing it sent is stored anywhere."""
import ssl


def start_tls(c, cert=None, max_version=None, ciphers=None):
    """STARTTLS, then a TLS client handshake (the server's self-signed certificate is not
    checked). cert: a make_cert() dict presented as the client certificate. Returns
    (version, cipher name, secret bits) as negotiated."""
    c.expect("STARTTLS", 220, "2.0.0")
    assert c.buf == b"", f"plaintext after the 220: {c.buf!r}"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        ctx.maximum_version = max_version
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    if cert is not None:
        ctx.load_cert_chain(cert["cert"], cert["key"])
    c.sock = ctx.wrap_socket(c.sock)
    name, _, bits = c.sock.cipher()
    return c.sock.version(), name, bits


# A whole message, sent in one BDAT chunk to a refused session.
REFUSED_BODY = b"Subject: refused\r\n\r\nhello\r\n"


def refused_commands(sender):
    """Nine refused commands: below server.max_errors (10), so QUIT still gets its 221."""
    return ("EHLO client.partner.test", "HELO client.partner.test", f"MAIL FROM:<{sender}>",
            "RCPT TO:<bob@localhost>", "DATA", "RSET", "NOOP", "VRFY bob")


def assert_every_command_refused(c, reason, sender="alice@partner.test"):
    """Every command but QUIT gets `554 5.7.0 <reason...>`; a BDAT chunk carrying a whole message
    is consumed and refused; QUIT gets 221 and the server closes."""
    for cmd in refused_commands(sender):
        r = c.cmd(cmd)
        assert r.code == 554 and r.last.startswith("5.7.0 " + reason), (cmd, r)
    c.send(b"BDAT %d LAST\r\n" % len(REFUSED_BODY) + REFUSED_BODY)
    r = c.read_reply()
    assert r.code == 554 and r.last.startswith("5.7.0 " + reason), ("BDAT", r)
    r = c.cmd("QUIT")
    assert r.code == 221, r
    c.wait_closed()


def assert_nothing_stored(inst):
    """No spool file in any area, no maildir file, no `queued` log event."""
    for area in ("tmp", "queue", "hold"):
        assert inst.spool_files(area) == [], (area, inst.spool_files(area))
    maildir = inst.dir / "var" / "mail"
    stored = [p for p in maildir.rglob("*") if p.is_file()] if maildir.is_dir() else []
    assert stored == [], stored
    assert inst.events("queued") == [], inst.events("queued")
