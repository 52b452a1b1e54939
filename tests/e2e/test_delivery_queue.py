"""tests/e2e/test_delivery_queue.py - queue commands (SPEC §4) on mail deferred by a real SMTP
peer that greets 421 forever: list shows the deferral, retry makes an immediate attempt, hold
stops attempts, release resumes them, delete removes the message."""
import re
import time

from conftest import relay_domain, wait_until
from peers import ScriptedPeer

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_queue_commands_on_deferred_mail(make_instance):
    with ScriptedPeer(starttls=False, greeting_codes=(421,)) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"),
                             queue_extra='retry_schedule = ["3s"]')
        qid = inst.send("alice@example.test", ["bob@internal.test"], "stuck")
        inst.wait_events("delivery", 1, id=qid, result="deferred")

        def state():
            return next((m for m in inst.queue_json("list") if m["id"] == qid), None)

        m = state()
        assert m is not None and m["held"] is False and m["sender"] == "alice@example.test", m
        (r,) = m["recipients"]
        assert r["address"] == "bob@internal.test" and r["status"] == "deferred", r
        assert r["attempts"] == 1, r
        assert ISO.match(r["next_attempt"]), r
        assert "421" in r["last_reply"], r
        assert len(peer.connections) == 1

        # retry: an attempt now, not in 3 s
        t = time.time()
        res = inst.queue_cli("retry", qid)
        assert res.returncode == 0, res.stderr
        peer.wait_connections(2, timeout=2.5)
        assert peer.connections[1].accepted - t < 1.5, "queue retry must attempt at once"
        wait_until(lambda: state()["recipients"][0]["attempts"] == 2, what="second attempt recorded")
        assert state()["recipients"][0]["status"] == "deferred"

        # hold: no attempts, whatever the schedule says (3 s)
        res = inst.queue_cli("hold", qid)
        assert res.returncode == 0, res.stderr
        assert state()["held"] is True
        assert inst.spool_files("hold") == [qid] and qid not in inst.spool_files("queue")
        n = len(peer.connections)
        time.sleep(4.0)
        assert len(peer.connections) == n, "a held message must not be attempted"
        inst.queue_cli("retry", qid)  # retry does not apply to a held message
        time.sleep(0.5)
        assert len(peer.connections) == n, "`queue retry` must not deliver a held message"
        assert state()["held"] is True

        # release: attempts resume (the next attempt is already due)
        res = inst.queue_cli("release", qid)
        assert res.returncode == 0, res.stderr
        peer.wait_connections(n + 1, timeout=2.5)
        m = state()
        assert m["held"] is False
        wait_until(lambda: state()["recipients"][0]["attempts"] == 3, what="third attempt recorded")
        assert len(inst.events("delivery", id=qid)) == 3
        assert not peer.saw_mail_from()

        # delete: gone, and no bounce
        res = inst.queue_cli("delete", qid)
        assert res.returncode == 0, res.stderr
        assert inst.queue_json("list") == []
        n = len(peer.connections)
        time.sleep(3.5)
        assert len(peer.connections) == n, "a deleted message must not be attempted"
        assert [b for b in inst.events("bounce") if b.get("id") == qid] == []
