"""tests/e2e/test_retry_schedule.py - queue.retry_schedule steps through its entries (SPEC §3.2).

A deferred recipient's next attempt waits the schedule's entry for the number of attempts made
so far: the first entry after the first attempt, the second after the second, and the last one
repeating after that. The peer greets 421 three times and then 220, so the message is deferred
three times and delivered on the fourth attempt; the gaps between the peer's connections show
which entry was used - the third gap is the repeated last entry. Only lower bounds are
asserted: a slow machine may retry late, never early. The schedule's entries differ (1 s, 3 s)
so that a runner that used the first entry again after the schedule ran out, or that stopped
retrying, fails the third-gap check or the delivery wait.
"""
from conftest import relay_domain, wait_until
from peers import ScriptedPeer, envelope_sender


def test_retry_schedule_uses_each_entry_in_turn(make_instance):
    with ScriptedPeer(starttls=False, greeting_codes=(421, 421, 421, 220)) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["1s", "3s"]')
        qid = inst.send("alice@sender.test", ["bob@internal.test"], "retry steps")
        msgs = peer.wait_messages(1, timeout=25)
        assert len(msgs) == 1 and envelope_sender(msgs[0][0]) == "alice@sender.test", msgs
        assert msgs[0][1] == ["bob@internal.test"]

        ev = inst.wait_events("delivery", 4, id=qid)
        assert [(e["attempt"], e["result"]) for e in ev] == [
            ("1", "deferred"), ("2", "deferred"), ("3", "deferred"), ("4", "sent")], ev
        for e in ev[:3]:
            assert e["dsn"].startswith("4."), e
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")

        conns = peer.connections
        assert len(conns) == 4, [c.commands for c in conns]
        gaps = [conns[i + 1].accepted - conns[i].accepted for i in range(3)]
        # 0.1 s of slack for clock granularity
        assert gaps[0] >= 0.9, f"second attempt {gaps[0]:.2f}s after the first; the schedule says 1s"
        assert gaps[1] >= 2.9, f"third attempt {gaps[1]:.2f}s after the second; the schedule says 3s"
        # the schedule has run out: its last entry repeats (not the first, not no retry at all)
        assert gaps[2] >= 2.9, f"fourth attempt {gaps[2]:.2f}s after the third; the last entry (3s) repeats"
