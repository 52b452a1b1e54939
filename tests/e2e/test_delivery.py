"""tests/e2e/test_delivery.py - outbound SMTP delivery (issue 3) to real receiving peers.

Postern receives mail for a hosted domain with `relay_to` and hands it over SMTP to the peer:
Postfix's smtp-sink (plaintext), or the scripted peer of peers.py, which records every command
it saw per connection. Bounces (DSNs) go to the sender's domain through a [[route]] to a second
peer. Assertions are on what the peers saw and on the `delivery` log lines (SPEC §6).
"""
import re
import time

import pytest

from conftest import relay_domain, route, wait_until
from peers import ScriptedPeer, SmtpSink, envelope_sender

FAST_RETRY = 'retry_schedule = ["1s"]'


def queue_empty(inst):
    return inst.spool_files("queue") == [] and inst.queue_json("list") == []


def test_plaintext_delivery_to_smtp_sink(make_instance, tmp_path):
    with SmtpSink(tmp_path / "sink") as sink:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{sink.port}"))
        qid = inst.send("alice@example.test", ["bob@internal.test", "carol@internal.test"], "to the sink")
        ev = inst.wait_events("delivery", 2, id=qid)
        msgs = sink.wait_count(1)
        time.sleep(0.2)  # a second transaction, if any, would show up now
        msgs = sink.messages()
        assert len(msgs) == 1, "both recipients of one domain go in one transaction (SPEC §3.4)"
        m = msgs[0]
        head, _, content = m.partition(b"Received: from mx.postern.test")
        assert re.search(rb"^X-Mail-Args: (FROM:)?<alice@example\.test>", head, re.M), head
        assert re.findall(rb"^X-Rcpt-Args: (?:TO:)?<([^>]*)>", head, re.M) == [b"bob@internal.test",
                                                                             b"carol@internal.test"], head
        assert f"(Postern) with ESMTP id {qid}".encode() in content  # our Received: header, then the message
        assert b"Subject: to the sink" in content and b"body of to the sink" in content
        assert b"\n.\n" not in content

        assert sorted(e["to"] for e in ev) == ["<bob@internal.test>", "<carol@internal.test>"]
        for e in ev:
            assert e["result"] == "sent" and e["dsn"] == "2.0.0" and e["attempt"] == "1", e
            assert e["relay"] == f"127.0.0.1[127.0.0.1]:{sink.port}", e
            assert e["tls"] == "none" and e["proto"] == "-" and e["cipher"] == "-", e
        wait_until(lambda: queue_empty(inst), what="queue empty after delivery")


def test_peer_greets_421_then_retry_delivers(make_instance):
    with ScriptedPeer(starttls=False, greeting_codes=(421, 220)) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra=FAST_RETRY)
        qid = inst.send("alice@example.test", ["bob@internal.test"], "retry me")
        msgs = peer.wait_messages(1, timeout=10)
        ev = inst.wait_events("delivery", 2, id=qid)
        conns = peer.connections
        assert len(conns) == 2, [c.commands for c in conns]
        assert "MAIL" not in conns[0].verbs(), conns[0].commands
        assert conns[1].accepted - conns[0].accepted >= 1.0, "retry earlier than retry_schedule"
        mail_from, rcpts, data, tls = msgs[0]
        assert envelope_sender(mail_from) == "alice@example.test" and rcpts == ["bob@internal.test"]
        assert b"body of retry me" in data and tls is False

        first, second = ev[:2]
        assert first["result"] == "deferred" and first["attempt"] == "1", first
        assert first["dsn"].startswith("4."), first
        assert "421" in first["reason"], first
        assert second["result"] == "sent" and second["attempt"] == "2", second
        wait_until(lambda: queue_empty(inst), what="queue empty after the retry")


def test_second_relay_host_when_first_greets_421(make_instance):
    with ScriptedPeer(starttls=False, greeting_codes=(421,)) as first, ScriptedPeer(starttls=False) as second:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{first.port}",
                                                  f"127.0.0.1:{second.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@example.test", ["bob@internal.test"], "second host")
        msgs = second.wait_messages(1, timeout=10)
        assert envelope_sender(msgs[0][0]) == "alice@example.test" and msgs[0][1] == ["bob@internal.test"]
        ev = inst.wait_events("delivery", 1, id=qid)
        assert len(ev) == 1, ev
        assert ev[0]["result"] == "sent" and ev[0]["attempt"] == "1", ev  # in the same attempt
        assert ev[0]["relay"] == f"127.0.0.1[127.0.0.1]:{second.port}", ev
        assert len(first.connections) == 1 and not first.saw_mail_from(), first.all_commands()
        assert len(second.connections) == 1
        wait_until(lambda: queue_empty(inst), what="queue empty")


def test_one_of_three_recipients_refused(make_instance):
    """550 for one recipient: the two others are delivered in ONE transaction, the third is
    bounced: a DSN (MAIL FROM:<>) reaches the sender's domain, naming it and the remote reply."""
    refused = "carol@internal.test"
    with ScriptedPeer(starttls=False, rcpt_codes={refused: 550}) as internal, \
            ScriptedPeer(starttls=False) as sender_mx:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{internal.port}"),
                             extra=route("sender.test", f"127.0.0.1:{sender_mx.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        rcpts = ["bob@internal.test", refused, "dave@internal.test"]
        qid = inst.send("alice@sender.test", rcpts, "three recipients")

        msgs = internal.wait_messages(1, timeout=10)
        assert len(internal.connections) == 1
        assert len(internal.mail_froms()) == 1, internal.all_commands()  # one transaction
        rcpt_cmds = [c for c, _ in internal.all_commands() if c.upper().startswith("RCPT TO:")]
        assert [c[8:].strip("<> ").lower() for c in rcpt_cmds] == rcpts
        mail_from, got_rcpts, data, _ = msgs[0]
        assert envelope_sender(mail_from) == "alice@sender.test"
        assert got_rcpts == ["bob@internal.test", "dave@internal.test"]
        assert b"body of three recipients" in data

        dsn = sender_mx.wait_messages(1, timeout=10)
        assert len(dsn) == 1
        dsn_from, dsn_rcpts, dsn_data, _ = dsn[0]
        assert envelope_sender(dsn_from) == "", f"a DSN uses the null reverse-path, got {dsn_from!r}"
        assert dsn_rcpts == ["alice@sender.test"]
        text = re.sub(r"\r?\n[ \t]+", " ", dsn_data.decode("utf-8", "replace"))  # unfold header lines
        assert "multipart/report" in text and "message/delivery-status" in text, text
        assert re.search(r"^Final-Recipient: rfc822;\s*carol@internal\.test\s*$", text, re.M | re.I), text
        assert re.search(r"^Action: failed\s*$", text, re.M | re.I), text
        assert re.search(r"^Status: 5\.1\.1\s*$", text, re.M), text
        assert re.search(r"^Diagnostic-Code: smtp;\s*550 5\.1\.1 <carol@internal\.test>: refused by scripted peer",
                         text, re.M), text
        finals = re.findall(r"^Final-Recipient: rfc822;\s*(\S+)", text, re.M | re.I)
        assert finals == [refused], "only the refused recipient is reported"

        ev = {e["to"]: e for e in inst.wait_events("delivery", 3, id=qid)}
        assert ev["<bob@internal.test>"]["result"] == "sent"
        assert ev["<dave@internal.test>"]["result"] == "sent"
        c = ev[f"<{refused}>"]
        assert c["result"] == "bounced" and c["dsn"] == "5.1.1" and "550" in c["reason"], c
        bounce = inst.wait_events("bounce", 1, id=qid)[0]
        dsn_ev = inst.wait_events("delivery", 1, id=bounce["dsn_id"])[0]
        assert dsn_ev["to"] == "<alice@sender.test>" and dsn_ev["result"] == "sent", dsn_ev
        assert dsn_ev["relay"] == f"127.0.0.1[127.0.0.1]:{sender_mx.port}", dsn_ev
        wait_until(lambda: queue_empty(inst), what="queue empty after delivery and bounce")


def test_deferred_log_line(make_instance):
    """SPEC §6: one `delivery` line per attempt per recipient, with every field."""
    with ScriptedPeer(starttls=False, greeting_codes=(421,)) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@example.test", ["bob@internal.test", "carol@internal.test"], "deferred")
        ev = inst.wait_events("delivery", 2, id=qid)
        time.sleep(0.3)
        ev = inst.events("delivery", id=qid)
        assert len(ev) == 2, "one line per recipient per attempt"
        assert len(peer.connections) == 1, "both recipients in one attempt"
        assert sorted(e["to"] for e in ev) == ["<bob@internal.test>", "<carol@internal.test>"]
        for e in ev:
            for key in ("id", "to", "relay", "profile", "tls", "proto", "cipher", "result", "dsn", "delay",
                        "attempt", "reason"):
                assert key in e, (key, e)
            assert e["level"] == "warning"
            assert e["relay"] == f"127.0.0.1[127.0.0.1]:{peer.port}", e
            assert e["tls"] == "none" and e["proto"] == "-" and e["cipher"] == "-", e
            assert e["result"] == "deferred" and e["attempt"] == "1", e
            assert re.fullmatch(r"4\.\d{1,3}\.\d{1,3}", e["dsn"]), e
            assert "421" in e["reason"] and "not now" in e["reason"], e  # the remote reply
            assert re.fullmatch(r"\d+\.\d{3}", e["delay"]), e


@pytest.mark.parametrize("refusal,bounced", [("552 5.5.3 Too many recipients", False),
                                              ("552 Error: too many recipients", False),
                                              ("552 5.2.2 Mailbox full", True)])
def test_rcpt_552_for_the_recipient_limit_is_deferred(make_instance, refusal, bounced):
    """A 552 to RCPT that means "too many recipients" (RFC 821's code for it) is the 452 it
    stands for (RFC 5321 4.5.3.1.10): deferred as 4.5.3, sent at the retry, never bounced. (With
    another recipient taken in the same transaction it is sent again at once instead:
    test_recipient_overflow.py.) Any other 5xx to RCPT bounces the recipient (SPEC §3.2)."""
    with ScriptedPeer(starttls=False, rcpt_codes={"carol@internal.test": [refusal, 250]}) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra=FAST_RETRY)
        qid = inst.send("alice@example.test", ["carol@internal.test"], "552 then 250")
        if bounced:
            e = inst.wait_events("delivery", 1, id=qid)[0]
            assert (e["result"], e["dsn"]) == ("bounced", "5.2.2"), e
            return
        ev = inst.wait_events("delivery", 2, id=qid)
        assert [(e["result"], e["attempt"], e["dsn"]) for e in ev] == [("deferred", "1", "4.5.3"),
                                                                      ("sent", "2", "2.0.0")], ev
        assert "552" in ev[0]["reason"] and not inst.events("bounce", id=qid), ev
        assert [m[1] for m in peer.wait_messages(1)] == [["carol@internal.test"]]


def test_rcpt_4xx_defers_only_that_recipient(make_instance):
    """SPEC §3.2: a 4xx to one RCPT defers that recipient only; the retry sends it alone (the
    others, already delivered, are not sent twice)."""
    code = 450
    with ScriptedPeer(starttls=False, rcpt_codes={"carol@internal.test": [code, 250]}) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra=FAST_RETRY)
        qid = inst.send("alice@example.test", ["bob@internal.test", "carol@internal.test"], "partly later")
        msgs = peer.wait_messages(2, timeout=10)
        assert [m[1] for m in msgs] == [["bob@internal.test"], ["carol@internal.test"]]
        ev = inst.wait_events("delivery", 3, id=qid)
        time.sleep(0.3)
        ev = inst.events("delivery", id=qid)
        ev.sort(key=lambda e: (e["attempt"], e["to"]))
        assert [(e["to"], e["result"], e["attempt"]) for e in ev] == [
            ("<bob@internal.test>", "sent", "1"), ("<carol@internal.test>", "deferred", "1"),
            ("<carol@internal.test>", "sent", "2")], ev
        assert ev[1]["dsn"] == "4.1.1" and str(code) in ev[1]["reason"], ev[1]
        assert not inst.events("bounce", id=qid)
        assert len(peer.mail_froms()) == 2
        wait_until(lambda: queue_empty(inst), what="queue empty")
