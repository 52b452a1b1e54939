#!/usr/bin/env python3
"""bench/hostile/run.py - the long hostile-peer runs (issue 5, points 5 and 6), for `make torture`.

Each scenario starts a fresh `postern serve` (defaults unless noted), lets one attack run for
SECONDS with a bounded number of attacker connections, and meanwhile measures:
- inbound: the latency of a well-behaved client's complete transactions (greeting, EHLO, MAIL,
  RCPT, DATA, 250 queued, QUIT; a new connection each, back to back, from 127.0.0.2);
- outbound: the end-to-end latency (the client connects to submit -> the message arrives at a
  well-behaved next hop) of mail for a good destination while the hostile destination's
  server attacks Postern's client;
- the server's idle RSS (after a warm-up transaction), peak RSS (VmHWM) and CPU time.
It prints one Markdown table per side (the figures in docs/reliability.md) and what each
attack's connections saw (containment), and writes the raw rows as JSON lines to
bench/results/hostile-YYYYmmdd-HHMMSS.txt.

Usage: bench/hostile/run.sh [SECONDS]        (default 30; POSTERN=path/to/postern)
       bench/hostile/run.sh 30 slowloris ... (only the named scenarios)
       HOSTILE_NOTE="..." adds a line to the header of the raw results (e.g. which binary)
The attacks themselves are in tests/e2e/hostile.py (shared with the short e2e tests).
"""
import datetime
import json
import multiprocessing
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
os.environ.setdefault("POSTERN_BIN", os.environ.get("POSTERN", str(ROOT / "build" / "postern")))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import conftest  # noqa: E402  (Instance, render_config, free_port, relay_domain)
from hostile import (Attack, HostileServer, Prober, connection_flood, endless_data, endless_line,  # noqa: E402
                     endless_lines, garbage, latency_summary, pipelining_flood, proc_status_kib, slowloris,
                     smtp_dialogue, smuggler, trickle)

threading.stack_size(512 * 1024)  # hundreds of attacker threads


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


class Server:
    """A `postern serve` in a fresh directory (like the e2e make_instance fixture)."""

    def __init__(self, **kw):
        self.top = tempfile.mkdtemp(prefix="postern-hostile-")
        d = pathlib.Path(self.top) / "i"
        r = subprocess.run([conftest.POSTERN, "init", str(d)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        self.inst = conftest.Instance(d, conftest.free_port())
        self.inst.write_config(conftest.render_config(d, self.inst.port, **kw))
        self.inst.start()
        self.inst.wait_sessions_closed()

    def close(self):
        self.inst.stop()
        shutil.rmtree(self.top, ignore_errors=True)


def fmt_ms(v):
    return "-" if v is None else (f"{v:.0f}" if v >= 10 else f"{v:.1f}")


def _probe_child(conn, host, port, rcpt, seconds):
    p = Prober(host, port, source="127.0.0.2", rcpt=rcpt, pause=0.02, timeout=60)
    p._n = 1  # probe 0 was the warm-up, sent by the parent
    p.start()
    time.sleep(seconds)
    p.stop()
    conn.send({"latencies": p.latencies, "failures": p.failures, "qids": p.qids,
               "started_at": p.started_at, "queued_at": p.queued_at})
    conn.close()


class ProbeProcess:
    """The well-behaved client in a process of its own, so that its latency is the server's
    and not that of the attackers' Python threads (one interpreter lock) around it."""

    def __init__(self, host, port, rcpt, seconds):
        ctx = multiprocessing.get_context("spawn")
        self.parent, child = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_probe_child, args=(child, host, port, rcpt, seconds), daemon=True)
        self.proc.start()
        child.close()

    def result(self, timeout):
        if not self.parent.poll(timeout):
            self.proc.kill()
            raise RuntimeError("the probe process did not report")
        r = self.parent.recv()
        self.proc.join(10)
        return r


# --- inbound -----------------------------------------------------------------------------------

def inbound(name, seconds, attacks, server_extra="", note=""):
    """attacks: [(fn, count, kwargs)]; attackers use 127.0.0.1 unless kwargs name a source."""
    srv = Server(server_extra=server_extra)
    inst = srv.inst
    try:
        Prober(inst.host, inst.port, source="127.0.0.2").transaction()  # warm-up: probe 0
        inst.wait_maildir("probe", 1)
        time.sleep(0.5)
        idle = proc_status_kib(inst.proc.pid, "VmRSS")
        cpu0 = cpu_seconds(inst.proc.pid)
        running = [Attack(fn, inst.host, inst.port, count, stagger=0.002, **kw) for fn, count, kw in attacks]
        for a in running:
            a.start()
        probe = ProbeProcess(inst.host, inst.port, "probe@localhost", seconds)
        pr = probe.result(seconds + 120)
        for a in running:
            a.stop(join_timeout=60)
        cpu = cpu_seconds(inst.proc.pid) - cpu0
        hwm = proc_status_kib(inst.proc.pid, "VmHWM")
        delivered = len(inst.wait_maildir("probe", 1 + len(pr["qids"]), timeout=60))
        s = latency_summary(pr["latencies"])
        return {"side": "inbound", "attack": name, "note": note,
                "attackers": sum(c for _, c, _ in attacks), "probes": s["n"],
                "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "max_ms": s["max_ms"],
                "probe_failures": len(pr["failures"]), "failure_samples": pr["failures"][:3],
                "probes_delivered": delivered == 1 + len(pr["qids"]),
                "cpu_s": cpu, "idle_rss_mib": idle / 1024, "peak_rss_mib": hwm / 1024,
                "alive": inst.alive, "tallies": [dict(a.tally.c) for a in running]}
    finally:
        srv.close()


def addrs(first, n):
    return [f"127.0.0.{first + k}" for k in range(n)]


def spread(fn, per_addr, sources, **kw):
    return [(fn, per_addr, dict(kw, source=a)) for a in sources]


INBOUND = {
    "baseline": lambda s: inbound("none (baseline)", s, []),
    "slowloris": lambda s: inbound(
        "slowloris: 1 byte / 10 s", s, spread(slowloris, 60, addrs(10, 8), interval=10.0),
        note="8 addresses x 60 (per-IP limit 50: 400 admitted, 80 refused)"),
    "flood": lambda s: inbound(
        "connection flood, one address", s, [(connection_flood, 200, {"source": "127.0.0.1"})],
        note="200 threads reconnecting; 50 admitted (per-IP limit), every other connection 421 4.7.0"),
    "line": lambda s: inbound(
        "endless command line", s, [(endless_line, 50, {"source": "127.0.0.1"})]),
    "data": lambda s: inbound(
        "endless DATA, defaults (max_message_size 50M, max_buffered_size 512M)", s,
        [(endless_data, 20, {"source": "127.0.0.1"})]),
    "data1m": lambda s: inbound(
        "endless DATA, max_message_size 1M", s, [(endless_data, 50, {"source": "127.0.0.1"})],
        server_extra='max_message_size = "1M"'),
    "garbage": lambda s: inbound(
        "binary garbage", s, [(garbage, 50, {"source": "127.0.0.1"})]),
    "pipelining": lambda s: inbound(
        "pipelining flood (25 read, 25 never read)", s,
        [(pipelining_flood, 25, {"source": "127.0.0.1", "reads": True}),
         (pipelining_flood, 25, {"source": "127.0.0.3", "reads": False})]),
    "smuggling": lambda s: inbound(
        "SMTP smuggling sequences", s, [(smuggler, 20, {"source": "127.0.0.1"})]),
    "all": lambda s: inbound(
        "all of the above at once", s,
        spread(slowloris, 50, addrs(10, 2), interval=10.0)
        + [(connection_flood, 60, {"source": "127.0.0.4"}), (endless_line, 10, {"source": "127.0.0.5"}),
           (endless_data, 10, {"source": "127.0.0.6"}), (garbage, 10, {"source": "127.0.0.7"}),
           (pipelining_flood, 5, {"source": "127.0.0.8", "reads": True}),
           (pipelining_flood, 5, {"source": "127.0.0.9", "reads": False}),
           (smuggler, 5, {"source": "127.0.0.1"})]),
}


# --- outbound ----------------------------------------------------------------------------------

def inject(inst, n, rcpt):
    """n messages for `rcpt` over one SMTP session (one transaction each)."""
    with inst.smtp(timeout=60) as c:
        c.ehlo()
        for k in range(n):
            conftest.qid_of(c.send_mail("alice@example.test", [rcpt],
                                        f"Subject: hostile {k}\r\n\r\nfor the hostile server\r\n".encode()))


def good_next_hop(pc):
    """smtp_dialogue with TCP_NODELAY. It writes each reply to pipelined commands on its own; with
    Nagle on, its second reply to Postern's MAIL+RCPT+DATA waited for Postern's delayed ACK
    (40 ms), which then made most of each probe's latency (p50 44 ms against 1.7 ms, 2026-11-30).
    Mail servers such as Postfix write those replies in one go."""
    pc.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    smtp_dialogue(pc)


def outbound(name, seconds, script, messages=200, queue_extra='retry_schedule = ["1s"]', extra="", note=""):
    with HostileServer(script) as bad, HostileServer(good_next_hop) as good:
        srv = Server(domains=conftest.relay_domain("hostile.test", f"127.0.0.1:{bad.port}")
                     + conftest.relay_domain("good.test", f"127.0.0.1:{good.port}"),
                     queue_extra=queue_extra, extra=extra)
        inst = srv.inst
        try:
            Prober(inst.host, inst.port, source="127.0.0.2", rcpt="probe@good.test").transaction()
            wait = time.time() + 30
            while not good.accepted() and time.time() < wait:
                time.sleep(0.05)
            time.sleep(0.5)
            idle = proc_status_kib(inst.proc.pid, "VmRSS")
            cpu0 = cpu_seconds(inst.proc.pid)
            inject(inst, messages, "victim@hostile.test")
            t0 = time.time()
            pr = ProbeProcess(inst.host, inst.port, "probe@good.test", seconds).result(seconds + 120)
            cpu = cpu_seconds(inst.proc.pid) - cpu0
            # end-to-end latency of each probe message: submission starts -> arrival at the good hop
            deadline = time.time() + 60
            while len(good.accepted()) < 1 + len(pr["qids"]) and time.time() < deadline:
                time.sleep(0.1)
            arrived = {}
            for t, data in good.arrivals():
                line = data.split(b"\r\nSubject: probe ", 1)
                if len(line) == 2:
                    arrived[int(line[1].split(b"\r\n", 1)[0])] = t
            lat = [arrived[n] - pr["started_at"][n] for n in pr["queued_at"] if n in arrived]
            missing = [n for n in pr["queued_at"] if n not in arrived]
            hwm = proc_status_kib(inst.proc.pid, "VmHWM")
            ev = inst.events("delivery")
            hostile_ev = [e for e in ev if e.get("to", "").endswith("@hostile.test>")]
            s = latency_summary(lat)
            return {"side": "outbound", "attack": name, "note": note, "attackers": messages,
                    "probes": s["n"], "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"], "max_ms": s["max_ms"],
                    "probe_failures": len(pr["failures"]) + len(missing),
                    "failure_samples": pr["failures"][:3] + [f"probe {n} not delivered" for n in missing[:3]],
                    "cpu_s": cpu, "idle_rss_mib": idle / 1024, "peak_rss_mib": hwm / 1024, "alive": inst.alive,
                    "hostile_connections": len(bad.conns()),
                    "hostile_attempts": len(hostile_ev),
                    "hostile_sent": sum(e["result"] == "sent" for e in hostile_ev),
                    "hostile_deferred": sum(e["result"] == "deferred" for e in hostile_ev),
                    "hostile_reasons": sorted({e["reason"].split(":")[0][:60] for e in hostile_ev})[:4],
                    "seconds": time.time() - t0}
        finally:
            srv.close()


def never_answers(pc):
    pc.hold()


def trickler(pc):
    pc.stream(trickle(b"220-hostile.test slowly\r\n" * 10000), pause=1.0)


def endless_greeting(pc):
    pc.stream(endless_lines(b"220-"))


def oversized(pc):
    pc.send(b"220 ")
    pc.stream((b"x" * 65536 for _ in range(1024)))


def drop_after_data(pc):
    smtp_dialogue(pc, on_data_end=lambda pc: False)


OUTBOUND = {
    "out-silent": lambda s: outbound(
        "server never answers (default timeouts)", s, never_answers,
        note="200 messages; each attempt waits delivery.command_timeout (5 min)"),
    "out-trickle": lambda s: outbound(
        "server trickles its greeting, 1 byte/s", s, trickler,
        note="a reply must be complete within delivery.command_timeout (5 min)"),
    "out-endless": lambda s: outbound(
        "endless multi-line greeting, full speed", s, endless_greeting,
        note="200 messages retried every 1 s"),
    "out-oversized": lambda s: outbound(
        "64 MiB greeting line", s, oversized, note="200 messages retried every 1 s"),
    "out-drop": lambda s: outbound(
        "drops the connection after DATA", s, drop_after_data, note="200 messages retried every 1 s"),
}


def table(rows, side):
    out = []
    if side == "inbound":
        out.append("| attack | attacker conns | probes | p50 ms | p99 ms | max ms | probe failures | server CPU s "
                   "| idle RSS MiB | peak RSS MiB |")
    else:
        out.append("| hostile server | hostile msgs | probes | p50 ms | p99 ms | max ms | probe failures "
                   "| server CPU s | idle RSS MiB | peak RSS MiB | hostile attempts: sent / deferred |")
    out.append("|" + "---|" * (out[0].count("|") - 1))
    for r in rows:
        cells = [r["attack"], str(r["attackers"]), str(r["probes"]), fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]),
                 fmt_ms(r["max_ms"]), str(r["probe_failures"]), f"{r['cpu_s']:.1f}", f"{r['idle_rss_mib']:.1f}",
                 f"{r['peak_rss_mib']:.1f}"]
        if side == "outbound":
            cells.append(f"{r['hostile_sent']} / {r['hostile_deferred']}")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv):
    seconds = float(argv[1]) if len(argv) > 1 else 30.0
    only = argv[2:]
    scenarios = {**INBOUND, **OUTBOUND}
    unknown = [n for n in only if n not in scenarios]
    if unknown:
        sys.exit(f"unknown scenario(s) {unknown}; known: {' '.join(scenarios)}")
    names = only or list(scenarios)
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    raw = results / f"hostile-{stamp:%Y%m%d-%H%M%S}.txt"
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", "src"]).returncode != 0:
        commit += " with uncommitted changes in src/"
    header = (f"# bench/hostile/run.sh {argv[1] if len(argv) > 1 else 30} {' '.join(only)}".rstrip()
              + f"\n# {stamp:%Y-%m-%d %H:%M} UTC, commit {commit}, binary {conftest.POSTERN}, {os.cpu_count()} CPUs\n"
              + (f"# {os.environ['HOSTILE_NOTE']}\n" if os.environ.get("HOSTILE_NOTE") else ""))
    rows = []
    bad = []
    with open(raw, "w") as f:
        f.write(header)
        for n in names:
            print(f"== {n} ({seconds:.0f} s)", flush=True)
            r = scenarios[n](seconds)
            r["scenario"] = n
            rows.append(r)
            f.write(json.dumps(r, default=str) + "\n")
            f.flush()
            print(json.dumps(r, default=str), flush=True)
            if r["probe_failures"] or not r["alive"] or r.get("hostile_sent") or r.get("probes_delivered") is False:
                bad.append(n)
    print()
    print(header)
    for side in ("inbound", "outbound"):
        sel = [r for r in rows if r["side"] == side]
        if sel:
            print(table(sel, side))
            print()
    print(f"raw rows: {raw.relative_to(ROOT)}")
    if bad:
        print(f"FAILED (well-behaved peer not served, server died, or hostile mail counted sent): {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
