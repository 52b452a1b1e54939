#!/bin/bash
# bench/relay/run.sh - end-to-end relay rate (injection -> arrival at the sink), Postern side by
# side with Postfix, in one run.
#
# usage: bench/relay/run.sh [REPS] [--postfix-only | --postern-only]      (REPS default 3)
#
# For each repetition, for each scenario (SCEN, default "plain tls"):
#   1. Postfix 3.7 on 127.0.0.1:2525 relaying everything to the sink at [127.0.0.1]:2526, set up
#      exactly as the shared run-postfix-baseline.sh does for e2e-plain / e2e-tls-may
#      (postfix-relay.sh stop; configure --mode relay --in-tls may --out-tls may --cert ecdsa;
#      purge; rm smtp_scache.db; start), measured, then stopped and purged;
#   2. Postern on 127.0.0.1:$POSTERN_PORT (default 2625) in a fresh directory made by
#      `postern init`: profile "bench" (127.0.0.1, relay = "any"), smarthost
#      [[route]] domain = "*" hosts = ["127.0.0.1:2526"], opportunistic TLS; measured, its queue
#      drained and checked empty, then stopped with SIGTERM.
# Each measurement is one run of the shared e2e.sh (it starts the sink with -M N, injects with
# load.sh, waits for the N-th message at the sink and runs tools/procmon.py on the server's
# process tree):
#   plain: e2e.sh --relay 127.0.0.1:PORT -n N -s SIZE -c CONC --monitor-pid PID
#          injection smtp-source (plaintext), sink = smtp-sink (no STARTTLS offered)
#   tls:   the same plus --tls-in --sink-tls
#          injection tools/smtpload -t (STARTTLS, full handshake every session), sink = the
#          shared STARTTLS front (a second Postfix instance, smtpd_proxy_filter -> smtp-sink);
#          both relays use opportunistic TLS outbound (Postfix smtp_tls_security_level = may).
# Recorded per run: msgs/s accepted and delivered, server CPU per delivered message, peak
# RSS/PSS (sum over the tree), connections the relay opened to the sink, TLS on each leg, what
# was left in the queue.  Raw RESULT lines go to $RESULTS/relay-DATE.txt; at the end
# bench/relay/summarize.py prints medians [min-max] and Postern/Postfix ratios.
# Exit status 0 only if every run had all N messages accepted and delivered and (Postern) its
# queue ended empty.
#
# env: N (10000; 1000 for a quick look)  SIZE (5120)  CONC (20)  SCEN ("plain tls")
#      POSTERN (build/postern)  POSTERN_PORT (2625)  POSTERN_CERT (bench | init, default bench:
#      the ECDSA P-256 certificate Postfix uses)  SHARED_BENCH (../shared/bench from the repo
#      root)  RESULTS (bench/results)  BENCH_TMP (/var/tmp, the file system of /var/spool/postfix)
#      SETTLE (3 s of sync+sleep before each run)  E2E_TIMEOUT (600 s: e2e.sh --timeout, the wait
#      for delivery)  DRAIN_TIMEOUT (30 s: wait for Postern's queue to empty)  KEEP (1 = keep
#      Postern's run directories)
# Needs root (Postfix, and the shared STARTTLS sink is a Postfix instance). Loopback only.
# Example: N=1000 bench/relay/run.sh 1 --postern-only
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/bench/lib.sh"   # bench_args, bench_env, cleanup, run_bg, pf_*, pt_* ...

bench_args "$@"
bench_env
E2E_TIMEOUT=${E2E_TIMEOUT:-600} DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-30}
SINK_PORT=2526    # e2e.sh's default --sink, postfix-relay.sh's default relayhost
INNER_PORT=$((SINK_PORT + 1))   # sink.sh tls: smtp-sink behind the STARTTLS front
bench_check
[[ $POSTERN_PORT =~ ^[0-9]+$ && $POSTERN_PORT -ge 1024 && $POSTERN_PORT -le 65535 ]] || die "POSTERN_PORT 1024..65535"
for p in $PF_PORT $SINK_PORT $INNER_PORT; do [[ $POSTERN_PORT != "$p" ]] || die "POSTERN_PORT must not be $p"; done
[[ $E2E_TIMEOUT =~ ^[0-9]+$ && $E2E_TIMEOUT -ge 5 && $E2E_TIMEOUT -le 3600 ]] || die "E2E_TIMEOUT 5..3600"
[[ $DRAIN_TIMEOUT =~ ^[0-9]+$ && $DRAIN_TIMEOUT -ge 1 && $DRAIN_TIMEOUT -le 600 ]] || die "DRAIN_TIMEOUT 1..600"
[[ -x $SHARED/e2e.sh && -x $SHARED/sink.sh && -x $SHARED/load.sh && -x $SHARED/postfix-relay.sh && -f $SHARED/tools/procmon.py ]] \
    || die "shared harness not found at $SHARED (set SHARED_BENCH)"
[[ $(id -u) == 0 ]] || die "needs root: Postfix, and the shared STARTTLS sink is a Postfix instance"
command -v postfix >/dev/null && command -v smtp-source >/dev/null && command -v smtp-sink >/dev/null \
    || die "postfix not installed (scripts/install-deps.sh)"
if [[ $DO_PT == 1 ]]; then
    [[ -x $POSTERN ]] || die "$POSTERN not found: run 'make build' first (or use --postfix-only)"
fi
SINKLOG=/var/log/postfix-sink.log
SINKSTATE=/run/bench-sink
bench_out relay

active_opens() { awk '/^Tcp:/ {if (!h) {for (i = 1; i <= NF; i++) if ($i == "ActiveOpens") c = i; h = 1} else print $c}' /proc/net/snmp; }

# sink_sess PORT: SMTP sessions smtp-sink on PORT saw END ("sess=" of its last running counter).
# Sessions still open when smtp-sink exited on its N-th message are not included.
sink_sess() {
    local f=$SINKSTATE/$1.out
    [[ -f $f ]] || { echo 0; return; }
    local c; c=$(tr '\r' '\n' < "$f" | grep -o 'sess=[0-9]*' | tail -1 | cut -d= -f2 || true)
    echo "${c:-0}"
}

# measure SERVER SCENARIO REP RELAY_PORT MONITOR_ARGS...: one e2e.sh run.  Sets E2E_LINE,
# E2E_RC and SINK_FIELDS (connections/TLS sessions the sink saw from the relay).
measure() {
    local server=$1 scen=$2 rep=$3 port=$4; shift 4
    for p in $SINK_PORT $INNER_PORT; do port_listening "$p" && die "port $p (sink) is already in use"; done
    rm -f "$SINKSTATE/$SINK_PORT.out" "$SINKSTATE/$INNER_PORT.out"
    local args=(--relay "127.0.0.1:$port" --sink "127.0.0.1:$SINK_PORT" -n "$N" -s "$SIZE" -c "$CONC"
                --timeout "$E2E_TIMEOUT" --label "$server-$scen" "$@")
    [[ $scen == tls ]] && args+=(--tls-in --sink-tls)
    local sfrom opens0 eo; sfrom=$(( $(nlines "$SINKLOG") + 1 )); opens0=$(active_opens)
    eo=$(mktemp)
    E2E_RC=0
    SINK_USED=1
    # Under reap.py: the sink e2e.sh waits for is reaped as soon as it exits (PID 1 here takes
    # up to 2 s, which e2e.sh would count as delivery time; see bench/reap.py).
    run_bg "$PY" "$HERE/../reap.py" "$SHARED/e2e.sh" "${args[@]}" > "$eo" 2>&1 || E2E_RC=$?
    local opens1; opens1=$(active_opens)
    grep -vE '^RESULT|^smtp-sink|^STARTTLS front|^sink exited' "$eo" | head -8 || true
    E2E_LINE=$(grep '^RESULT e2e' "$eo" | tail -1 || true)
    grep '^RESULT' "$eo" >> "$OUT" || true
    rm -f "$eo"
    # Connections the relay opened to the sink.  tls: the front's smtpd log ("connect from"),
    # exact.  plain: smtp-sink cannot tell (its "sess=" counts ENDED sessions only, and the
    # relay's cached connections are still open when it exits on the N-th message), so the
    # count is estimated from the kernel's TCP ActiveOpens counter over the run minus the N
    # injection connections (one per message); any other TCP connect on the machine during
    # the run would add to it.
    if [[ $scen == tls ]]; then
        local conns tlsin
        conns=$(tail -n +"$sfrom" "$SINKLOG" 2>/dev/null | grep -cE 'postfix-sink/smtpd\[[0-9]+\]: connect from' || true)
        tlsin=$(tail -n +"$sfrom" "$SINKLOG" 2>/dev/null | grep -c 'postfix-sink/smtpd.*TLS connection established from' || true)
        SINK_FIELDS="sink_conns=${conns:-0} sink_conns_exact=1 sink_tls_sessions=${tlsin:-0} sink_inner_sess=$(sink_sess "$INNER_PORT")"
    else
        local est=$((opens1 - opens0 - N)); (( est >= 0 )) || est=na
        SINK_FIELDS="sink_conns=$est sink_conns_exact=0 sink_tls_sessions=0 sink_sess_ended=$(sink_sess "$SINK_PORT")"
    fi
    SINK_FIELDS+=" tcp_active_opens=$((opens1 - opens0))"
}

# result SERVER SCENARIO REP QUEUE_LEFT EXTRA...: the combined RESULT line; flags a failed run.
result() {
    local server=$1 scen=$2 rep=$3 qleft=$4; shift 4
    local acc del; acc=$(kv "$E2E_LINE" accepted); del=$(kv "$E2E_LINE" delivered)
    acc=${acc:-0} del=${del:-0}
    log "RESULT relay server=$server scenario=$scen rep=$rep n=$N size=$SIZE conc=$CONC" \
        "tls_in=$(kv "$E2E_LINE" tls_in) sink_tls=$(kv "$E2E_LINE" sink_tls) e2e_rc=$E2E_RC" \
        "accepted=$acc inject_s=$(kv "$E2E_LINE" inject_s) accept_per_s=$(kv "$E2E_LINE" accept_per_s)" \
        "delivered=$del deliver_s=$(kv "$E2E_LINE" deliver_s) deliver_per_s=$(kv "$E2E_LINE" deliver_per_s)" \
        "cpu_s=$(kv "$E2E_LINE" relay_cpu_s) cpu_ms_per_msg=$(kv "$E2E_LINE" relay_cpu_ms_per_msg)" \
        "peak_rss_kb=$(kv "$E2E_LINE" relay_peak_rss_kb) peak_pss_kb=$(kv "$E2E_LINE" relay_peak_pss_kb)" \
        "peak_procs=$(kv "$E2E_LINE" relay_peak_procs) sys_busy_pct=$(kv "$E2E_LINE" sys_busy_pct)" \
        "$SINK_FIELDS queue_left=$qleft $* rss_by_name_kb=$(kv "$E2E_LINE" relay_by_name)"
    if [[ $acc != "$N" || $del != "$N" || $E2E_RC != 0 ]]; then
        echo "run.sh: FAIL $server $scen rep $rep: accepted $acc, delivered $del of $N (e2e.sh rc=$E2E_RC)" >&2
        FAILED=1
    fi
}

# --- Postfix: exactly run-postfix-baseline.sh's e2e() ----------------------------------------
pf_logstats() { # first log line -> counts (same patterns as run-postfix-baseline.sh)
    tail -n +"$1" "$PFLOG" 2>/dev/null | awk '
        /smtpd.*TLS connection established from/ {tin++}
        /smtp\[.*TLS connection established to/ {tout++}
        /status=sent/ {sent++}
        /status=deferred/ {def++}
        /smtp\[.*conn_use=/ {reuse++}
        END {printf "log_tls_in=%d log_tls_out=%d log_sent=%d log_deferred=%d log_sent_on_reused_conn=%d", tin, tout, sent, def, reuse}'
}

run_postfix() { # SCENARIO REP
    local scen=$1 rep=$2
    pf_start relay
    local from; from=$(( $(nlines "$PFLOG") + 1 ))
    measure postfix "$scen" "$rep" "$PF_PORT" --monitor-pidfile "$MPID"
    sleep 1
    local qleft; qleft=$("$PF" qcount)
    result postfix "$scen" "$rep" "$qleft" "$(pf_logstats "$from") out_tls=may"
    pf_stop
}

# --- Postern -------------------------------------------------------------------------------
write_postern_config() { # DIR CERT KEY
    { pt_config_head "the end-to-end relay benchmark"; cat <<EOF

[tls]
opportunistic = true               # STARTTLS offered inbound; used outbound when the peer offers it
cert_file = "$2"
key_file = "$3"

[[profile]]
name = "bench"
hosts = ["127.0.0.1"]              # the load generator
relay = "any"                      # may relay to any domain (= Postfix mynetworks = 127.0.0.0/8)

[[route]]
domain = "*"                       # smarthost for everything (= Postfix relayhost)
hosts = ["127.0.0.1:$SINK_PORT"]          # the shared sink
EOF
    } > "$1/postern.toml"
}

# pt_queue DIR: number of messages `postern queue list --json` reports, or "na".
pt_queue() {
    local j
    j=$(timeout 10 "$POSTERN" queue list --json -c "$1/postern.toml" 2>/dev/null) || { echo na; return; }
    "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))' <<< "$j" 2>/dev/null || echo na
}

pt_logstats() { # LOG MAXLINES -> counts from Postern's text log (first MAXLINES lines)
    head -n "$2" "$1" 2>/dev/null | awk '
        $3 == "connect" {conn++}
        $3 == "tls" {tin++}
        $3 == "queued" {q++}
        $3 == "delivery" {d++
            if (/ result=sent /) sent++; else if (/ result=deferred /) def++; else if (/ result=bounced /) bnc++
            if (/ result=sent / && / tls=(untrusted|trusted|verified) /) stls++}
        $2 == "warning" || $2 == "error" {w++}
        END {printf "log_conn_in=%d log_tls_in=%d log_queued=%d log_delivery=%d log_sent=%d log_sent_tls=%d log_deferred=%d log_bounced=%d log_warn_err=%d",
                    conn, tin, q, d, sent, stls, def, bnc, w}'
}

run_postern() { # SCENARIO REP
    local scen=$1 rep=$2 d
    pt_setup postern-relay write_postern_config strict
    d=$PT_DIR
    pt_serve
    measure postern "$scen" "$rep" "$POSTERN_PORT" --monitor-pid "$PT_PID"
    local loglines; loglines=$(nlines "$d/serve.log")

    # The queue.  smtp-sink -M N exits on the N-th message's end-of-data without replying, so
    # the relay sees the connection drop and defers that one message (e2e.sh's documented side
    # effect; Postfix's runs purge it).  Allow a few seconds for in-flight bookkeeping, then,
    # if anything is left, start a plain sink without -M, ask for an immediate retry and wait
    # until `postern queue list --json` is [] (at most DRAIN_TIMEOUT s).
    local q1=na q2=na redeliv=0 t0=$SECONDS
    for _ in $(seq 1 10); do   # up to 5 s until at most the one expected message is left
        q1=$(pt_queue "$d")
        [[ $q1 =~ ^[01]$ ]] && break
        sleep 0.5
    done
    q2=$q1
    if [[ $q1 != 0 ]]; then
        if "$SINK" start plain 127.0.0.1 "$SINK_PORT" > /dev/null; then
            timeout 10 "$POSTERN" queue retry --all -c "$d/postern.toml" > /dev/null 2>&1 || true
            local end=$((SECONDS + DRAIN_TIMEOUT))
            while (( SECONDS < end )); do
                q2=$(pt_queue "$d")
                [[ $q2 == 0 ]] && break
                sleep 0.5
            done
            redeliv=$("$SINK" count "$SINK_PORT")
            "$SINK" stop "$SINK_PORT" > /dev/null 2>&1 || true
        else
            echo "run.sh: warning: could not start the drain sink on $SINK_PORT" >&2
        fi
    fi
    local drain_s=$((SECONDS - t0))

    pt_stop

    result postern "$scen" "$rep" "$q2" "queue_after_e2e=$q1 drain_redelivered=$redeliv drain_s=$drain_s" \
        "$(pt_logstats "$d/serve.log" "$loglines") stop_s=$PT_STOP_S serve_rc=$PT_RC cert=$POSTERN_CERT"
    if [[ $q2 != 0 ]]; then
        echo "run.sh: FAIL postern $scen rep $rep: queue not empty after draining ($q2 left; log $d/serve.log)" >&2
        FAILED=1
        KEEP_THIS=1
    fi
    if [[ $KEEP == 1 || ${KEEP_THIS:-0} == 1 ]]; then echo "kept $d"; else rm_run_dir "$d"; fi
    KEEP_THIS=0
    PT_DIR=""
}

ptver=na ptbin=na
if [[ $DO_PT == 1 ]]; then
    ptver=$(timeout 5 "$POSTERN" --version 2>/dev/null | head -1 | tr ' ' '_' || true)
    # commit= below is the checkout; the binary may be an older copy: identify it too
    ptbin="sha256:$(sha256sum "$POSTERN" | cut -c1-12),mtime:$(date -u -r "$POSTERN" +%Y-%m-%dT%H:%M:%SZ)"
fi
log "# bench/relay/run.sh $(date -Is) host=$(hostname) nproc=$(nproc) kernel=$(uname -r)" \
    "postfix=$(postconf -d -h mail_version 2>/dev/null || echo na) postern=${ptver:-na} postern_bin=$POSTERN postern_bin_id=$ptbin" \
    "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)" \
    "N=$N SIZE=$SIZE CONC=$CONC REPS=$REPS SCEN=${SCEN// /,} postfix=$DO_PF postern=$DO_PT" \
    "postern_port=$POSTERN_PORT postern_cert=$POSTERN_CERT settle=$SETTLE inode_settle=$INODE_SETTLE e2e_timeout=$E2E_TIMEOUT"

bench_reps
[[ $PF_USED == 1 ]] && { "$PF" stop >/dev/null 2>&1 || true; }

echo
"$PY" "$HERE/summarize.py" "$OUT" || true
echo "raw results: $OUT"
if [[ $FAILED != 0 ]]; then echo "run.sh: some runs failed (see FAIL lines above)" >&2; exit 1; fi
exit 0
