#!/usr/bin/python3
"""bench/idle/run.py - many idle connections held by Postern (issue 6): peak RSS while N
clients sit idle after the greeting, and how fast a new client is served meanwhile.

usage: bench/idle/run.py [--postern build/postern] [--connections 10000] [--probes 20]

Starts `postern serve` in a fresh `postern init` directory (port 2725, max_connections and
max_connections_per_ip raised above N, allow_root when run as root), opens N plaintext
connections from 127.0.0.1 and reads each greeting (so every session is really established and
waiting for a command), then, while they are held:
  - the server's RSS now and its peak (VmRSS / VmHWM from /proc),
  - --probes new clients, one at a time: time to the greeting, and time for a whole
    transaction (EHLO, MAIL, RCPT, DATA, 250 queued) - median and max.
Targets (issue 6): 10,000 idle connections with <= 100 MB RSS; a new client served in < 100 ms.
Needs a file-descriptor limit above N in both processes (the hard limit is used).
"""
import argparse
import os
import pathlib
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def status(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024.0  # MiB
    return out


def read_reply(f):
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line


def transaction(port):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rwb", buffering=0)
    greet = read_reply(f)
    t_greet = time.monotonic() - t0
    assert greet.startswith(b"220"), greet
    for cmd, code in ((b"EHLO probe.test", b"250"), (b"MAIL FROM:<probe@example.test>", b"250"),
                      (b"RCPT TO:<probe@localhost>", b"250"), (b"DATA", b"354")):
        f.write(cmd + b"\r\n")
        r = read_reply(f)
        assert r.startswith(code), (cmd, r)
    f.write(b"Subject: probe\r\n\r\nidle benchmark probe\r\n.\r\n")
    r = read_reply(f)
    assert r.startswith(b"250"), r
    t_all = time.monotonic() - t0
    f.write(b"QUIT\r\n")
    s.close()
    return t_greet, t_all


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postern", default=str(ROOT / "build/postern"))
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--port", type=int, default=2725)
    a = ap.parse_args()
    hard = raise_fd_limit()
    if hard < a.connections + 100:
        sys.exit(f"fd hard limit {hard} is below {a.connections} connections")
    d = pathlib.Path(tempfile.mkdtemp(prefix="postern-idle-"))
    try:
        subprocess.run([a.postern, "init", str(d / "i")], check=True, capture_output=True)
        conf = d / "i/postern.toml"
        text = conf.read_text()
        text = text.replace('listen = ["127.0.0.1:2525"]', f'listen = ["127.0.0.1:{a.port}"]')
        text = re.sub(r"max_connections = \d+", f"max_connections = {a.connections + 100}", text)
        text = re.sub(r"max_connections_per_ip = \d+", f"max_connections_per_ip = {a.connections + 100}", text)
        if os.geteuid() == 0:
            text = text.replace('user = "postern"', "allow_root = true")
        conf.write_text(text)
        log = open(d / "serve.log", "wb")
        proc = subprocess.Popen([a.postern, "serve", "-c", str(conf)], stdout=log, stderr=log, cwd=d / "i")
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", a.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3)
        base = status(proc.pid)
        held = []
        t0 = time.monotonic()
        for i in range(a.connections):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=60)
            held.append(s)
        for s in held:  # every session established and waiting for a command
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(512)
                if not chunk:
                    sys.exit("a held connection was closed: " + (d / "serve.log").read_text()[-2000:])
                buf += chunk
            assert buf.startswith(b"220"), buf
        opened = time.monotonic() - t0
        time.sleep(1)
        held_status = status(proc.pid)
        greets, alls = [], []
        for _ in range(a.probes):
            g, t = transaction(a.port)
            greets.append(g * 1000)
            alls.append(t * 1000)
        after = status(proc.pid)
        print(f"idle connections held: {len(held)} (opened and greeted in {opened:.1f} s)")
        print(f"server RSS: idle {base['VmRSS']:.1f} MiB; holding {held_status['VmRSS']:.1f} MiB "
              f"(+{held_status['VmRSS'] - base['VmRSS']:.1f} MiB, {(held_status['VmRSS'] - base['VmRSS']) * 1024 / len(held):.1f} KiB "
              f"per connection); peak {after['VmHWM']:.1f} MiB")
        print(f"new client while held ({a.probes} probes): greeting median {statistics.median(greets):.1f} ms, "
              f"max {max(greets):.1f} ms; whole transaction median {statistics.median(alls):.1f} ms, max {max(alls):.1f} ms")
        print(f"RESULT idle conns={len(held)} rss_mib={held_status['VmRSS']:.1f} peak_mib={after['VmHWM']:.1f} "
              f"greet_p50_ms={statistics.median(greets):.1f} greet_max_ms={max(greets):.1f} "
              f"txn_p50_ms={statistics.median(alls):.1f} txn_max_ms={max(alls):.1f}")
        for s in held:
            s.close()
        proc.terminate()
        proc.wait(timeout=30)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
