"""tests/e2e/test_unreachable.py - a next-hop address whose connection failed is not connected to
again before the first step of queue.retry_schedule (policy/unreachable.hpp; Postfix's dead
destinations): mail for it meanwhile is deferred at once, "delivery temporarily suspended", with
the failure's reason. `postern queue retry` tries it again at once; so does any delivery once
the first retry step has passed.

The address is a free port on loopback: refused first, then a scripted peer listening on it,
which records every connection it gets.
"""
import time

from conftest import free_port, relay_domain, wait_until
from peers import ScriptedPeer


def deferred_event(inst, qid):
    e = inst.wait_events("delivery", 1, id=qid)[0]
    assert e["result"] == "deferred", e
    return e


def test_an_unreachable_address_is_suspended_until_queue_retry(make_instance):
    port = free_port()
    inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{port}"),
                         queue_extra='retry_schedule = ["1h"]')
    first = inst.send("alice@example.test", ["bob@internal.test"], "refused")
    e = deferred_event(inst, first)
    assert e["dsn"] == "4.4.1" and "Connection refused" in e["reason"], e
    assert not e["reason"].startswith("delivery temporarily suspended"), e

    with ScriptedPeer(starttls=False, port=port) as peer:
        # The address listens again, but it was refused within the first retry step (1 h): the
        # next message is deferred without a connection, with the refusal as its reason.
        second = inst.send("alice@example.test", ["carol@internal.test"], "suspended")
        e = deferred_event(inst, second)
        assert e["dsn"] == "4.4.1" and e["relay"] == "none", e  # no session: Postfix's relay=none
        assert e["reason"] == (f"delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:{port}: "
                               "Connection refused"), e
        time.sleep(0.3)
        assert peer.connections == [], peer.all_commands()

        # An administrator's retry tries the address again: both messages go.
        assert inst.queue_cli("retry", "--all").returncode == 0
        msgs = peer.wait_messages(2, timeout=15)
        assert sorted(m[1][0] for m in msgs) == ["bob@internal.test", "carol@internal.test"], msgs
        wait_until(lambda: inst.spool_files("queue") == [], what="queue empty")


def test_the_suspension_ends_with_the_first_retry_step(make_instance):
    """retry_schedule = ["2s"]: the address refused is tried again by the first message's own
    retry two seconds later, which delivers, and a message sent after that goes at once."""
    port = free_port()
    inst = make_instance(domains=relay_domain("internal.test", f"127.0.0.1:{port}"),
                         queue_extra='retry_schedule = ["2s"]')
    first = inst.send("alice@example.test", ["bob@internal.test"], "refused")
    deferred_event(inst, first)
    with ScriptedPeer(starttls=False, port=port) as peer:
        second = inst.send("alice@example.test", ["carol@internal.test"], "suspended")
        assert deferred_event(inst, second)["reason"].startswith("delivery temporarily suspended: "), second
        msgs = peer.wait_messages(2, timeout=20)  # both retries, once the 2 s are over
        assert sorted(m[1][0] for m in msgs) == ["bob@internal.test", "carol@internal.test"], msgs
        third = inst.send("alice@example.test", ["dave@internal.test"], "reached again")
        e = inst.wait_events("delivery", 1, id=third)[0]
        assert e["result"] == "sent" and e["attempt"] == "1", e


def test_a_suspended_host_is_logged_as_no_session_after_another_hosts_failure(make_instance):
    """relay_to = [A, B]: B was refused for an earlier message (down); this one is refused by A,
    then finds B down. Its line names B's suspension and no session (relay=none), not A."""
    a, b = free_port(), free_port()
    inst = make_instance(domains=relay_domain("b.test", f"127.0.0.1:{b}")
                         + relay_domain("ab.test", f"127.0.0.1:{a}", f"127.0.0.1:{b}"),
                         queue_extra='retry_schedule = ["1h"]')
    deferred_event(inst, inst.send("alice@example.test", ["bob@b.test"], "B refused"))
    e = deferred_event(inst, inst.send("alice@example.test", ["carol@ab.test"], "A refused, B down"))
    assert e["reason"] == (f"delivery temporarily suspended: connect to 127.0.0.1[127.0.0.1]:{b}: "
                           "Connection refused"), e
    assert e["relay"] == "none", e
