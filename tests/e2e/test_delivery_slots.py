"""Outbound delivery slots: at most 20 concurrent deliveries per destination, waiting
deliveries start as slots come free, one per freed slot (runtime/queue_runner.cpp).

A slow sink (each end of DATA answered after a pause) with a backlog of messages for one
destination: the sink never sees more than 20 sessions at once, it does see 20 (so the limit,
not the load, is what bounded it), and every message arrives exactly once — a waiter that is
never woken would leave messages in the queue. A second destination is not held up by the
first one's backlog.
"""
import socket
import threading
import time

from conftest import relay_domain, wait_until

PER_DEST = 20


class SlowSink:
    """A minimal SMTP server: one thread per session, `pause` seconds before each 250 after
    DATA; counts sessions open at once and records each message's Subject."""

    def __init__(self, pause):
        self.pause = pause
        self.lock = threading.Lock()
        self.open = 0
        self.max_open = 0
        self.subjects = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        with self.lock:
            self.open += 1
            self.max_open = max(self.max_open, self.open)
        try:
            c.settimeout(30)
            f = c.makefile("rb")
            c.sendall(b"220 slow.test ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    c.sendall(b"250-slow.test\r\n250 PIPELINING\r\n")
                elif verb == b"DATA":
                    c.sendall(b"354 go\r\n")
                    subject = None
                    while True:
                        l = f.readline()
                        if not l or l == b".\r\n":
                            break
                        if l.startswith(b"Subject: ") and subject is None:
                            subject = l[9:].strip()
                    time.sleep(self.pause)
                    with self.lock:
                        self.subjects.append(subject)
                    c.sendall(b"250 ok\r\n")
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:  # MAIL, RCPT, RSET, NOOP
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
            c.close()

    def close(self):
        self.stopping = True
        self.sock.close()


def test_backlog_for_one_destination_respects_the_limit_and_all_arrive(make_instance):
    slow, fast = SlowSink(pause=0.3), SlowSink(pause=0)
    try:
        inst = make_instance(domains=relay_domain("slow.test", f"127.0.0.1:{slow.port}")
                             + relay_domain("fast.test", f"127.0.0.1:{fast.port}"))
        n = 120
        with inst.smtp() as c:
            c.expect("EHLO client.test", 250)
            for i in range(n):
                r = c.send_mail("a@example.test", [f"u{i}@slow.test"], f"Subject: slow-{i}\r\n\r\nbody\r\n".encode())
                assert r.code == 250, r
        # While the slow destination has its backlog, mail for another one goes straight through.
        with inst.smtp() as c:
            c.expect("EHLO client.test", 250)
            r = c.send_mail("a@example.test", ["v@fast.test"], b"Subject: fast-0\r\n\r\nbody\r\n")
            assert r.code == 250, r
        wait_until(lambda: fast.subjects == [b"fast-0"], timeout=10, what="fast.test delivered")
        assert len(slow.subjects) < n, "the slow destination had no backlog: the test shows nothing"
        wait_until(lambda: len(slow.subjects) >= n, timeout=60, what="all slow.test messages delivered")
        wait_until(lambda: inst.spool_files("queue") == [], timeout=10, what="queue empty")
        time.sleep(0.5)
        assert sorted(slow.subjects) == sorted(f"slow-{i}".encode() for i in range(n))  # once each
        assert slow.max_open <= PER_DEST, slow.max_open
        assert slow.max_open == PER_DEST, f"never {PER_DEST} at once ({slow.max_open}): the limit was not reached"
    finally:
        slow.close()
        fast.close()
