"""tests/e2e/hostile.py - hostile peers and the measurements taken while they attack (issue 5,
points 5 and 6). Used by test_hostile_clients.py / test_hostile_servers.py (short, bounded
versions in `make test`) and by bench/hostile/run.py (the long version in `make torture`).

Inbound side:
  Prober          a well-behaved client running complete transactions (EHLO, MAIL, RCPT, DATA,
                  QUIT) back to back from its own source address, timing each one
  RssSampler      the server's VmRSS sampled every 20 ms, plus VmHWM (the kernel's peak)
  Attack          N attacker threads, each running one attacker function until told to stop;
                  attacker functions below (slowloris, connection flood, endless line, endless
                  DATA, binary garbage, pipelining flood, SMTP smuggling) count what they saw
                  in a shared Tally (replies by code, closes, errors)
Outbound side:
  HostileServer   a loopback TCP server whose every connection runs a Python function (a
                  "script") with a PeerConn: raw sends, line reads, a TLS upgrade, and a
                  configurable well-formed SMTP responder (smtp_dialogue) with hooks for the
                  attacks: replies injected behind "220 Ready", different capabilities before
                  and after TLS, dropping or going silent after the end of data.

Nothing here asserts timing; callers assert containment and memory, and record latency.
"""
import random
import re
import socket
import ssl
import statistics
import threading
import time
from collections import Counter

from conftest import RawSMTP, qid_of
from peers import ScriptedPeer

MIB = 1024 * 1024

# --- measurements ------------------------------------------------------------------------------


def proc_status_kib(pid, field):
    """A `VmXXX:   1234 kB` field of /proc/PID/status, in KiB (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Background:
    """A loop in a daemon thread: _step() until stop() (which joins for `join_timeout` s)."""

    join_timeout = 5.0

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set() and self._step() is not False:
            pass

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(self.join_timeout)
        return self


class RssSampler(Background):
    """Samples the process's VmRSS every `interval` seconds in a thread; .peak_kib is the
    largest sample, .hwm_kib the kernel's VmHWM (peak RSS since start) at stop()."""

    def __init__(self, pid, interval=0.02):
        super().__init__()
        self.pid = pid
        self.interval = interval
        self.peak_kib = proc_status_kib(pid, "VmRSS")
        self.hwm_kib = 0

    def _step(self):
        self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
        self._stop.wait(self.interval)

    def stop(self):
        super().stop()
        self.peak_kib = max(self.peak_kib, proc_status_kib(self.pid, "VmRSS"))
        self.hwm_kib = proc_status_kib(self.pid, "VmHWM")
        return self


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def latency_summary(latencies):
    """{"n", "p50_ms", "p99_ms", "max_ms"} of a list of seconds (None values when empty)."""
    if not latencies:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {"n": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * percentile(latencies, 99), "max_ms": 1000 * max(latencies)}


def probe_body(n):
    return (f"From: <probe@example.test>\r\nSubject: probe {n}\r\nMessage-ID: <probe-{n}@probe.test>\r\n"
            f"\r\nwell-behaved message {n}\r\n").encode()


class Prober(Background):
    """A well-behaved client: complete transactions one after another (a new connection each:
    greeting, EHLO, MAIL, RCPT, DATA, 250 queued, QUIT), from `source`, to `rcpt`. Each
    transaction's wall time is in .latencies (seconds); failures (any exception, any reply
    but the expected one) are in .failures and never stop the prober."""

    def __init__(self, host, port, source="127.0.0.2", rcpt="probe@localhost", pause=0.05, timeout=30.0):
        super().__init__()
        self.host, self.port, self.source, self.rcpt = host, port, source, rcpt
        self.pause = pause
        self.timeout = timeout
        self.join_timeout = timeout + 5
        self.latencies = []
        self.failures = []
        self.qids = []
        self.started_at = {}  # probe number -> time.time() when its connection was opened
        self.queued_at = {}   # probe number -> time.time() of its "250 queued"
        self._n = 0

    def transaction(self):
        n = self._n
        self._n += 1
        t0 = time.monotonic()
        self.started_at[n] = time.time()
        with RawSMTP(self.host, self.port, timeout=self.timeout, source=self.source) as c:
            assert c.greeting.code == 220, c.greeting
            c.ehlo("probe.test")
            qid = qid_of(c.send_mail("probe@example.test", [self.rcpt], probe_body(n)))
            self.queued_at[n] = time.time()
            assert c.cmd("QUIT").code == 221
        self.latencies.append(time.monotonic() - t0)
        self.qids.append(qid)
        return qid

    def _step(self):
        try:
            self.transaction()
        except Exception as e:  # recorded; the test asserts there are none
            self.failures.append(repr(e))
        self._stop.wait(self.pause)

    def summary(self):
        return latency_summary(self.latencies)


# --- attackers (inbound) -----------------------------------------------------------------------


class Tally:
    """Thread-safe counters shared by the attackers of one attack."""

    def __init__(self):
        self.lock = threading.Lock()
        self.c = Counter()
        self.samples = {}  # name -> one example (e.g. the first 421 reply)

    def add(self, key, n=1, sample=None):
        with self.lock:
            self.c[key] += n
            if sample is not None and key not in self.samples:
                self.samples[key] = sample

    def __getitem__(self, key):
        with self.lock:
            return self.c[key]

    def __repr__(self):
        with self.lock:
            return f"Tally({dict(self.c)}, samples={self.samples})"


class Attack:
    """`count` threads, each running `fn(host, port, stop, tally, index)` (optionally with a
    pause between the starts). stop() sets the event, closes nothing itself (each attacker
    owns its sockets and must return soon after `stop` is set) and joins the threads."""

    def __init__(self, fn, host, port, count, stagger=0.0, **kw):
        self.fn, self.host, self.port, self.count, self.stagger, self.kw = fn, host, port, count, stagger, kw
        self.stop_event = threading.Event()
        self.tally = Tally()
        self.threads = []

    def _wrap(self, i):
        try:
            self.fn(self.host, self.port, self.stop_event, self.tally, i, **self.kw)
        except Exception as e:  # an attacker that crashed is counted, not raised
            self.tally.add("attacker_exception", sample=repr(e))

    def start(self):
        for i in range(self.count):
            t = threading.Thread(target=self._wrap, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)
            if self.stagger:
                time.sleep(self.stagger)
        return self

    def stop(self, join_timeout=20.0):
        self.stop_event.set()
        deadline = time.time() + join_timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.time()))
        alive = sum(t.is_alive() for t in self.threads)
        if alive:
            self.tally.add("attacker_stuck", alive)
        return self


_REPLY_START = re.compile(rb"^(\d{3}) ", re.M)


def _connect(host, port, source=None, timeout=10.0):
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    return s


def _connect_or_tally(host, port, source, tally):
    """A connection, or None after counting the failure as `connect_error`."""
    try:
        return _connect(host, port, source)
    except OSError as e:
        tally.add("connect_error", sample=repr(e))
        return None


def _recv_until_closed(sock, limit=1 << 20, timeout=5.0):
    """Reads until EOF or timeout; returns (bytes, closed)."""
    got = b""
    sock.settimeout(timeout)
    try:
        while len(got) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                return got, True
            got += chunk
    except (socket.timeout, TimeoutError):
        return got, False
    except OSError:
        return got, True
    return got, False


def _final_codes(data):
    """The codes of the complete last lines ("ddd ") in `data`."""
    return [int(m.group(1)) for m in _REPLY_START.finditer(data)]


def slowloris(host, port, stop, tally, i, interval=1.0, source=None, line=b"EHLO slow.loris.test\r\n"):
    """One byte every `interval` seconds, repeating `line`, until stopped or closed. Counts the
    server's final replies by code (e.g. 421 when the command timeout fires first)."""
    s = _connect_or_tally(host, port, source, tally)
    if s is None:
        return
    with s:
        s.settimeout(interval)
        buf = b""
        pos = 0
        try:
            greeting = s.recv(512)
        except OSError as e:
            tally.add("no_greeting", sample=repr(e))
            return
        if not greeting.startswith(b"220"):
            tally.add(f"greeting_{greeting[:3].decode(errors='replace')}", sample=greeting)
            return
        tally.add("admitted")
        while not stop.is_set():
            try:
                s.sendall(line[pos:pos + 1])
                tally.add("bytes_sent")
            except OSError:
                tally.add("closed_by_server")
                break
            pos = (pos + 1) % len(line)
            deadline = time.monotonic() + interval
            closed = False
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    s.settimeout(min(0.5, max(0.01, deadline - time.monotonic())))
                    chunk = s.recv(4096)
                except (socket.timeout, TimeoutError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                buf += chunk
            if closed:
                tally.add("closed_by_server")
                break
        for code in _final_codes(buf):
            tally.add(f"reply_{code}", sample=buf[-200:])


def connection_flood(host, port, stop, tally, i, source=None, hold=True):
    """Connects again and again: a 421 greeting is counted and the socket closed at once; an
    admitted connection (220) is held open, idle, until stopped (or closed by the server)."""
    while not stop.is_set():
        try:
            s = _connect(host, port, source, timeout=5.0)
        except OSError as e:
            tally.add("connect_error", sample=repr(e))
            stop.wait(0.05)
            continue
        with s:
            try:
                s.settimeout(5.0)
                g = s.recv(512)
            except OSError as e:
                tally.add("no_greeting", sample=repr(e))
                continue
            code = g[:3].decode(errors="replace")
            if stop.is_set():
                # Admitted ones close once stop is set: a slot freed then is no over-admission.
                tally.add(f"after_stop_{code}")
                return
            tally.add(f"greeting_{code}", sample=g)
            if code == "220" and hold:
                while not stop.is_set():
                    s.settimeout(0.2)
                    try:
                        if not s.recv(512):
                            tally.add("admitted_closed_by_server")
                            break
                    except (socket.timeout, TimeoutError):
                        pass
                    except OSError:
                        tally.add("admitted_closed_by_server")
                        break
                return
            if code == "421":
                rest, closed = _recv_until_closed(s, timeout=5.0)
                tally.add("refused_closed" if closed else "refused_left_open")


def _ehlo(s):
    s.settimeout(10.0)
    got = b""
    while b"\r\n" not in got:
        chunk = s.recv(512)
        if not chunk:
            raise ConnectionError("closed before the greeting")
        got += chunk
    s.sendall(b"EHLO attacker.test\r\n")
    got = b""
    while not re.search(rb"^250 ", got, re.M):
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed before the EHLO reply")
        got += chunk


def _stream_then(s, stop, tally, chunk, end, max_bytes):
    """Sends `chunk` repeatedly until stopped (or max_bytes), then `end`; returns what the
    server sent back until it went quiet or closed."""
    sent = 0
    s.settimeout(2.0)
    try:
        while not stop.is_set() and sent < max_bytes:
            s.sendall(chunk)
            sent += len(chunk)
        tally.add("bytes_sent", sent)
        s.sendall(end)
    except OSError as e:
        tally.add("send_error", sample=repr(e))
    got, closed = _recv_until_closed(s, timeout=3.0)
    return got, closed


def endless_line(host, port, stop, tally, i, max_bytes=1 << 40, source=None):
    """After EHLO: one command line that never ends ("NOOP xxxx..."), at full speed, until
    stopped; then its CRLF and QUIT. Counts the replies (500 for the line, 221 for QUIT)."""
    while not stop.is_set():
        try:
            with _connect(host, port, source) as s:
                _ehlo(s)
                got, closed = _stream_then(s, stop, tally, b"NOOP " + b"x" * 65531, b"\r\nQUIT\r\n", max_bytes)
                for code in _final_codes(got):
                    tally.add(f"reply_{code}", sample=got[:200])
                tally.add("rounds")
        except OSError as e:
            tally.add("connect_error", sample=repr(e))
            stop.wait(0.1)


def endless_data(host, port, stop, tally, i, rcpt="bob@localhost", max_bytes=1 << 40, source=None,
                 line=b"x" * 76 + b"\r\n"):
    """MAIL, RCPT, DATA, then body lines at full speed until stopped; then the end of data and
    QUIT. Counts the replies (552 when the body passed max_message_size)."""
    while not stop.is_set():
        try:
            with _connect(host, port, source) as s:
                _ehlo(s)
                s.sendall(f"MAIL FROM:<attacker@example.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
                got = b""
                s.settimeout(10.0)
                while len(_final_codes(got)) < 3:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise ConnectionError(f"closed after {got!r}")
                    got += chunk
                if _final_codes(got) != [250, 250, 354]:
                    tally.add("unexpected", sample=got)
                    return
                block = line * (65536 // len(line))
                got, closed = _stream_then(s, stop, tally, block, b"\r\n.\r\nQUIT\r\n", max_bytes)
                for code in _final_codes(got):
                    tally.add(f"reply_{code}", sample=got[:200])
                tally.add("rounds")
        except OSError as e:
            tally.add("connect_error", sample=repr(e))
            stop.wait(0.1)


def garbage(host, port, stop, tally, i, seed=None, source=None):
    """Random binary bytes (with some CR, LF, NUL and high bytes) at full speed; reconnects
    whenever the server closes. Counts the closes and the reply codes seen."""
    rnd = random.Random(seed if seed is not None else i)
    blobs = [rnd.randbytes(8192) + b"\x00\r\n\xff\n" for _ in range(16)]  # made once: send, not compute
    k = 0
    while not stop.is_set():
        try:
            with _connect(host, port, source) as s:
                s.settimeout(2.0)
                got = b""
                try:
                    while not stop.is_set():
                        s.sendall(blobs[k % len(blobs)])
                        k += 1
                        s.setblocking(False)
                        try:
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            got += chunk[-4096:]
                        except BlockingIOError:
                            pass
                        finally:
                            s.setblocking(True)
                            s.settimeout(2.0)
                except OSError:
                    pass
                more, closed = _recv_until_closed(s, timeout=2.0)
                got += more
                tally.add("closed_by_server" if closed or not stop.is_set() else "stopped_open")
                if b"421 4.7.0" in got:
                    tally.add("too_many_errors_421")
        except OSError as e:
            tally.add("connect_error", sample=repr(e))
            stop.wait(0.1)


def pipelining_flood(host, port, stop, tally, i, reads=True, source=None, batch=2000, max_batches=None):
    """After EHLO, batches of pipelined commands (RSET, NOOP, MAIL, RCPT) as fast as the server
    takes them, at most `max_batches` (None: until stopped). reads=True: a second thread drains
    and counts the replies (each command must get exactly one). reads=False: replies are never
    read, so the server's writes block: its memory must not grow with what it cannot send."""
    # Only commands that succeed: refusals count towards max_errors and would end the session.
    cmds = b"RSET\r\nNOOP\r\nMAIL FROM:<flood@example.test>\r\nRCPT TO:<bob@localhost>\r\n"
    per_batch = batch * 4
    s = _connect_or_tally(host, port, source, tally)
    if s is None:
        return
    with s:
        _ehlo(s)
        replies = Counter()
        done = threading.Event()

        def reader():
            buf = b""
            s2 = s
            while True:
                try:
                    chunk = s2.recv(1 << 16)
                except (socket.timeout, TimeoutError):
                    if done.is_set():
                        return
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                *lines, buf = buf.split(b"\r\n")
                for l in lines:
                    if len(l) >= 4 and l[3:4] == b" ":
                        replies[l[:3]] += 1

        rt = None
        if reads:
            rt = threading.Thread(target=reader, daemon=True)
            rt.start()
        sent = 0
        exact = True  # False once a write timed out part-way: the count of commands is unknown
        s.settimeout(10.0 if reads else 1.0)
        blob = cmds * batch
        try:
            while not stop.is_set() and (max_batches is None or sent < max_batches * per_batch):
                try:
                    s.sendall(blob)
                    sent += per_batch
                except (socket.timeout, TimeoutError):
                    tally.add("send_blocked")  # the server stopped reading: back-pressure
                    exact = False
                    if reads:
                        break
                    stop.wait(0.2)
        except OSError as e:
            tally.add("send_error", sample=repr(e))
        tally.add("commands_sent", sent)
        if not exact:
            tally.add("count_inexact")
            # the batch whose write timed out went out in part: up to per_batch more commands
            tally.add("commands_unsure", per_batch)
        if reads:
            try:
                s.sendall(b"QUIT\r\n")
            except OSError:
                pass
            rt.join(30)
            done.set()
            tally.add("replies", sum(replies.values()))
            for code, n in replies.items():
                tally.add(f"reply_{code.decode()}", n)


SMUGGLE_ENDS = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"]
SMUGGLED = (b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled\r\n")


def smuggler(host, port, stop, tally, i, rcpt="bob@localhost", source=None, max_messages=None):
    """Messages whose body carries a fake end of data (bare LF / bare CR forms) followed by a
    whole smuggled transaction for victim@localhost, back to back on one connection. Counts
    the replies: exactly one 250 per message, nothing for the smuggled commands."""
    n = 0
    while not stop.is_set():
        try:
            with _connect(host, port, source) as s:
                _ehlo(s)
                s.settimeout(10.0)
                for _ in range(20):
                    if stop.is_set() or (max_messages is not None and n >= max_messages):
                        break
                    fake = SMUGGLE_ENDS[n % len(SMUGGLE_ENDS)]
                    body = b"Subject: innocent %d\r\n\r\nhello" % n + fake + SMUGGLED + b".\r\n"
                    s.sendall(f"MAIL FROM:<alice@example.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
                    got = b""
                    while len(_final_codes(got)) < 3:
                        chunk = s.recv(4096)
                        if not chunk:
                            raise ConnectionError(f"closed after {got!r}")
                        got += chunk
                    s.sendall(body)
                    got = b""
                    while len(_final_codes(got)) < 1:
                        chunk = s.recv(4096)
                        if not chunk:
                            raise ConnectionError(f"closed after {got!r}")
                        got += chunk
                    codes = _final_codes(got)
                    tally.add(f"reply_{codes[0]}", sample=got)
                    n += 1
                    # anything more would be a reply to a smuggled command
                    s.settimeout(0.05)
                    try:
                        extra = s.recv(4096)
                        if extra:
                            tally.add("extra_replies", sample=extra)
                    except (socket.timeout, TimeoutError):
                        pass
                    s.settimeout(10.0)
                s.sendall(b"QUIT\r\n")
                tally.add("rounds")
            if max_messages is not None and n >= max_messages:
                return
        except OSError as e:
            tally.add("connect_error", sample=repr(e))
            stop.wait(0.1)


# --- hostile servers (outbound) ----------------------------------------------------------------


class PeerConn:
    """One connection to a HostileServer: what the client sent, and tools for the script."""

    def __init__(self, server, sock, addr):
        self.server = server
        self.sock = sock
        self.addr = addr
        self.accepted = time.time()
        self.closed_at = None       # when the script ended (the connection was closed)
        self.commands = []          # (line, tls_active)
        self.tls = False
        self.tls_version = None
        self.messages = []          # (mail_from, [rcpts], data, tls) after a 250 final reply
        self.arrived = []           # time.time() of each of them
        self.bytes_sent = 0
        self.client_closed = False  # the client closed (EOF) while the script was sending
        self.buf = b""

    # raw I/O ---------------------------------------------------------------------------------
    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        try:
            self.sock.sendall(data)
            self.bytes_sent += len(data)
            return True
        except OSError:
            self.client_closed = True
            return False

    def readline(self, timeout=30.0):
        """One line (bytes with its LF), or None at EOF, timeout or server stop."""
        deadline = time.time() + timeout
        while b"\n" not in self.buf:
            if self.server.stopped or time.time() > deadline:
                return None
            try:
                self.sock.settimeout(0.2)
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
                continue
            except OSError:
                return None
            if not chunk:
                self.client_closed = True
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def command(self, timeout=30.0):
        line = self.readline(timeout)
        if line is None:
            return None
        cmd = line.decode(errors="replace").rstrip("\r\n")
        with self.server.lock:
            self.commands.append((cmd, self.tls))
        return cmd

    def hold(self):
        """Say nothing; read and drop whatever comes, until the client closes or the server stops."""
        while not self.server.stopped:
            try:
                self.sock.settimeout(0.2)
                if not self.sock.recv(65536):
                    self.client_closed = True
                    return
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                self.client_closed = True
                return

    def stream(self, gen, pause=0.0):
        """Sends the chunks of `gen` (pausing `pause` s between them) until the client closes
        or the server stops."""
        for chunk in gen:
            if self.server.stopped or not self.send(chunk):
                return
            if pause:
                time.sleep(pause)

    def starttls(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.server.cert, self.server.key)
        self.sock.settimeout(10)
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.tls = True
        self.tls_version = self.sock.version()
        self.buf = b""

    def verbs(self):
        return [c.split(" ", 1)[0].upper() for c, _ in self.commands]


CAPS = ("PIPELINING", "8BITMIME", "SIZE 10240000", "ENHANCEDSTATUSCODES")


def ehlo_reply(name, caps):
    lines = [name] + list(caps)
    return "".join(f"250{'-' if k < len(lines) - 1 else ' '}{l}\r\n" for k, l in enumerate(lines)).encode()


def smtp_dialogue(pc, *, greeting=b"220 hostile.test ESMTP\r\n", caps=CAPS, caps_tls=CAPS, starttls=False,
                  after_220=b"", final=b"250 2.0.0 queued\r\n", on_data_end=None):
    """A well-formed SMTP server with hooks for the attacks:
    caps / caps_tls     EHLO capabilities before / inside TLS (STARTTLS added before TLS when
                        `starttls`)
    after_220           bytes sent in the same write as "220 Ready" to STARTTLS, before the
                        handshake (response injection)
    final               the reply after the end of data (bytes)
    on_data_end(pc)     called instead of sending `final`: e.g. close, or hold silently;
                        returns True to go on with the dialogue, False to end it
    A message counts as accepted (pc.messages) only when the 250 final reply was sent."""
    if greeting:
        pc.send(greeting)
    mail_from, rcpts = None, []
    while True:
        cmd = pc.command()
        if cmd is None:
            return
        verb = cmd.split(" ", 1)[0].upper()
        if verb == "EHLO":
            c = list(caps_tls if pc.tls else caps)
            if starttls and not pc.tls:
                c.append("STARTTLS")
            pc.send(ehlo_reply("hostile.test", c))
        elif verb == "HELO":
            pc.send(b"250 hostile.test\r\n")
        elif verb == "STARTTLS" and not pc.tls:
            pc.send(b"220 2.0.0 Ready to start TLS\r\n" + after_220)  # one write
            try:
                pc.starttls()
            except (OSError, ssl.SSLError) as e:
                pc.server.note(f"handshake failed: {e!r}")
                return
        elif verb == "MAIL":
            mail_from, rcpts = cmd[10:].strip(), []
            pc.send(b"250 2.1.0 Ok\r\n")
        elif verb == "RCPT":
            rcpts.append(cmd[8:].strip().strip("<>"))
            pc.send(b"250 2.1.5 Ok\r\n")
        elif verb == "DATA":
            pc.send(b"354 go ahead\r\n")
            data = b""
            while True:
                l = pc.readline()
                if l is None:
                    return
                if l == b".\r\n":
                    break
                data += l[1:] if l.startswith(b"..") else l
            with pc.server.lock:
                pc.server.data_ends += 1
            if on_data_end is not None:
                if not on_data_end(pc):
                    return
                continue
            pc.send(final)
            if final.startswith(b"250"):
                with pc.server.lock:
                    pc.messages.append((mail_from, list(rcpts), data, pc.tls))
                    pc.arrived.append(time.time())
        elif verb == "RSET":
            mail_from, rcpts = None, []
            pc.send(b"250 2.0.0 Ok\r\n")
        elif verb == "QUIT":
            pc.send(b"221 2.0.0 Bye\r\n")
            return
        else:
            pc.send(b"250 2.0.0 Ok\r\n")


class HostileServer(ScriptedPeer):
    """peers.ScriptedPeer's loopback listener (bind, accept thread, clean stop), but every
    accepted connection runs `script(pc)` in its own thread (pc: PeerConn) and is closed when
    the script returns. `script` may be swapped at any time (the next connection uses the new
    one). cert/key: for PeerConn.starttls(). .connections holds the PeerConns."""

    def __init__(self, script, host="127.0.0.1", cert=None, key=None):
        super().__init__(host=host, cert=cert, key=key)
        self.script = script
        self.notes = []
        self.data_ends = 0  # end-of-data sequences received (whatever was answered)

    def note(self, text):
        with self.lock:
            self.notes.append(text)

    def _serve(self, s, addr=None, accepted=None):
        pc = PeerConn(self, s, addr)
        with self.lock:
            self.connections.append(pc)
        try:
            self.script(pc)
        except Exception as e:  # the script's own bugs show up in the test's assertion text
            self.note(f"script error: {e!r}")
        finally:
            pc.closed_at = time.time()
            try:
                pc.sock.close()
            except OSError:
                pass

    def accepted(self):
        """[(mail_from, [rcpts], data, tls)] of every message answered 250."""
        with self.lock:
            return [m for c in self.connections for m in c.messages]

    def arrivals(self):
        """[(time.time(), data)] of every message answered 250."""
        with self.lock:
            return [(t, m[2]) for c in self.connections for t, m in zip(c.arrived, c.messages)]

    def conns(self):
        with self.lock:
            return list(self.connections)


def endless_lines(prefix=b"250-", width=70):
    """An endless multi-line reply: b"250-xxxx...\\r\\n" forever."""
    line = prefix + b"x" * width + b"\r\n"
    block = line * 200
    while True:
        yield block


def trickle(data, step=1):
    """`data` in pieces of `step` bytes (for a server that answers one byte at a time)."""
    for k in range(0, len(data), step):
        yield data[k:k + step]
