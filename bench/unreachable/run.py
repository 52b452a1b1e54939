#!/usr/bin/python3
"""bench/unreachable/run.py - N messages for a next hop that drops connection attempts (a
listener with a full accept queue that never accepts: SYNs go unanswered, every connect waits
for the 30 s timeout). Measures how long Postern takes until every message has had its first
delivery attempt (a `deferred` line each), and how many of those attempts connected (waited
for the timeout) rather than being suspended at once (policy/unreachable.hpp).

usage: POSTERN=path/to/postern bench/unreachable/run.py [N]   (default 200; at most 2000)
Prints one line: RESULT unreachable n=.. all_attempted_s=.. timed_out=.. suspended=..
Loopback only; gives up after 600 s.
"""
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time

N = min(int(sys.argv[1]) if len(sys.argv) > 1 else 200, 2000)
POSTERN = os.path.abspath(os.environ.get("POSTERN", "build/postern"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blackhole():
    """A listening socket whose accept queue is full and never drained."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(4):  # fill the accept queue (backlog 0 still takes one or two)
        c = socket.socket()
        c.setblocking(False)
        try:
            c.connect(lst.getsockname())
        except BlockingIOError:
            pass
        fillers.append(c)
    time.sleep(0.2)
    return lst, fillers


def main():
    top = tempfile.mkdtemp(prefix="postern-unreachable-")
    os.chmod(top, 0o755)  # run as root, the server drops to the `postern` user
    subprocess.run([POSTERN, "init", top], check=True, stdout=subprocess.DEVNULL)
    lst, fillers = blackhole()
    port = free_port()
    conf = os.path.join(top, "postern.toml")
    text = open(conf).read()
    text = text.replace('listen = ["127.0.0.1:2525"]', f'listen = ["127.0.0.1:{port}"]')
    text = text.replace('format = "text"', 'format = "json"')
    text += f'\n[[domain]]\nname = "hole.test"\nrelay_to = ["127.0.0.1:{lst.getsockname()[1]}"]\n'
    open(conf, "w").write(text)
    log = open(os.path.join(top, "log"), "w+")
    srv = subprocess.Popen([POSTERN, "serve", "-c", conf], cwd=top, stdout=log, stderr=log)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        t0 = time.time()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            for i in range(N):
                s.sendmail("a@localhost", [f"u{i}@hole.test"], f"Subject: {i}\r\n\r\nbody\r\n")
        timed_out = suspended = 0
        while time.time() - t0 < 600:
            timed_out = suspended = 0
            log.seek(0)
            for line in log:
                if '"event":"delivery"' not in line.replace(" ", ""):
                    continue
                e = json.loads(line)
                if e.get("result") != "deferred":
                    continue
                if e["reason"].startswith("delivery temporarily suspended"):
                    suspended += 1
                else:
                    timed_out += 1
            if timed_out + suspended >= N:
                break
            time.sleep(0.5)
        print(f"RESULT unreachable n={N} all_attempted_s={time.time() - t0:.1f} "
              f"timed_out={timed_out} suspended={suspended}")
    finally:
        srv.terminate()
        srv.wait(timeout=30)
        lst.close()
        for c in fillers:
            c.close()
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
