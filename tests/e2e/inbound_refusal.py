"""tests/e2e/inbound_refusal.py - the checks shared by the inbound mandatory-TLS tests: a session
that misses its profile's requirements is refused at every command but QUIT (RFC 3207 4.1), and
nothing it sent is stored anywhere."""

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
