"""tests/e2e/test_stop_and_spool_lock.py - stopping and starting `postern serve` around a
spool in use (SPEC §3.1, §4).

- SIGTERM while an outbound transaction waits for its final reply: the drain lets it finish
  (up to 10 s), the recipient is recorded as sent and the message removed; after a restart the
  peer does not get it a second time.
- A second `postern serve` on the spool of a running one exits non-zero naming the spool, and
  cleans up nothing: a file in tmp/ (a commit in flight for the first server) is still there.
  Once the first is gone (even by kill -9) the spool can be taken.
"""
import time

from conftest import relay_domain, wait_until
from peers import ScriptedPeer


def test_sigterm_lets_the_transaction_under_way_finish_and_record_it(make_instance):
    with ScriptedPeer(starttls=False, final_delay=1.0) as peer:
        inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{peer.port}"))
        qid = inst.send("alice@example.test", ["bob@internal.test"], "drained")
        # The peer has the whole message; its 250 comes a second later.
        peer.wait_messages(1, timeout=10)
        t0 = time.time()
        inst.stop()  # SIGTERM, waits for the exit
        took = time.time() - t0
        assert inst.proc.returncode == 0, inst.log()[-2000:]
        assert took < 8, f"the drain took {took:.1f}s"
        assert inst.events("delivery", id=qid, result="sent"), \
            f"the transaction was cut off by the stop:\n{inst.log()[-3000:]}"
        assert inst.spool_files("queue") == [], "delivered, yet still queued"

        inst.start()
        time.sleep(1.5)  # a redelivery would start at once (the recipient would still be queued)
        assert len(peer.messages) == 1, f"delivered {len(peer.messages)} times"
        assert inst.spool_files("queue") == []


def test_second_server_on_the_same_spool_exits_and_touches_nothing(make_instance):
    first = make_instance()
    spool = first.dir / "var" / "spool"
    planted = spool / "tmp" / "0123456789ABCDEF0"
    planted.write_bytes(b"a commit in flight for the first server")

    second = make_instance(start=False)
    second.write_config(second.config.read_text().replace('dir = "var/spool"', f'dir = "{spool}"'))
    assert f'dir = "{spool}"' in second.config.read_text()
    second.start(wait=False)
    rc = second.proc.wait(10)
    assert rc != 0
    log = second.log()
    assert "another postern server" in log and str(spool) in log, log
    assert planted.exists(), "the second server deleted the first one's tmp/ file"
    assert first.alive
    first.send("alice@example.test", ["bob@localhost"], "still served")
    first.wait_maildir("bob")

    # kill -9 leaves no stale lock: the spool is free again, and a start cleans tmp/ up.
    first.kill9()
    second.start()
    assert second.alive
    wait_until(lambda: not planted.exists(), timeout=5, what="tmp/ cleaned by the new owner")
