"""tests/e2e/test_relay_profile.py - relay rights come only from a connection profile with
relay = "any" matched by client IP (SPEC §1.4, §2): the profile's client relays to a [[route]]
peer; a client from another loopback address gets 554 5.7.1 and nothing reaches the peer."""
import socket

from peers import ScriptedPeer

PROFILE = '[[profile]]\nname = "local"\nhosts = ["127.0.0.5"]\nrelay = "any"\n'


def smtp_from(source_ip, port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source_ip, 0))
    f = s.makefile("rwb", buffering=0)

    def cmd(line):
        if line is not None:
            f.write(line.encode() + b"\r\n")
        out = []
        while True:
            l = f.readline().decode()
            out.append(l)
            if len(l) < 4 or l[3] != "-":
                return out[-1]
    cmd(None)
    return s, cmd


def test_profile_grants_relay_only_to_its_hosts(make_instance):
    with ScriptedPeer(starttls=False) as peer:
        inst = make_instance(extra=PROFILE + f'\n[[route]]\ndomain = "remote.test"\nhosts = ["127.0.0.1:{peer.port}"]\n')
        # 127.0.0.6: no profile -> relay refused, nothing queued
        s, cmd = smtp_from("127.0.0.6", inst.port)
        cmd("EHLO other.test")
        assert cmd("MAIL FROM:<a@example.test>").startswith("250")
        r = cmd("RCPT TO:<x@remote.test>")
        assert r.startswith("554 5.7.1") and "Relay access denied" in r
        s.close()
        # 127.0.0.5: the profile's host -> accepted and delivered over the route
        s, cmd = smtp_from("127.0.0.5", inst.port)
        cmd("EHLO local.test")
        assert cmd("MAIL FROM:<a@example.test>").startswith("250")
        assert cmd("RCPT TO:<x@remote.test>").startswith("250")
        assert cmd("DATA").startswith("354")
        assert cmd("Subject: relayed\r\n\r\nhello\r\n.").startswith("250 2.0.0 Ok: queued as")
        cmd("QUIT")
        s.close()
        msgs = peer.wait_messages(1)
        assert len(msgs) == 1 and msgs[0][1] == ["x@remote.test"]
        assert b"Subject: relayed" in msgs[0][2]
        inst.wait_log("result=sent")


def test_recipients_of_different_domains_on_one_smarthost_share_a_transaction(make_instance):
    """SPEC §3.4: all recipients for one host go in one transaction, whatever their domains."""
    with ScriptedPeer(starttls=False) as peer:
        inst = make_instance(extra=PROFILE + f'\n[[route]]\ndomain = "*"\nhosts = ["127.0.0.1:{peer.port}"]\n')
        s, cmd = smtp_from("127.0.0.5", inst.port)
        cmd("EHLO local.test")
        assert cmd("MAIL FROM:<a@example.test>").startswith("250")
        for r in ("x@one.test", "y@two.test", "z@three.test"):
            assert cmd(f"RCPT TO:<{r}>").startswith("250")
        assert cmd("DATA").startswith("354")
        assert cmd("Subject: three domains\r\n\r\nhello\r\n.").startswith("250")
        cmd("QUIT")
        s.close()
        msgs = peer.wait_messages(1)
        assert sorted(msgs[0][1]) == ["x@one.test", "y@two.test", "z@three.test"]
        assert sum(1 for c, _ in peer.all_commands() if c.upper().startswith("MAIL FROM")) == 1
