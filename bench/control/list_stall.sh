#!/bin/bash
# bench/control/list_stall.sh - does `postern queue list` stall the server? Fills a hold-mode
# instance with N messages (smtp-source, 20 sessions), then, three times, runs `queue list`
# and meanwhile opens 20 connections one after another, printing the slowest greeting and how
# long the list took. `list` and `show` read every queue file: on the main event loop they
# held up the accept loops (measured 2026-11-29 with N=20000: worst greeting 217-391 ms on the
# main loop, 9-20 ms with list/show on their own thread).
# usage: bench/control/list_stall.sh [POSTERN_BINARY]   env: N (20000), PORT (2790)
# Loopback only; bounded in count (N messages, 3 x 20 connections).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-$HERE/../../build/postern}
N=${N:-20000}
PORT=${PORT:-2790}
D=$(mktemp -d /tmp/postern-list-stall.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$D"' EXIT
"$BIN" init "$D" >/dev/null
sed -i "s/127.0.0.1:2525/127.0.0.1:$PORT/; s/^hold = false/hold = true/" "$D/postern.toml"
[[ $(id -u) != 0 ]] || sed -i 's/^user = "postern"/allow_root = true/' "$D/postern.toml"
"$BIN" serve -c "$D/postern.toml" >"$D/log" 2>&1 &
pid=$!
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
/usr/sbin/smtp-source -s 20 -l 2000 -m "$N" -c -f a@example.test -t bob@localhost "127.0.0.1:$PORT" >/dev/null
echo "# $N messages held; $("$BIN" queue list -c "$D/postern.toml" | grep -c '^[0-9A-F]') listed"
for rep in 1 2 3; do
    (
        t0=$(date +%s.%N)
        "$BIN" queue list -c "$D/postern.toml" >/dev/null
        echo "$(date +%s.%N) - $t0" | bc >"$D/list_s"
    ) &
    lp=$!
    worst=$(/usr/bin/python3 - "$PORT" <<'PY'
import socket, sys, time
worst = 0.0
for _ in range(20):
    t = time.time()
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
        s.recv(100)
    worst = max(worst, time.time() - t)
    time.sleep(0.02)
print(f"{worst * 1000:.1f}")
PY
)
    wait $lp
    echo "RESULT list_stall rep=$rep n=$N worst_greeting_ms=$worst list_s=$(cat "$D/list_s")"
done
