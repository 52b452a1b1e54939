"""tests/e2e/test_delivery_outbound.py - outbound delivery to next hops that lack an extension
or read slowly: bounces to a server without 8BITMIME (or without ESMTP), 7-bit mail declared
BODY=8BITMIME, and a large message to a peer that takes its time (RFC 5321 4.5.3.2).

The next hops are Postfix's smtp-sink (-8: no 8BITMIME, -e: no ESMTP, HELO only) and, for the
slow reader, a small peer defined here that reads the content 4 KiB at a time.
"""
import pytest

from conftest import relay_domain, route, wait_until
from peers import ScriptedPeer, SmtpSink


def queue_empty(inst):
    return inst.spool_files("queue") == [] and inst.queue_json("list") == []


@pytest.mark.parametrize("sink_args", [("-8",), ("-e",)], ids=["no-8bitmime", "helo-only"])
def test_bounce_reaches_sender_mx_without_8bitmime(make_instance, tmp_path, sink_args):
    """The DSN for a refused recipient is 7-bit (not a global report): it goes to the sender's
    MX even when that server offers no 8BITMIME, or answers EHLO with an error (HELO fallback).
    Before: the DSN was marked 8-bit, refused locally (5.6.3) and, having the null sender,
    silently removed."""
    with ScriptedPeer(starttls=False, rcpt_codes={"bob@internal.test": 550}) as internal, \
            SmtpSink(tmp_path / "sink", extra_args=sink_args) as sink:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{internal.port}"),
                             extra=route("sender.test", f"127.0.0.1:{sink.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@sender.test", ["bob@internal.test"], "bounce to a 7-bit mx")
        e = inst.wait_events("delivery", 1, id=qid)[0]
        assert e["result"] == "bounced" and e["dsn"] == "5.1.1", e
        bounce = inst.wait_events("bounce", 1, id=qid)[0]
        dsn_ev = inst.wait_events("delivery", 1, id=bounce["dsn_id"])[0]
        assert dsn_ev["result"] == "sent", dsn_ev
        head, _, content = sink.wait_count(1)[0].partition(b"Received:")
        assert b"<alice@sender.test>" in head and b"BODY=8BITMIME" not in head, head
        assert b"message/delivery-status" in content and b"bob@internal.test" in content
        wait_until(lambda: queue_empty(inst), what="queue empty")
