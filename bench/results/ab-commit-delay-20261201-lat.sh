#!/bin/bash
# latency at a fixed rate against POSTERN (hold mode, as bench/profile.sh sets it up)
set -euo pipefail
cd /work/main
HERE=/work/main/bench; ROOT=/work/main; BENCH_ME=lat.sh
. "$HERE/lib.sh"
REPS=1; bench_env; bench_check
pt_setup postern-lat write_hold_config warn
d=$PT_DIR
"$POSTERN" serve -c "$d/postern.toml" > "$d/serve.log" 2>&1 &
PT_PID=$!
for _ in $(seq 1 100); do port_listening "$POSTERN_PORT" && break; sleep 0.1; done
settle
python3 "$HERE/latency/run.py" 127.0.0.1 "$POSTERN_PORT" --rate "$RATE" --duration 15 --server-pid "$PT_PID" --label "$LABEL" | grep '^RESULT' | grep -o 'achieved_per_s=[0-9.]*\|p50_ms=[0-9.]*\|p99_ms=[0-9.]*\|max_ms=[0-9.]*\|server_cpu_ms_per_msg=[0-9.]*' | tr '\n' ' '; echo
pt_stop
