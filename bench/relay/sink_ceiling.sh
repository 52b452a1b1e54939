#!/bin/bash
# bench/relay/sink_ceiling.sh - what the relay benchmark's STARTTLS sink costs and how fast it
# goes with no relay in front of it (issue 6: the relay-with-TLS target is judged on a machine
# whose 2 cores also run this sink; this says how much of them it takes).
#
# usage: bench/relay/sink_ceiling.sh [REPS]      (REPS default 1)
#
# Each repetition: the shared sink.sh's STARTTLS sink (the Postfix front, smtpd_proxy_filter ->
# smtp-sink, ECDSA P-256, exactly as bench/relay/run.sh's tls scenario uses it) on
# 127.0.0.1:2526, fed directly by the shared tools/smtpload the way Postern feeds it: CONC
# TLS connections, N/CONC messages each (STARTTLS once per connection, PIPELINING not used),
# SIZE-byte bodies. tools/procmon.py measures the front's process tree and smtp-sink.
# Output, one line per repetition (appended to $RESULTS/sinkcap-DATE.txt, or to OUT when set):
#   RESULT sinkcap n= conc= per_conn= ok= wall_s= msgs_per_s= front_cpu_s= inner_cpu_s=
#          sink_cpu_ms_per_msg= client_cpu_s= client_cpu_ms_per_msg= sys_busy_pct= rep=
# sink_cpu_ms_per_msg is the front and smtp-sink together, per accepted message. Exit status 0
# only if every repetition had all N messages accepted.
# env: N (10000)  SIZE (5120)  CONC (20)  SHARED_BENCH  RESULTS  TIME_LIMIT (300 s per run)
#      OUT (append there instead)  REP_LABEL (rep= to write; bench/all.sh: its repetition)
# Needs root (the sink is a Postfix instance). Loopback only; bounded in count (N) and time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BENCH_ME=sink_ceiling.sh
. "$ROOT/bench/lib.sh"

REPS=${1:-1} SCEN=tls DO_PF=0 DO_PT=0
bench_env
bench_check
TIME_LIMIT=${TIME_LIMIT:-300}
SINK_PORT=2526 INNER_PORT=2527
[[ $(id -u) == 0 ]] || die "needs root: the shared STARTTLS sink is a Postfix instance"
[[ -x $SINK && -f $SHARED/tools/procmon.py ]] || die "shared harness not found at $SHARED (set SHARED_BENCH)"
for p in $SINK_PORT $INNER_PORT; do port_listening "$p" && die "port $p (sink) is already in use"; done
if [[ -z ${OUT:-} ]]; then bench_out sinkcap; else "$SHARED/tools/build.sh" >/dev/null; fi
BENCH_BIN=${BENCH_BIN:-${TMPDIR:-/tmp}/postern-bench-bin}
PER_CONN=$(( (N + CONC - 1) / CONC ))
SINK_USED=1

rc=0
for rep in $(seq 1 "$REPS"); do
    settle
    "$SINK" start tls 127.0.0.1 "$SINK_PORT" --inner-port "$INNER_PORT" --cert ecdsa >/dev/null
    front=$(tr -d ' \n' < /var/spool/postfix-sink/pid/master.pid)
    inner=$(cat "/run/bench-sink/$INNER_PORT.pid")
    mf=$(mktemp) mi=$(mktemp) lo=$(mktemp)
    "$PY" "$SHARED/tools/procmon.py" "$front" --no-pss --max-seconds $((TIME_LIMIT + 30)) > "$mf" & m1=$!
    "$PY" "$SHARED/tools/procmon.py" "$inner" --no-pss --max-seconds $((TIME_LIMIT + 30)) > "$mi" & m2=$!
    sleep 0.5
    lrc=0
    run_bg timeout $((TIME_LIMIT + 10)) "$BENCH_BIN/smtpload" -t -n "$N" -s "$SIZE" -c "$CONC" -k "$PER_CONN" \
        -T "$TIME_LIMIT" 127.0.0.1 "$SINK_PORT" > "$lo" || lrc=$?
    kill -TERM "$m1" "$m2" 2>/dev/null || true
    wait "$m1" "$m2" || true
    "$SINK" stop "$SINK_PORT" >/dev/null 2>&1 || true
    load=$(grep '^RESULT smtpload' "$lo" | tail -1 || true)
    fl=$(grep '^RESULT procmon' "$mf" || true) il=$(grep '^RESULT procmon' "$mi" || true)
    rm -f "$mf" "$mi" "$lo"
    ok=$(kv "$load" ok) wall=$(kv "$load" wall_s) ccpu=$(kv "$load" client_cpu_s)
    fcpu=$(kv "$fl" cpu_s) icpu=$(kv "$il" cpu_s)
    log "RESULT sinkcap n=$N size=$SIZE conc=$CONC per_conn=$PER_CONN ok=${ok:-0} wall_s=${wall:-0}" \
        "msgs_per_s=$(kv "$load" msgs_per_s) front_cpu_s=${fcpu:-na} inner_cpu_s=${icpu:-na}" \
        "sink_cpu_ms_per_msg=$(awk -v a="${fcpu:-0}" -v b="${icpu:-0}" -v n="${ok:-0}" 'BEGIN{printf "%.3f", (n>0 ? (a+b)*1000/n : 0)}')" \
        "client_cpu_s=${ccpu:-na} client_cpu_ms_per_msg=$(awk -v c="${ccpu:-0}" -v n="${ok:-0}" 'BEGIN{printf "%.3f", (n>0 ? c*1000/n : 0)}')" \
        "sys_busy_pct=$(kv "$fl" sys_busy_pct) tls=$(kv "$load" tls) load_rc=$lrc rep=${REP_LABEL:-$rep}"
    [[ $lrc == 0 && ${ok:-0} == "$N" && -n $fcpu && -n $icpu ]] || rc=1
done
exit $rc
