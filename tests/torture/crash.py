#!/usr/bin/python3
"""tests/torture/crash.py - crash torture (issue 5.3, SPEC §3.1: nothing acknowledged is lost).

Postern relays a hosted domain (`torture.test`, `relay_to`) to a sink run by this script in a
child process. N client threads send messages over SMTP without pause, each with a unique
sequence number (`X-Torture-Seq`) and 1-3 recipients, and record every recipient of every
message acknowledged with 250 together with its queue id. Inbound and outbound traffic run at
the same time, so the kills land while messages are being received, committed (tmp -> fsync ->
rename -> directory fsync), delivered and while per-recipient state is written. At random
moments (uniform in --kill-min..--kill-max seconds) Postern gets SIGKILL and is restarted at
once; clients see connection errors and go on over a new connection (a message without a 250
does not count). The clients slow down (50 ms after each MAIL) while more than
--max-backlog messages are queued: a sink slower than the clients would otherwise let the
queue grow without bound. After --iterations
kills the load stops, Postern drains (bounded), and:

  acknowledged  recipients (and messages) answered 250
  delivered     distinct (message, recipient) pairs the sink accepted
  lost          acknowledged but neither delivered nor queued: MUST be 0 (exit 1, with
                spool/log facts); acknowledged pairs still queued when the drain runs out of
                time are counted apart, and fail the run as an undrained queue
  duplicates    extra deliveries of a pair already delivered (allowed: a crash may only
                repeat a delivery), count and rate
  unacked       delivered but never acknowledged (allowed: killed between commit and the 250)

The sink records a pair only after it has read the whole message and before it answers 250,
so a message it recorded may still be retried by Postern (a duplicate), never the reverse.
--tempfail P makes the sink answer a fraction P of RCPT commands with 451 and --sink-delay S
hold each end-of-data reply, so deferred recipients and partly delivered messages (state
files) exist when the kills land.

Python 3 standard library only. Usage:
  /usr/bin/python3 tests/torture/crash.py [--iterations 100] [--clients 8] [--seconds-max S]
      [--tempfail 0.1] [--sink-delay 0.05] [--max-backlog 2000] [--postern build/postern] [--keep] [--json FILE]
      [--self-check]    (deletes one acknowledged message from the spool: must FAIL, naming it)
Exit status: 0 nothing lost and the queue drained, 1 otherwise, 2 set-up failure.
"""
import argparse
import json
import os
import pathlib
import random
import re
import shutil
import smtplib
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOMAIN = "torture.test"
SENDER = f"sender@{DOMAIN}"  # a bounce would come back through the sink and be counted
RCPTS = [f"rcpt{i}@{DOMAIN}" for i in range(3)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the sink (child process) --------------------------------------------------------------


class _SinkHandler(socketserver.StreamRequestHandler):
    """A minimal ESMTP receiver: PIPELINING, 8BITMIME; DATA read to <CRLF>.<CRLF>."""

    timeout = 60

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        srv = self.server
        self.reply("220 sink.torture.test ESMTP torture sink")
        sender, rcpts = None, []
        while True:
            line = self.rfile.readline(8192)
            if not line:
                return
            cmd = line.rstrip(b"\r\n").decode("latin-1")
            verb = cmd[:4].upper()
            if verb == "EHLO":
                self.reply("250-sink.torture.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 104857600")
            elif verb == "HELO":
                self.reply("250 sink.torture.test")
            elif verb == "MAIL":
                m = re.search(r"<([^>]*)>", cmd)
                sender, rcpts = (m.group(1) if m else ""), []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.search(r"<([^>]*)>", cmd)
                if sender is None or not m:
                    self.reply("503 5.5.1 Error: need MAIL")
                elif srv.rng.random() < srv.tempfail:
                    self.reply("451 4.3.0 <%s>: temporarily refused by the torture sink" % m.group(1))
                else:
                    rcpts.append(m.group(1).lower())
                    self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if sender is None or not rcpts:
                    # RFC 2920 3.1: DATA after every RCPT failed (pipelined) -> 554.
                    self.reply("554 5.5.1 Error: no valid recipients")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    l = self.rfile.readline(1 << 20)
                    if not l:
                        return  # the peer died mid-message: nothing recorded
                    if l == b".\r\n":
                        break
                    chunks.append(l[1:] if l.startswith(b".") else l)
                data = b"".join(chunks)
                if srv.delay:
                    time.sleep(srv.delay)
                srv.record(sender, rcpts, data)
                self.reply("250 2.0.0 Ok: recorded")
                sender, rcpts = None, []
            elif verb == "RSET":
                sender, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized")


class _Sink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, port, record_path, tempfail, delay, seed):
        super().__init__(("127.0.0.1", port), _SinkHandler)
        self.tempfail = tempfail
        self.delay = delay
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.out = open(record_path, "a", buffering=1)

    def record(self, sender, rcpts, data):
        seq = re.search(rb"^X-Torture-Seq: (\d+)\r?$", data, re.M)
        qid = re.search(rb"\(Postern\) with E?SMTPS?A? id ([0-9A-F]+)", data)
        complete = data.endswith(b"END-OF-TORTURE-MESSAGE\r\n")
        with self.lock:
            for r in rcpts:
                # SEQ RCPT QID SENDER COMPLETE ("-" for a missing field: a bounce has no SEQ)
                self.out.write(f"{seq.group(1).decode() if seq else '-'} {r} "
                               f"{qid.group(1).decode() if qid else '-'} <{sender}> {int(complete)}\n")


def sink_main(port, record_path, tempfail, delay, seed):
    srv = _Sink(port, record_path, tempfail, delay, seed)
    parent = os.getppid()

    def exit_with_parent():  # a killed test runner must not leave the sink behind
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    print("ready", flush=True)
    srv.serve_forever()


def read_records(path):
    """-> ({(seq, rcpt): count}, [bounce lines], [incomplete lines])"""
    counts, bounces, broken = {}, [], []
    try:
        text = pathlib.Path(path).read_text()
    except FileNotFoundError:
        return counts, bounces, broken
    for line in text.splitlines():
        f = line.split(" ")
        if len(f) != 5:
            continue
        seq, rcpt, _qid, sender, complete = f
        if sender == "<>" or seq == "-":
            bounces.append(line)
            continue
        if complete != "1":
            broken.append(line)
        key = (int(seq), rcpt)
        counts[key] = counts.get(key, 0) + 1
    return counts, bounces, broken


# --- Postern -------------------------------------------------------------------------------


class Postern:
    def __init__(self, binary, directory, port, sink_port):
        self.bin = binary
        self.dir = pathlib.Path(directory)
        self.port = port
        self.config = self.dir / "postern.toml"
        self.spool = self.dir / "spool"
        self.log_path = self.dir / "postern.log"
        self.proc = None
        self.config.write_text(f"""hostname = "mx.torture.test"

[server]
listen = ["127.0.0.1:{port}"]
{"allow_root = true  # throw-away directories; the privilege drop is tested in test_privileges.py" if os.geteuid() == 0 else ""}

[spool]
dir = "spool"

[queue]
retry_schedule = ["1s"]

[log]
format = "json"

[[domain]]
name = "{DOMAIN}"
relay_to = ["127.0.0.1:{sink_port}"]
""")

    def start(self, timeout=10.0):
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([self.bin, "serve", "-c", str(self.config)], cwd=self.dir,
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postern exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(512).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"postern not answering on port {self.port} after {timeout}s")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def files(self, area):
        try:
            return sorted(p for p in os.listdir(self.spool / area) if not p.startswith("."))
        except FileNotFoundError:
            return []

    def queue_list(self):
        r = subprocess.run([self.bin, "queue", "list", "--json", "-c", str(self.config)],
                           capture_output=True, text=True, timeout=30, cwd="/")
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def log_tail(self, n=4000):
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except FileNotFoundError:
            return ""

    def log_lines_about(self, qid, limit=8):
        try:
            lines = [l for l in self.log_path.read_text(errors="replace").splitlines() if qid in l]
        except FileNotFoundError:
            return []
        return lines[-limit:]


# --- the load ------------------------------------------------------------------------------


class Load:
    """Client threads sending messages without pause; every 250 is recorded."""

    def __init__(self, port, clients, seed):
        self.port = port
        self.clients = clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.next_seq = 0
        self.acked = {}         # seq -> (qid, [rcpts])
        self.attempted = 0      # messages whose DATA was sent
        self.refused = 0        # 4xx/5xx answers to the final dot
        self.conn_errors = 0
        self.in_flight = 0      # clients between MAIL and the final reply
        self.hold = threading.Event()  # set while the backlog is over --max-backlog: slow down
        self.seed = seed
        self.threads = []

    def seq(self):
        with self.lock:
            self.next_seq += 1
            return self.next_seq

    @staticmethod
    def message(seq, rng):
        lines = [f"From: <{SENDER}>", f"To: <rcpt@{DOMAIN}>", f"Subject: torture {seq}",
                 f"Message-ID: <{seq}.torture@client.torture.test>", f"X-Torture-Seq: {seq}", ""]
        body = [f"{seq:08d} " + "x" * 70 for _ in range(rng.randint(2, 300))]  # ~160 B .. 24 KB
        return ("\r\n".join(lines + body + ["END-OF-TORTURE-MESSAGE", ""])).encode()

    def wait_while_held(self):
        # Slowed, not stopped: each client pauses 50 ms inside its transaction, after MAIL (8
        # clients: at most 160 messages/s meanwhile), so the kills still find transactions open.
        if self.hold.is_set() and not self.stop.is_set():
            time.sleep(0.05)

    def worker(self, n):
        rng = random.Random(self.seed * 1000 + n)
        while not self.stop.is_set():
            try:
                c = smtplib.SMTP("127.0.0.1", self.port, local_hostname=f"client{n}.torture.test", timeout=10)
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.conn_errors += 1
                time.sleep(0.02)
                continue
            try:
                c.ehlo()
                for _ in range(rng.randint(1, 5)):  # messages per session
                    if self.stop.is_set():
                        break
                    seq = self.seq()
                    rcpts = rng.sample(RCPTS, rng.randint(1, len(RCPTS)))
                    with self.lock:
                        self.in_flight += 1
                    try:
                        code, _ = c.mail(SENDER)
                        if code != 250:
                            raise smtplib.SMTPException(f"MAIL {code}")
                        self.wait_while_held()
                        ok = [r for r in rcpts if c.rcpt(r)[0] == 250]
                        if not ok:
                            raise smtplib.SMTPException("no recipient accepted")
                        with self.lock:
                            self.attempted += 1
                        code, resp = c.data(self.message(seq, rng))
                    finally:
                        with self.lock:
                            self.in_flight -= 1
                    m = re.search(rb"queued as ([0-9A-F]+)", resp)
                    with self.lock:
                        if code == 250 and m:
                            self.acked[seq] = (m.group(1).decode(), ok)
                        else:
                            self.refused += 1
                try:
                    c.quit()
                except (OSError, smtplib.SMTPException):
                    pass
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.conn_errors += 1
            finally:
                c.close()

    def start(self):
        for n in range(self.clients):
            t = threading.Thread(target=self.worker, args=(n,), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self, timeout=30.0):
        self.stop.set()
        deadline = time.time() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.time()))
        return all(not t.is_alive() for t in self.threads)


# --- the torture ---------------------------------------------------------------------------


def inject_loss(srv, load, records, sink_delay):
    """Self-check of this script: deletes one acknowledged, not yet delivered message from the
    spool of the killed server, as a product bug would. Returns its queue id (None: none found)."""
    time.sleep(0.2 + 2 * sink_delay)  # the sink finishes recording what it had when Postern died
    with load.lock:
        by_qid = {qid: seq for seq, (qid, _) in load.acked.items()}
    delivered = {seq for seq, _ in read_records(records)[0]}
    for qid in reversed(srv.files("queue")):  # the newest first: the least likely to be in flight
        if qid in by_qid and by_qid[qid] not in delivered:
            (srv.spool / "queue" / qid).unlink()
            (srv.spool / "state" / qid).unlink(missing_ok=True)
            return qid
    return None


def run(iterations=100, clients=8, seconds_max=None, tempfail=0.0, sink_delay=0.0, kill_min=0.2, kill_max=2.0,
        drain_seconds=90.0, seed=None, postern_bin=None, workdir=None, keep=False, out=sys.stdout,
        self_check=False, max_backlog=2000):
    """Runs one torture; returns the report (a dict). report["ok"] is the verdict.
    self_check: delete one acknowledged message at the first kill that finds one (the report
    must then show it lost: proves the accounting can fail).
    max_backlog: the clients slow down (50 ms after each MAIL) while queue/ holds more
    messages than this (until it is below 3/4 of it): where they accept faster than the sink takes (a fast machine, a Python sink),
    the queue would otherwise grow without bound and the final drain could not end."""
    postern_bin = postern_bin or os.environ.get("POSTERN_BIN") or str(ROOT / "build" / "postern")
    if seconds_max is None:
        seconds_max = iterations * (kill_max + 2.0) + drain_seconds + 60
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    top = pathlib.Path(workdir or tempfile.mkdtemp(prefix="postern-torture-"))
    top.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    hard_deadline = t0 + seconds_max

    def say(*a):
        if out is not None:
            print(*a, file=out, flush=True)

    sink_port, port = free_port(), free_port()
    records = top / "sink.records"
    sink = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).resolve()), "--sink", str(sink_port),
                             str(records), str(tempfail), str(sink_delay), str(seed)],
                            stdout=subprocess.PIPE, stderr=open(top / "sink.stderr", "wb"), text=True)
    report = {"seed": seed, "iterations_requested": iterations, "clients": clients, "tempfail": tempfail,
              "sink_delay": sink_delay, "workdir": str(top)}
    srv = None
    load = None
    try:
        if sink.stdout.readline().strip() != "ready":
            raise RuntimeError("the sink did not start: " + (top / "sink.stderr").read_text())
        srv = Postern(postern_bin, top, port, sink_port)
        srv.start()
        load = Load(port, clients, seed)
        held = [0.0]  # seconds the clients were slowed down by the backlog bound

        def watch_backlog():
            while not load.stop.is_set():
                try:
                    n = sum(1 for e in os.scandir(srv.spool / "queue") if not e.name.startswith("."))
                except FileNotFoundError:
                    n = 0
                if n > max_backlog:
                    load.hold.set()
                elif n < max_backlog * 3 // 4:
                    load.hold.clear()
                time.sleep(0.05)
                if load.hold.is_set():
                    held[0] += 0.05

        threading.Thread(target=watch_backlog, daemon=True).start()
        load.start()
        say(f"torture: seed={seed} clients={clients} tempfail={tempfail} sink_delay={sink_delay}s "
            f"kills every {kill_min}-{kill_max}s, dir {top}")

        # kill -9 at random moments, restart at once
        kills = 0
        at_kill = {"tmp": 0, "queue": 0, "state": 0, "in_flight": 0}
        load_deadline = hard_deadline - drain_seconds
        while kills < iterations and time.time() < load_deadline:
            time.sleep(rng.uniform(kill_min, kill_max))
            with load.lock:
                flying = load.in_flight
            srv.kill9()
            kills += 1
            # what the kill interrupted: commits (tmp/), pending deliveries (queue/), recorded
            # per-recipient progress (state/), client transactions
            at_kill["tmp"] += bool(srv.files("tmp"))
            at_kill["queue"] += bool(srv.files("queue"))
            at_kill["state"] += bool(srv.files("state"))
            at_kill["in_flight"] += bool(flying)
            if self_check and "injected_loss_qid" not in report:
                if (qid := inject_loss(srv, load, records, sink_delay)) is not None:
                    report["injected_loss_qid"] = qid
                    say(f"  self-check: deleted acknowledged message {qid} from the spool")
            srv.start()
            if kills % 10 == 0:
                with load.lock:
                    n_acked = len(load.acked)
                say(f"  {kills} kills, {time.time() - t0:.0f}s, {n_acked} messages acknowledged, "
                    f"{len(srv.files('queue'))} queued")
        load_end = time.time()
        clients_done = load.finish()

        # drain: every acknowledged pair at the sink and the queue empty (bounded)
        with load.lock:
            acked = dict(load.acked)
        want = {(seq, r): qid for seq, (qid, rs) in acked.items() for r in rs}
        drain_deadline = min(hard_deadline, time.time() + drain_seconds)
        while True:
            counts, bounces, broken = read_records(records)
            missing = [k for k in want if k not in counts]
            if (not missing and not srv.files("queue")) or time.time() >= drain_deadline:
                break
            time.sleep(0.25)
        time.sleep(0.5)  # late duplicates in flight
        # The queue first, then the sink's record: a pair delivered between the two is in the
        # record; one in neither was lost. One still queued (the drain ran out of time) is not
        # lost, but fails the run too (queue_left).
        queue_left = srv.queue_list()
        counts, bounces, broken = read_records(records)
        queued_ids = {m.get("id") for m in queue_left or []}
        undelivered = sorted(k for k in want if k not in counts and want[k] in queued_ids)
        missing = sorted(k for k in want if k not in counts and want[k] not in queued_ids)
        dup = sum(n - 1 for n in counts.values())
        delivered_unique = len(counts)
        unacked = sorted(k for k in counts if k not in want)
        elapsed = time.time() - t0
        report.update({
            "iterations": kills,
            "clients_stopped": clients_done,
            "messages_sent": load.attempted,
            "messages_acked": len(acked),
            "messages_refused": load.refused,
            "connection_errors": load.conn_errors,
            "acked": len(want),
            "delivered": delivered_unique,
            "deliveries": sum(counts.values()),
            "lost": len(missing),
            "lost_messages": len({s for s, _ in missing}),
            "undelivered_still_queued": len(undelivered),
            "load_held_seconds": round(held[0], 1),
            "duplicates": dup,
            "duplicate_rate": dup / delivered_unique if delivered_unique else 0.0,
            "delivered_unacked": len(unacked),
            "bounces": len(bounces),
            "incomplete": len(broken),
            "queue_left": len(queue_left) if queue_left is not None else None,
            "kills_with_tmp_files": at_kill["tmp"],
            "kills_with_queued_messages": at_kill["queue"],
            "kills_with_state_files": at_kill["state"],
            "kills_during_client_transactions": at_kill["in_flight"],
            "load_seconds": round(load_end - t0, 1),
            "elapsed_seconds": round(elapsed, 1),
        })
        ok = (not missing and not bounces and not broken and queue_left == [] and kills >= iterations)
        report["ok"] = ok

        say(f"iterations (kill -9 + restart): {kills}" + ("" if kills >= iterations else
                                                          f" of {iterations} (time bound reached)"))
        say(f"messages sent: {load.attempted}, acknowledged: {len(acked)}, refused: {load.refused}")
        say(f"recipients acknowledged: {len(want)}, delivered (unique): {delivered_unique}, "
            f"deliveries: {sum(counts.values())}")
        say(f"lost: {len(missing)} ({report['lost_messages']} messages)")
        if undelivered:
            say(f"acknowledged, not delivered yet, still queued at the end (the drain ran out of time): "
                f"{len(undelivered)} ({len({s for s, _ in undelivered})} messages)")
        say(f"duplicates: {dup} ({100.0 * report['duplicate_rate']:.2f}% of delivered)")
        say(f"delivered but never acknowledged (allowed): {len(unacked)}")
        say(f"bounces at the sink: {len(bounces)}, incomplete messages: {len(broken)}, "
            f"queue left: {report['queue_left']}")
        say(f"kills that found: commits in tmp/ {at_kill['tmp']}, queued messages {at_kill['queue']}, "
            f"state files {at_kill['state']}, client transactions in flight {at_kill['in_flight']}")
        say(f"elapsed: {elapsed:.1f}s (load {load_end - t0:.1f}s, clients slowed down {held[0]:.1f}s "
            f"by the backlog bound of {max_backlog} queued)")
        for seq, r in missing[:50]:
            qid = want[(seq, r)]
            q = srv.spool / "queue" / qid
            st = srv.spool / "state" / qid
            say(f"LOST seq={seq} rcpt={r} qid={qid} queue_file={'yes' if q.exists() else 'no'} "
                f"state={(st.read_text().strip() if st.exists() else 'none')!r}")
            for l in srv.log_lines_about(qid):
                say("    " + l)
        if queue_left:
            say(f"still queued: {json.dumps(queue_left)[:2000]}")
        for l in bounces[:10]:
            say(f"BOUNCE {l}")
        for l in broken[:10]:
            say(f"INCOMPLETE {l}")
        return report
    finally:
        if load is not None:
            load.stop.set()
        if srv is not None:
            srv.stop()
        sink.terminate()
        try:
            sink.wait(10)
        except subprocess.TimeoutExpired:
            sink.kill()
            sink.wait()
        if not keep and report.get("ok"):
            shutil.rmtree(top, ignore_errors=True)


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--sink"]:
        port, path, tempfail, delay, seed = argv[1:6]
        sink_main(int(port), path, float(tempfail), float(delay), int(seed))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iterations", type=int, default=100, help="kill -9 + restart cycles (default 100)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent SMTP clients (default 8)")
    ap.add_argument("--seconds-max", type=float, default=None, help="overall time bound (default: from iterations)")
    ap.add_argument("--tempfail", type=float, default=0.0, help="fraction of RCPTs the sink answers 451")
    ap.add_argument("--sink-delay", type=float, default=0.0, help="seconds the sink waits before its 250 to DATA")
    ap.add_argument("--kill-min", type=float, default=0.2)
    ap.add_argument("--kill-max", type=float, default=2.0)
    ap.add_argument("--drain-seconds", type=float, default=90.0, help="bound on the final drain")
    ap.add_argument("--max-backlog", type=int, default=2000,
                    help="clients slow down while queue/ holds more messages than this (default 2000)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--postern", default=None, help="binary (default $POSTERN_BIN or build/postern)")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory even on success")
    ap.add_argument("--json", default=None, help="also write the report as JSON to this file")
    ap.add_argument("--self-check", action="store_true",
                    help="delete one acknowledged message at a kill: the run must then FAIL, naming it")
    a = ap.parse_args(argv)
    try:
        rep = run(iterations=a.iterations, clients=a.clients, seconds_max=a.seconds_max, tempfail=a.tempfail,
                  sink_delay=a.sink_delay, kill_min=a.kill_min, kill_max=a.kill_max, drain_seconds=a.drain_seconds,
                  seed=a.seed, postern_bin=a.postern, workdir=a.workdir, keep=a.keep, self_check=a.self_check,
                  max_backlog=a.max_backlog)
    except (RuntimeError, OSError) as e:
        print(f"torture: set-up failed: {e}", file=sys.stderr)
        return 2
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(rep, indent=2) + "\n")
    print("RESULT: " + ("PASS" if rep["ok"] else "FAIL") + f" (work directory {rep['workdir']}"
          + (", removed)" if rep["ok"] and not a.keep else ")"))
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
