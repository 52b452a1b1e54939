"""tests/e2e/test_retry_schedule.py - queue.retry_schedule steps through its entries (SPEC §3.2).

A deferred recipient's next attempt waits the schedule's entry for the number of attempts made
so far (the first entry after the first attempt, the second after the second, the last one
repeating). The peer greets 421 twice and then 220, so the message is deferred twice and
delivered on the third attempt; the gaps between the peer's connections show which entry was
used. Only lower bounds are asserted: a slow machine may retry late, never early.
"""
from conftest import relay_domain, wait_until
from peers import ScriptedPeer, envelope_sender


def test_retry_schedule_uses_each_entry_in_turn(make_instance):
    with ScriptedPeer(starttls=False, greeting_codes=(421, 421, 220)) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1s", "4s"]')
        qid = inst.send("alice@sender.test", ["bob@internal.test"], "retry steps")
        msgs = peer.wait_messages(1, timeout=20)
        assert len(msgs) == 1 and envelope_sender(msgs[0][0]) == "alice@sender.test", msgs
        assert msgs[0][1] == ["bob@internal.test"]

        ev = inst.wait_events("delivery", 3, id=qid)
        assert [(e["attempt"], e["result"]) for e in ev] == [("1", "deferred"), ("2", "deferred"), ("3", "sent")], ev
        for e in ev[:2]:
            assert e["dsn"].startswith("4."), e
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")

        conns = peer.connections
        assert len(conns) == 3, [c.commands for c in conns]
        first_gap = conns[1].accepted - conns[0].accepted
        second_gap = conns[2].accepted - conns[1].accepted
        # 0.1 s of slack for clock granularity; the first entry alone would give ~1 s here
        assert first_gap >= 0.9, f"second attempt {first_gap:.2f}s after the first; the schedule says 1s"
        assert second_gap >= 3.9, f"third attempt {second_gap:.2f}s after the second; the schedule says 4s"
