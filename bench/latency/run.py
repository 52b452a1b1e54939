#!/usr/bin/python3
"""bench/latency/run.py - latency from the end of DATA to the 250 reply at a fixed offered rate,
against any SMTP server on loopback (Postern or Postfix alike: issue 6).

usage: bench/latency/run.py HOST PORT (--rate R | --rate-fraction F --peak P) [options]

  --rate R             offered rate, messages/s (0.1..20000)
  --rate-fraction F --peak P
                       offered rate = F x P (e.g. 0.5 x a measured peak rate)
  --conc C             SMTP sessions held open (default 20, 1..256)
  --duration S         measured window, seconds (default 20, 1..600)
  --warmup S           transactions scheduled in the first S seconds are not counted
                       (default 2, 0..60)
  --drain S            after the last scheduled start, wait at most S s for replies (default 10)
  --size BYTES         body bytes per message (default 5120, like load.sh)
  --from A --to B      envelope (default sender@src.bench.test, rcpt@dst.bench.test)
  --server-pid PID     also report the CPU (utime+stime, including reaped children) that the
                       process tree of PID used over the run
  --label TEXT         copied into the RESULT line

How it loads the server ("open-loop-ish"): C sessions are opened, greeted and EHLO'd first.
Transaction i is then due at t0 + i/R.  When it is due it starts on a free session (one whose
previous transaction is done); if none is free it waits for one and its start is late by the
wait ("lag", reported).  Each session sends its messages back to back on the same SMTP session,
without RSET: MAIL FROM, RCPT TO, DATA, then the message with the final CRLF.CRLF in one
write, then waits for the reply.  Every command waits for its reply (no PIPELINING).
The latency of one message is the time from the return of that write to the moment the
complete reply (250) has been read; the receive time is taken when select() returns, before
any parsing.  The whole run is bounded: warmup + duration + drain + 30 s of set-up at most.

Output: human-readable lines, then one line
  RESULT latency label=.. host=.. port=.. conc=.. size=.. offered_per_s=.. achieved_per_s=..
         warmup_s=.. duration_s=.. scheduled=.. started=.. counted=.. ok=.. errors=..
         p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=.. mean_ms=..
         lag_p50_ms=.. lag_p99_ms=.. lag_max_ms=.. client_cpu_s=.. client_cpu_pct=..
         client_cpu_ms_per_msg=.. sys_busy_pct=.. [server_cpu_s=.. server_cpu_pct=.. server_cpu_ms_per_msg=..] rc=..
(cpu_pct: 100 = one core over the run; sys_busy_pct: the whole machine, 100 x nproc = all busy;
achieved_per_s = counted messages answered 250 / max(duration, time from the first counted
start to the last counted reply); percentiles are nearest-rank over the counted messages.)
Exit status 0 only if every scheduled transaction was started and answered 250.
"""
import argparse
import collections
import ipaddress
import math
import os
import resource
import selectors
import socket
import statistics
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


# --- server CPU, the way the shared tools/procmon.py counts it ---------------------------------
def tree_cpu_ticks(root):
    stats = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            rest = s[s.rindex(")") + 2:].split()
            stats[int(d)] = (int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[13]) + int(rest[14]))
        except (OSError, ValueError, IndexError):
            pass
    if root not in stats:
        return None
    children = collections.defaultdict(list)
    for pid, (ppid, _, _) in stats.items():
        children[ppid].append(pid)
    total, todo = stats[root][2], [root]   # root's reaped children (cutime+cstime)
    while todo:
        p = todo.pop()
        total += stats[p][1]
        todo.extend(children.get(p, []))
    return total


def sys_ticks():
    """(total, idle+iowait) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]), v[3] + v[4]


def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[min(k, len(sorted_vals)) - 1]


class Conn:
    __slots__ = ("sock", "state", "buf", "txn", "sched", "t_start", "t_eod", "idx")

    def __init__(self, idx):
        self.idx = idx
        self.sock = None
        self.state = "closed"
        self.buf = b""
        self.txn = -1


class Run:
    def __init__(self, a):
        self.a = a
        self.sel = selectors.DefaultSelector()
        self.idle = collections.deque()
        self.inflight = 0
        self.stopping = False
        self.errors = collections.Counter()
        self.reconnects = 0
        self.lat = []           # (sched, latency_s) of answered transactions
        self.lag = []           # (sched, start lag s)
        self.done_t = []        # (sched, reply time)
        filler = ("x" * 76 + "\r\n").encode()
        body = filler * (a.size // len(filler)) + b"y" * (a.size % len(filler))
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        self.body = body + b".\r\n"
        self.mail = f"MAIL FROM:<{a.sender}>\r\n".encode()
        self.rcpt = f"RCPT TO:<{a.rcpt}>\r\n".encode()
        # state -> (expected reply code, next state, command to send then)
        self.steps = {
            "greet": ("220", "ehlo", b"EHLO latency.bench.test\r\n"),
            "ehlo": ("250", "idle", None),
            "mail": ("250", "rcpt", self.rcpt),
            "rcpt": ("250", "data", b"DATA\r\n"),
            "data": ("354", "eod", None),
            "eod": ("250", "idle", None),
        }

    # -- connection handling ---------------------------------------------------------------------
    def connect(self, c):
        s = socket.create_connection((self.a.host, self.a.port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(10)          # bounds sendall if the server stops reading
        c.sock, c.state, c.buf, c.txn = s, "greet", b"", -1
        self.sel.register(s, selectors.EVENT_READ, c)

    def drop(self, c, why):
        self.errors[why] += 1
        if c.txn >= 0:
            self.inflight -= 1
            c.txn = -1
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        try:
            c.sock.close()
        except OSError:
            pass
        c.state = "closed"
        if self.reconnects < self.a.conc * 5 and not self.stopping:
            self.reconnects += 1
            try:
                self.connect(c)
            except OSError:
                self.errors["reconnect_failed"] += 1

    def send(self, c, data):
        c.sock.sendall(data)

    def start(self, c, i, sched, now):
        c.txn, c.sched, c.t_start = i, sched, now
        self.inflight += 1
        self.lag.append((sched, now - sched))
        c.state = "mail"
        self.send(c, self.mail)

    def on_reply(self, c, code, tnow):
        st = c.state
        step = self.steps.get(st)
        if step is None:
            return self.drop(c, f"unexpected_{st}")
        want, nxt, cmd = step
        if code != want:
            return self.drop(c, f"{st}_{code}")
        c.state = nxt
        if nxt == "eod":           # 354: the message, ending with CRLF.CRLF, in one write
            hdr = (f"From: <{self.a.sender}>\r\nTo: <{self.a.rcpt}>\r\nSubject: latency {c.txn}\r\n"
                   f"Message-ID: <lat.{os.getpid()}.{c.txn}@client.bench.test>\r\n\r\n").encode()
            self.send(c, hdr + self.body)
            c.t_eod = time.monotonic()
        elif cmd is not None:
            self.send(c, cmd)
        elif nxt == "idle":        # after EHLO, or a message answered 250
            if st == "eod":
                self.lat.append((c.sched, tnow - c.t_eod))
                self.done_t.append((c.sched, tnow))
                self.inflight -= 1
                c.txn = -1
            self.idle.append(c)

    def on_readable(self, c, tnow):
        try:
            chunk = c.sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            return self.drop(c, f"closed_in_{c.state}")
        c.buf += chunk
        while True:   # complete replies: the last line has a space (or nothing) after the code
            end = 0
            code = None
            while True:
                nl = c.buf.find(b"\r\n", end)
                if nl < 0:
                    return
                line = c.buf[end:nl]
                end = nl + 2
                if len(line) < 4 or line[3:4] != b"-":
                    code = line[:3].decode("ascii", "replace")
                    break
            c.buf = c.buf[end:]
            if c.state == "closed":
                return
            try:
                self.on_reply(c, code, tnow)
            except OSError:
                return self.drop(c, f"send_failed_in_{c.state}")
            if c.sock is None or c.state in ("closed", "greet"):
                return

    def poll(self, timeout):
        events = self.sel.select(timeout)
        tnow = time.monotonic()
        for key, _ in events:
            c = key.data
            if c.sock is key.fileobj:
                self.on_readable(c, tnow)

    # -- the run -------------------------------------------------------------------------------
    def run(self):
        a = self.a
        self.stopping = False
        conns = [Conn(i) for i in range(a.conc)]
        setup_end = time.monotonic() + 30
        for c in conns:
            self.connect(c)
        while len(self.idle) < a.conc and time.monotonic() < setup_end:
            self.poll(0.2)
        if len(self.idle) < a.conc:
            print(f"latency: only {len(self.idle)} of {a.conc} sessions ready after 30 s", file=sys.stderr)
            if not self.idle:
                return None
        rate = a.rate
        total = min(int(round(rate * (a.warmup + a.duration))), a.max_messages)
        srv0 = tree_cpu_ticks(a.server_pid) if a.server_pid else None
        cpu0, sys0 = cpu_self(), sys_ticks()
        t0 = time.monotonic() + 0.05
        last_due = t0 + (total - 1) / rate
        hard_end = last_due + a.drain
        nxt = 0
        while True:
            now = time.monotonic()
            while nxt < total and self.idle:
                due = t0 + nxt / rate
                if due > now:
                    break
                c = self.idle.popleft()
                if c.state != "idle":
                    continue
                try:
                    self.start(c, nxt, due, now)
                except OSError:
                    self.drop(c, "send_failed_in_mail")
                nxt += 1
                now = time.monotonic()
            if nxt >= total and self.inflight == 0:
                break
            if now > hard_end:
                break
            if nxt < total and self.idle:
                timeout = max(0.0, t0 + nxt / rate - now)
            else:
                timeout = min(0.1, max(0.0, hard_end - now))
            self.poll(timeout)
        t_end = time.monotonic()
        self.stopping = True
        cpu1, sys1 = cpu_self(), sys_ticks()
        dt = sys1[0] - sys0[0]
        busy = 100.0 * (os.cpu_count() or 1) * (1 - (sys1[1] - sys0[1]) / dt) if dt > 0 else 0.0
        srv1 = tree_cpu_ticks(a.server_pid) if a.server_pid else None
        for c in conns:
            if c.sock is not None and c.state != "closed":
                try:
                    if c.state == "idle":
                        c.sock.sendall(b"QUIT\r\n")
                    c.sock.close()
                except OSError:
                    pass
        return dict(t0=t0, t_end=t_end, total=total, started=nxt, cpu=cpu1 - cpu0, busy=busy,
                    srv=(srv1 - srv0) / HZ if srv0 is not None and srv1 is not None else None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--rate", type=float)
    ap.add_argument("--rate-fraction", type=float)
    ap.add_argument("--peak", type=float)
    ap.add_argument("--conc", type=int, default=20)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--drain", type=float, default=10)
    ap.add_argument("--size", type=int, default=5120)
    ap.add_argument("--from", dest="sender", default="sender@src.bench.test")
    ap.add_argument("--to", dest="rcpt", default="rcpt@dst.bench.test")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--max-messages", type=int, default=1_000_000)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    if a.rate is None:
        if a.rate_fraction is None or a.peak is None:
            ap.error("give --rate R, or --rate-fraction F with --peak P")
        a.rate = a.rate_fraction * a.peak
    elif a.rate_fraction is not None:
        ap.error("--rate and --rate-fraction exclude each other")
    if not 0.1 <= a.rate <= 20000:
        ap.error("rate must be 0.1..20000 messages/s")
    if not 1 <= a.conc <= 256:
        ap.error("--conc 1..256")
    if not 1 <= a.duration <= 600 or not 0 <= a.warmup <= 60 or not 1 <= a.drain <= 120:
        ap.error("--duration 1..600, --warmup 0..60, --drain 1..120")
    if not 0 <= a.size <= 10_000_000 or not 1 <= a.max_messages <= 1_000_000:
        ap.error("--size 0..10000000, --max-messages 1..1000000")
    ips = {i[4][0] for i in socket.getaddrinfo(a.host, a.port, proto=socket.IPPROTO_TCP)}
    if any(not ipaddress.ip_address(ip).is_loopback for ip in ips):
        sys.exit(f"latency: refusing non-loopback target {a.host} -> {sorted(ips)}")

    r = Run(a)
    try:
        res = r.run()
    except OSError as e:
        print(f"latency: cannot run against {a.host}:{a.port}: {e}", file=sys.stderr)
        res = None
    if res is None:
        print(f"RESULT latency label={a.label} host={a.host} port={a.port} conc={a.conc} size={a.size} "
              f"offered_per_s={a.rate:.1f} ok=0 errors={sum(r.errors.values()) or 1} rc=1")
        return 1

    t0, t_end = res["t0"], res["t_end"]
    cut = t0 + a.warmup
    lat = sorted(l * 1000 for s, l in r.lat if s >= cut)
    lag = sorted(l * 1000 for s, l in r.lag if s >= cut)
    done = [d for s, d in r.done_t if s >= cut]
    counted_sched = sum(1 for i in range(res["total"]) if t0 + i / a.rate >= cut)
    window = a.duration
    if done:
        window = max(window, max(done) - cut)
    achieved = len(done) / window if window > 0 else 0.0
    ok_all = len(r.lat)
    nerr = sum(r.errors.values())
    wall = t_end - t0
    f = lambda v: f"{v:.2f}" if v == v else "na"   # noqa: E731  (nan -> na)
    print(f"latency {a.label or ''} {a.host}:{a.port}: offered {a.rate:.1f}/s over {a.conc} sessions, "
          f"{a.warmup:g}+{a.duration:g} s; achieved {achieved:.1f}/s; "
          f"{ok_all} of {res['total']} scheduled answered 250, {nerr} errors"
          + (f" ({', '.join(f'{k}:{v}' for k, v in sorted(r.errors.items()))})" if nerr else ""))
    if lat:
        print(f"  end of DATA -> 250 (n={len(lat)}): p50 {pct(lat, 50):.2f} ms, p90 {pct(lat, 90):.2f} ms, "
              f"p99 {pct(lat, 99):.2f} ms, p99.9 {pct(lat, 99.9):.2f} ms, max {lat[-1]:.2f} ms, "
              f"mean {statistics.fmean(lat):.2f} ms")
        print(f"  start lag behind schedule: p50 {pct(lag, 50):.2f} ms, p99 {pct(lag, 99):.2f} ms, max {lag[-1]:.2f} ms")
    cpu = res["cpu"]
    srv = res["srv"]
    line = (f"RESULT latency label={a.label} host={a.host} port={a.port} conc={a.conc} size={a.size} "
            f"offered_per_s={a.rate:.1f} achieved_per_s={achieved:.1f} warmup_s={a.warmup:g} duration_s={a.duration:g} "
            f"wall_s={wall:.2f} scheduled={res['total']} started={res['started']} counted={counted_sched} "
            f"ok={ok_all} counted_ok={len(lat)} errors={nerr} "
            f"p50_ms={f(pct(lat, 50))} p90_ms={f(pct(lat, 90))} p99_ms={f(pct(lat, 99))} "
            f"p999_ms={f(pct(lat, 99.9))} max_ms={f(lat[-1] if lat else float('nan'))} "
            f"mean_ms={f(statistics.fmean(lat) if lat else float('nan'))} "
            f"lag_p50_ms={f(pct(lag, 50))} lag_p99_ms={f(pct(lag, 99))} lag_max_ms={f(lag[-1] if lag else float('nan'))} "
            f"client_cpu_s={cpu:.2f} client_cpu_pct={100 * cpu / wall if wall > 0 else 0:.1f} "
            f"client_cpu_ms_per_msg={1000 * cpu / ok_all if ok_all else 0:.3f} sys_busy_pct={res['busy']:.1f}")
    if srv is not None:
        line += (f" server_cpu_s={srv:.2f} server_cpu_pct={100 * srv / wall if wall > 0 else 0:.1f} "
                 f"server_cpu_ms_per_msg={1000 * srv / ok_all if ok_all else 0:.3f}")
    rc = 0 if (ok_all == res["total"] and nerr == 0) else 1
    print(line + f" rc={rc}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
