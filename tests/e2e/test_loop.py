"""tests/e2e/test_loop.py - a message that has looped (too many Received: headers) is bounced
with 5.4.6 and never relayed (RFC 5321 6.3); the bounce reaches the sender's domain."""
import smtplib

from peers import ScriptedPeer


def test_too_many_received_headers_bounce_with_5_4_6(make_instance):
    with ScriptedPeer(starttls=False) as inside, ScriptedPeer(starttls=False) as senders:
        inst = make_instance(
            domains=f'[[domain]]\nname = "internal.test"\nrelay_to = ["127.0.0.1:{inside.port}"]\n',
            extra=f'[[route]]\ndomain = "sender.test"\nhosts = ["127.0.0.1:{senders.port}"]\n')
        hops = b"".join(b"Received: from hop%d.test by hop%d.test; Sat, 28 Nov 2026 10:00:00 +0000\r\n" % (i, i + 1)
                        for i in range(60))
        with smtplib.SMTP(inst.host, inst.port, timeout=10) as s:
            s.sendmail("alice@sender.test", ["bob@internal.test"], hops + b"Subject: loop\r\n\r\nround and round\r\n")
        dsn = senders.wait_messages(1)[0]
        assert dsn[0].startswith("<>") and dsn[1] == ["alice@sender.test"]
        assert b"Status: 5.4.6" in dsn[2], dsn[2][:2000]
        inst.wait_log("dsn=5.4.6")
        assert not inside.saw_mail_from(), inside.all_commands()
