#!/bin/bash
# bench/profile.sh - where Postern's time goes, under the inbound benchmark's load (issue 6).
#
# usage: bench/profile.sh perf [plain|tls|relay-plain|relay-tls]      (N default 5000)
#        bench/profile.sh syscalls [plain|tls|relay-plain|relay-tls]  (N default 2000)
#        bench/profile.sh stat [plain|tls|relay-plain|relay-tls]      (N default 5000)
#        bench/profile.sh trace [plain|tls|relay-plain|relay-tls]     (N default 5000)
#        bench/profile.sh timeline [plain|tls|relay-plain|relay-tls]  (N default 5000)
#        bench/profile.sh callgrind [plain|tls]   (N default 300: valgrind runs ~50x slower)
#
# relay-plain, relay-tls: the end-to-end relay instead (bench/relay/run.sh 1 --postern-only,
# SCEN plain or tls: injection, Postern, the sink; needs root like that script); the monitor
# attaches to Postern as soon as it listens, before the injection, and figures are per
# delivered message (N).
#
# Postern in hold mode, configured as in bench/inbound/run.sh (write_hold_config, the bench's
# ECDSA P-256 certificate), loaded by the shared load.sh (plain: smtp-source; tls: smtpload,
# a full TLS 1.3 handshake per session), N messages of SIZE bytes over CONC sessions.
#   perf:      `perf record -g` on the server process for the whole load; prints the split by
#              library (kernel, libcrypto, libc, postern ...), the system calls by inclusive
#              share, and the top symbols.
#   stat:      `perf stat --per-thread` on the server: CPU time and context switches per thread
#              (session loops, main loop, disk pool), totals and per message.
#   timeline:  `tcpdump` on the loopback traffic to Postern's port (the inbound leg), then
#              bench/timeline.py: each session split into turns (the greeting, each command,
#              each reply, the TLS flights, the message), with the median wait before each: a
#              server turn's wait is Postern's reply time (the disk's, for the reply to the
#              message), a client turn's the load generator's. Needs tcpdump (not installed by
#              `make deps`: apt-get install tcpdump).
#   callgrind: the server under `valgrind --tool=callgrind`; prints the functions by inclusive
#              and by exclusive instruction count (user space only: no kernel time here).
#   syscalls:  `strace -c -f` on the server: system calls per message by name (strace slows
#              the server down: use it for counts, not for times).
#   trace:     `perf trace -s` on the server: per thread, how long its waits and syncs took
#              (syncfs, fsync, renameat2, openat, writev, epoll_wait, futex: count, total, mean,
#              max), so the committer's batch (messages per syncfs) and its cycle (the files
#              written, syncfs, renames, directory fsync) can be read off; tracing only those
#              system calls slows the server down (2,300–3,400 msgs/s plaintext here, 4,000–5,000
#              under `stat`): compare rates with `stat`, read the split of the cycle here.
# Output and raw data: bench/results/profile-MODE-SCEN-DATE/ (perf.data, callgrind.out or lo.pcap, and
# report.txt). Needs root only for perf's kernel symbols; loopback only; bounded in count
# (N) and time (TIME_LIMIT per load run, default 600 s).
# env: N  SIZE (5120)  CONC (20; callgrind 4)  POSTERN (build/postern)  POSTERN_PORT (2625)
#      POSTERN_THREADS (server.threads; default 0)  POSTERN_SYNC (spool.sync; default filesystem)
#      SHARED_BENCH  RESULTS  BENCH_TMP
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BENCH_ME=profile.sh
. "$HERE/lib.sh"

MODE=${1:-}
SCENARIO=${2:-plain}
[[ $MODE == perf || $MODE == stat || $MODE == callgrind || $MODE == syscalls || $MODE == trace ||
   $MODE == timeline ]] ||
    die "usage: bench/profile.sh perf|stat|trace|timeline|callgrind|syscalls [plain|tls]"
[[ $SCENARIO == plain || $SCENARIO == tls || $SCENARIO == relay-plain || $SCENARIO == relay-tls ]] ||
    die "scenario: plain, tls, relay-plain or relay-tls"
[[ $SCENARIO != relay-* || $MODE != callgrind ]] || die "callgrind: inbound scenarios only"
case $MODE in
    callgrind) N=${N:-300} CONC=${CONC:-4} ;;
    syscalls) N=${N:-2000} CONC=${CONC:-20} ;;
    *) N=${N:-5000} CONC=${CONC:-20} ;;
esac
export N CONC
DO_PF=0 DO_PT=1 REPS=1 SCEN=${SCENARIO#relay-}
bench_env
bench_check
TIME_LIMIT=${TIME_LIMIT:-600}
[[ -x $POSTERN ]] || die "$POSTERN not found: run 'make build' first"
case $MODE in
    callgrind) command -v valgrind >/dev/null || die "valgrind not installed" ;;
    syscalls) command -v strace >/dev/null || die "strace not installed" ;;
    timeline) command -v tcpdump >/dev/null || die "tcpdump not installed (apt-get install tcpdump)" ;;
    *) command -v perf >/dev/null || die "perf not installed (linux-perf)" ;;
esac
[[ $SCENARIO != plain && $SCENARIO != relay-plain ]] || command -v smtp-source >/dev/null || die "smtp-source (package postfix) not installed"

OUTDIR=$RESULTS/profile-$MODE-$SCENARIO-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUTDIR"
REPORT=$OUTDIR/report.txt

# The monitor of MODE (perf, stat, syscalls) on process $1, in the background: MON_PID.
attach_monitor() {
    if [[ $MODE == perf ]]; then
        perf record -F 999 -g -p "$1" -o "$OUTDIR/perf.data" > "$OUTDIR/perf-record.log" 2>&1 &
        MON_PID=$!
        sleep 0.5
    elif [[ $MODE == stat ]]; then
        perf stat --per-thread -e task-clock,context-switches -p "$1" -o "$OUTDIR/perf-stat.txt" &
        MON_PID=$!
        sleep 0.5
    elif [[ $MODE == trace ]]; then
        perf trace -s -p "$1" -o "$OUTDIR/perf-trace.txt" -e syncfs,fsync,renameat2,openat,writev,epoll_wait,futex &
        MON_PID=$!
        sleep 1
    elif [[ $MODE == timeline ]]; then
        # -Z root: tcpdump would otherwise drop to its own user, which may not write $OUTDIR.
        tcpdump -i lo -s 128 -B 65536 -Z root -w "$OUTDIR/lo.pcap" "tcp port $POSTERN_PORT" \
            > "$OUTDIR/tcpdump.log" 2>&1 &
        MON_PID=$!
        sleep 1
    elif [[ $MODE == syscalls ]]; then
        strace -c -f -q -p "$1" -o "$OUTDIR/strace-c.txt" &
        MON_PID=$!
        sleep 1
    fi
}
stop_monitor() {
    [[ -n ${MON_PID:-} ]] || return 0
    kill -INT "$MON_PID" 2>/dev/null || true
    wait "$MON_PID" 2>/dev/null || true
    MON_PID=""
}

if [[ $SCENARIO == relay-* ]]; then
    # bench/relay/run.sh starts Postern (then waits SETTLE, 3 s, before the injection): attach
    # as soon as it listens. Its own clean-up stops Postern, which ends the monitor too.
    ! port_listening "$POSTERN_PORT" || die "port $POSTERN_PORT is already in use"
    POSTERN=$POSTERN POSTERN_PORT=$POSTERN_PORT N=$N SIZE=$SIZE CONC=$CONC SCEN=${SCENARIO#relay-} \
        "$ROOT/bench/relay/run.sh" 1 --postern-only > "$OUTDIR/relay.log" 2>&1 &
    RELAY_PID=$!
    trap 'kill "$RELAY_PID" 2>/dev/null || true; cleanup' EXIT   # never leave the relay run behind
    PT_PID=""
    for _ in $(seq 1 600); do
        kill -0 "$RELAY_PID" 2>/dev/null || break
        PT_PID=$(ss -Hltnp "sport = :$POSTERN_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)
        [[ -n $PT_PID ]] && break
        sleep 0.1
    done
    [[ -n $PT_PID ]] || die "Postern did not listen on 127.0.0.1:$POSTERN_PORT (log: $OUTDIR/relay.log)"
    attach_monitor "$PT_PID"
    wait "$RELAY_PID" || die "bench/relay/run.sh failed (log: $OUTDIR/relay.log)"
    stop_monitor
    LOAD=$(grep -h '^RESULT' "$(awk '/raw results:/ {print $3}' "$OUTDIR/relay.log")" 2>/dev/null | head -1 || true)
else
    pt_setup postern-profile write_hold_config warn
    d=$PT_DIR
    if [[ $MODE == callgrind ]]; then
        valgrind --tool=callgrind --callgrind-out-file="$OUTDIR/callgrind.out" --separate-threads=no \
            "$POSTERN" serve -c "$d/postern.toml" > "$d/serve.log" 2>&1 &
    else
        "$POSTERN" serve -c "$d/postern.toml" > "$d/serve.log" 2>&1 &
    fi
    PT_PID=$!
    for _ in $(seq 1 600); do   # up to 60 s (valgrind starts slowly)
        kill -0 "$PT_PID" 2>/dev/null || die "postern exited (log: $d/serve.log)"
        port_listening "$POSTERN_PORT" && break
        sleep 0.1
    done
    port_listening "$POSTERN_PORT" || die "postern did not listen on 127.0.0.1:$POSTERN_PORT"
    settle

    [[ $MODE == callgrind ]] || attach_monitor "$PT_PID"
    args=(127.0.0.1 "$POSTERN_PORT" -n "$N" -s "$SIZE" -c "$CONC" --time-limit "$TIME_LIMIT")
    if [[ $SCENARIO == tls ]]; then args+=(--tls); else args+=(--tool smtp-source); fi
    LOAD=$(run_bg "$SHARED/load.sh" "${args[@]}" 2>&1 || true)
    stop_monitor
    pt_stop
fi

set +o pipefail   # head closes the pipes early; a grep that finds nothing is not an error here
{
    echo "# bench/profile.sh $MODE $SCENARIO  $(date -u +%FT%TZ)  N=$N SIZE=$SIZE CONC=$CONC commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
    grep '^RESULT' <<< "$LOAD" || echo "load: $LOAD"
    if [[ $MODE == perf ]]; then
        echo; echo "## share of the server's samples by library (self)"
        perf report -i "$OUTDIR/perf.data" --no-children --sort dso -q -g none 2>/dev/null | head -12
        echo; echo "## system calls, inclusive share of the server's samples"
        perf report -i "$OUTDIR/perf.data" --children --sort sym -q -g none 2>/dev/null | grep -E '\[k\] __x64_sys_' | head -15 || true
        echo; echo "## top symbols (self)"
        perf report -i "$OUTDIR/perf.data" --no-children --sort dso,sym -q -g none 2>/dev/null | head -30
    elif [[ $MODE == stat ]]; then
        echo; echo "## per thread (perf stat --per-thread): CPU ms and context switches; threads by CPU"
        awk -v n="$N" '
            /task-clock/ {cpu[$1] = $2; gsub(/,/, "", cpu[$1])}
            /context-switches/ {cs[$1] = $2; gsub(/,/, "", cs[$1])}
            END {
                for (t in cpu) {tc += cpu[t]; tcs += cs[t]; k++}
                printf "threads %d, CPU %.0f ms (%.3f ms per message), context switches %d (%.1f per message)\n", k, tc, tc / n, tcs, tcs / n
                # by thread name (perf prints NAME-TID; the disk pool is 24 threads named disk)
                for (t in cpu) {name = t; sub(/-[0-9]+$/, "", name); rc[name] += cpu[t]; rcs[name] += cs[t]; rk[name]++}
                for (r in rc) printf "%10.1f ms %8d cs  %7.3f ms/msg  %s (%d thread%s)\n", rc[r], rcs[r], rc[r] / n, r, rk[r], (rk[r] > 1 ? "s" : "") | "sort -rn"
            }' "$OUTDIR/perf-stat.txt"
    elif [[ $MODE == trace ]]; then
        echo; echo "## waits and syncs per thread (perf trace -s; times in ms)"
        grep -E '^ [^ ].*events|^   (syncfs|fsync|renameat2|openat|writev|epoll_wait|futex) ' "$OUTDIR/perf-trace.txt" || true
        # The committer is the thread that calls syncfs (or fsync per file); its cycle per batch.
        awk -v n="$N" '/ events, / {th = $1 " " $2; sub(/,$/, "", th)}
            $1 ~ /^(syncfs|fsync|renameat2|openat|writev)$/ {calls[th, $1] = $2; ms[th, $1] = $4}
            $1 == "syncfs" {c = th}
            END {if (c == "" || !calls[c, "syncfs"]) exit
                b = calls[c, "syncfs"]
                printf "committer %s: %d batches, %.1f messages per batch; per batch (ms): files written (openat + writev) %.3f, syncfs %.3f, renames %.3f, directory fsync %.3f\n", c, b, n / b, (ms[c, "openat"] + ms[c, "writev"]) / b, ms[c, "syncfs"] / b, ms[c, "renameat2"] / b, ms[c, "fsync"] / b}' "$OUTDIR/perf-trace.txt"
    elif [[ $MODE == timeline ]]; then
        echo; echo "## where each session's time goes (tcpdump on lo, port $POSTERN_PORT; bench/timeline.py)"
        tail -2 "$OUTDIR/tcpdump.log"
        python3 "$HERE/timeline.py" "$OUTDIR/lo.pcap" "$POSTERN_PORT" 2>&1
    elif [[ $MODE == syscalls ]]; then
        echo; echo "## system calls per message (strace -c -f; all of the server's threads)"
        awk -v n="$N" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" {name = $NF; calls = $4; tot += calls
                printf "%10.2f  %s\n", calls / n, name | "sort -rn | head -25"}
            END {close("sort -rn | head -25"); printf "%10.2f  total\n", tot / n}' "$OUTDIR/strace-c.txt"
    else
        echo; echo "## inclusive (user-space instructions)"
        callgrind_annotate --inclusive=yes "$OUTDIR/callgrind.out" 2>/dev/null | sed -n '1,60p' | cut -c1-200
        echo; echo "## exclusive"
        callgrind_annotate "$OUTDIR/callgrind.out" 2>/dev/null | sed -n '1,45p' | cut -c1-200
    fi
} > "$REPORT"
cat "$REPORT"
echo "raw data and report: $OUTDIR"
