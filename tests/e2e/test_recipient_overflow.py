"""tests/e2e/test_recipient_overflow.py - recipients over the next hop's recipient limit (RFC 5321
4.5.3.1.8 / 4.5.3.1.10): a server that takes a few recipients per transaction answers 452 to the
rest; Postern sends the message to them again at once, in further transactions on the same
connection, within the same attempt, while each transaction takes some. One that takes none
ends it: those recipients are deferred as before (no endless loop).

The next hop is the scripted peer of peers.py; its per-address RCPT codes (a list: one code per
RCPT of that address) make it take two recipients per transaction for the messages sent here.
"""
import signal

import pytest

from conftest import relay_domain, wait_until
from peers import ScriptedPeer

RCPTS = [f"r{i}@internal.test" for i in range(1, 6)]


def _mail_froms(peer):
    return [c for c, _ in peer.all_commands() if c.upper().startswith("MAIL FROM:")]


@pytest.mark.parametrize("code", [452, "552 5.5.3 Too many recipients"])
def test_recipients_over_the_limit_go_again_on_the_same_connection(make_instance, code):
    """Five recipients to a server that takes two per transaction: three transactions on one
    connection ([2, 2, 1] recipients), all five sent in attempt 1. Before: two were sent per
    attempt, the others deferred with the 452 (a 1000-recipient message needed hours); with an
    older server's 552 for the same limit (RFC 5321 4.5.3.1.10), bounced."""
    codes = {RCPTS[0]: 250, RCPTS[1]: 250, RCPTS[2]: [code, 250], RCPTS[3]: [code, 250],
             RCPTS[4]: [code, code, 250]}
    with ScriptedPeer(starttls=False, rcpt_codes=codes) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@sender.test", RCPTS, "over the limit")
        events = inst.wait_events("delivery", len(RCPTS), id=qid)
        assert sorted(e["to"] for e in events) == sorted(f"<{r}>" for r in RCPTS), events
        outcomes = [(e["to"], e["result"], e["attempt"]) for e in events]
        assert all(r == "sent" and a == "1" for _, r, a in outcomes), outcomes
        messages = peer.wait_messages(3)
        assert [sorted(m[1]) for m in messages] == [RCPTS[0:2], RCPTS[2:4], RCPTS[4:5]], messages
        assert len(peer.connections) == 1, [c.verbs() for c in peer.connections]
        assert len(_mail_froms(peer)) == 3
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")


def test_a_transaction_that_takes_none_of_them_ends_it(make_instance):
    """The server takes two recipients, then refuses the three others again (452) in the second
    transaction: no third one. They are deferred in attempt 1 with the server's reply; the
    second transaction was reset as any refused one is, on the same connection."""
    codes = {RCPTS[0]: 250, RCPTS[1]: 250, RCPTS[2]: 452, RCPTS[3]: 452, RCPTS[4]: 452}
    with ScriptedPeer(starttls=False, rcpt_codes=codes) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@sender.test", RCPTS, "none taken again")
        events = inst.wait_events("delivery", len(RCPTS), id=qid)
        by_rcpt = {e["to"]: e for e in events}
        assert len(events) == len(RCPTS), events
        for r in RCPTS[:2]:
            assert by_rcpt[f"<{r}>"]["result"] == "sent" and by_rcpt[f"<{r}>"]["attempt"] == "1", events
        for r in RCPTS[2:]:
            e = by_rcpt[f"<{r}>"]
            assert e["result"] == "deferred" and e["attempt"] == "1" and e["reason"].startswith("452 "), e
        assert [sorted(m[1]) for m in peer.messages] == [RCPTS[0:2]]
        assert len(peer.connections) == 1, [c.verbs() for c in peer.connections]
        verbs = peer.connections[0].verbs()
        assert verbs.count("MAIL") == 2, verbs
        second = verbs[verbs.index("MAIL", verbs.index("MAIL") + 1):]
        assert second[:5] == ["MAIL", "RCPT", "RCPT", "RCPT", "DATA"] and "RSET" in second, verbs
        assert len(_mail_froms(peer)) == 2


def test_a_reload_between_transactions_leaves_the_rest_to_the_new_pass(make_instance):
    """A reload (SIGHUP) while the first transaction waits for its final reply: no further
    transaction starts under the old config; the recipients over the limit are left as they
    were (not counted as attempted, not deferred for a retry step) and the new pass sends them
    at once: every recipient sent in attempt 1."""
    codes = {RCPTS[0]: 250, RCPTS[1]: 250, RCPTS[2]: [452, 250], RCPTS[3]: [452, 250],
             RCPTS[4]: [452, 452, 250]}
    with ScriptedPeer(starttls=False, rcpt_codes=codes, final_delay=1.0) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1h"]')
        qid = inst.send("alice@sender.test", RCPTS, "reload between transactions")
        peer.wait_messages(1)  # recorded at the end of data; the reply comes 1 s later
        inst.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: len(inst.events("reload")) == 1, what="reload logged")
        events = inst.wait_events("delivery", len(RCPTS), id=qid, timeout=20)
        outcomes = sorted((e["to"], e["result"], e["attempt"]) for e in events)
        assert outcomes == sorted((f"<{r}>", "sent", "1") for r in RCPTS), outcomes
        assert inst.events("delivery_replanned", id=qid), inst.log()[-3000:]
        assert sorted(r for m in peer.messages for r in m[1]) == sorted(RCPTS), peer.messages
