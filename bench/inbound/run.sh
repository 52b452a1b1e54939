#!/bin/bash
# bench/inbound/run.sh - inbound accept rate, Postern side by side with Postfix, in one run.
#
# usage: bench/inbound/run.sh [REPS] [--postfix-only | --postern-only]     (REPS default 3)
#
# For each repetition, for each scenario (SCEN, default "plain tls"):
#   1. Postfix 3.7 in hold mode on 127.0.0.1:2525, set up by the shared harness
#      (postfix-relay.sh configure --mode hold --in-tls may --out-tls may --cert ecdsa; start),
#      loaded, then stopped and purged;
#   2. Postern on 127.0.0.1:$POSTERN_PORT (default 2625) with [queue] hold = true, in a fresh
#      directory made by `postern init`, loaded, then stopped with SIGTERM.
# Load (the shared load.sh): N messages of SIZE body bytes over CONC parallel sessions,
# one message per session.  plain = `load.sh ... --tool smtp-source`;
# tls = `load.sh ... --tls` (tools/smtpload, STARTTLS, full TLS handshake every session).
# Measured per run: msgs/s accepted (load.sh RESULT line); server CPU per message (utime+stime
# of the server's process tree including reaped children, before/after, from /proc) and peak
# RSS/PSS (sum over the tree, sampled every MON_INTERVAL s) - both by the shared tools/procmon.py;
# messages actually stored (Postfix: files in the hold queue; Postern: files in its spool).
# Appends raw RESULT lines to $RESULTS/inbound-DATE.txt, then prints medians [min-max] and the
# ratio Postern/Postfix (bench/inbound/summarize.py).  Exit status 0 only if every run had
# all N messages accepted.
#
# env: N (10000; 1000 for a quick look)  SIZE (5120)  CONC (20)  SCEN ("plain tls")
#      POSTERN (build/postern)  POSTERN_PORT (2625)  POSTERN_CERT (bench | init, default bench:
#      the same ECDSA P-256 certificate Postfix uses; init = the certificate `postern init` made)
#      SHARED_BENCH (../shared/bench from the repo root)  RESULTS (bench/results)
#      BENCH_TMP (/var/tmp, must be on the same file system as /var/spool/postfix)
#      SETTLE (3: seconds of sync+sleep before each run)  TIME_LIMIT (600 s per load run)
#      MON_INTERVAL (0.2)  KEEP (1 = keep Postern's run directories)
# Needs root for Postfix (it reconfigures and starts the system Postfix); loopback only.
# Example: N=1000 bench/inbound/run.sh 1 --postfix-only
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$ROOT/bench/lib.sh"   # bench_args, bench_env, cleanup, run_bg, pf_*, pt_*, write_hold_config ...

bench_args "$@"
bench_env
TIME_LIMIT=${TIME_LIMIT:-600} MON_INTERVAL=${MON_INTERVAL:-0.2}
bench_check
[[ $POSTERN_PORT =~ ^[0-9]+$ && $POSTERN_PORT -ge 1024 && $POSTERN_PORT -le 65535 && $POSTERN_PORT != "$PF_PORT" ]] \
    || die "POSTERN_PORT 1024..65535, not $PF_PORT"
[[ $TIME_LIMIT =~ ^[0-9]+$ && $TIME_LIMIT -ge 5 && $TIME_LIMIT -le 3600 ]] || die "TIME_LIMIT 5..3600"
[[ -x $SHARED/load.sh && -x $SHARED/postfix-relay.sh && -f $SHARED/tools/procmon.py ]] \
    || die "shared harness not found at $SHARED (set SHARED_BENCH)"
if [[ $DO_PF == 1 ]]; then
    [[ $(id -u) == 0 ]] || die "the Postfix runs need root (or use --postern-only)"
    command -v postfix >/dev/null && command -v smtp-source >/dev/null || die "postfix not installed (scripts/install-deps.sh)"
fi
if [[ $DO_PT == 1 ]]; then
    [[ -x $POSTERN ]] || die "$POSTERN not found: run 'make build' first (or use --postfix-only)"
    command -v smtp-source >/dev/null || die "smtp-source (package postfix) is needed for the plain scenario"
fi
bench_out inbound

# measure SERVER SCENARIO REP ROOT_PID PORT: procmon on ROOT_PID's tree around one load.sh run.
# Sets LOAD_LINE, MON_LINE, LOAD_RC.
measure() {
    local server=$1 scen=$2 rep=$3 root=$4 port=$5 monout
    monout=$(mktemp)
    "$PY" "$SHARED/tools/procmon.py" "$root" --interval "$MON_INTERVAL" --max-seconds $((TIME_LIMIT + 120)) \
        --label "$server-$scen" > "$monout" &
    MON_PID=$!
    sleep 0.3
    local args=(127.0.0.1 "$port" -n "$N" -s "$SIZE" -c "$CONC" --time-limit "$TIME_LIMIT")
    if [[ $scen == tls ]]; then args+=(--tls); else args+=(--tool smtp-source); fi
    local lo loadout; loadout=$(mktemp)
    LOAD_RC=0
    run_bg "$SHARED/load.sh" "${args[@]}" > "$loadout" 2>&1 || LOAD_RC=$?
    lo=$(cat "$loadout"); rm -f "$loadout"
    kill "$MON_PID" 2>/dev/null || true
    wait "$MON_PID" 2>/dev/null || true
    MON_PID=""
    grep -v '^RESULT' <<< "$lo" | head -5 || true
    LOAD_LINE=$(grep '^RESULT load' <<< "$lo" | tail -1 || true)
    MON_LINE=$(grep '^RESULT procmon' "$monout" || true)
    rm -f "$monout"
    [[ -n $LOAD_LINE ]] && echo "$LOAD_LINE" >> "$OUT"
    [[ -n $MON_LINE ]] && echo "$MON_LINE" >> "$OUT"
    return 0
}

# result SERVER SCENARIO REP STORED EXTRA...: the combined RESULT line; flags a failed run.
result() {
    local server=$1 scen=$2 rep=$3 stored=$4; shift 4
    local ok cpu; ok=$(kv "$LOAD_LINE" ok); ok=${ok:-0}; cpu=$(kv "$MON_LINE" cpu_s)
    log "RESULT inbound server=$server scenario=$scen rep=$rep n=$N size=$SIZE conc=$CONC" \
        "tool=$(kv "$LOAD_LINE" tool) tls=$(kv "$LOAD_LINE" tls) ok=$ok stored=$stored load_rc=$LOAD_RC" \
        "wall_s=$(kv "$LOAD_LINE" wall_s) msgs_per_s=$(kv "$LOAD_LINE" msgs_per_s) client_cpu_s=$(kv "$LOAD_LINE" client_cpu_s)" \
        "cpu_s=$cpu cpu_ms_per_msg=$(awk -v c="${cpu:-0}" -v n="$ok" 'BEGIN{printf "%.3f", (n>0)?(c*1000/n):0}')" \
        "peak_rss_kb=$(kv "$MON_LINE" peak_rss_kb) peak_pss_kb=$(kv "$MON_LINE" peak_pss_kb)" \
        "peak_procs=$(kv "$MON_LINE" peak_procs) sys_busy_pct=$(kv "$MON_LINE" sys_busy_pct)" \
        "tls_seen=$(kv "$LOAD_LINE" tls_seen) $*"
    if [[ $ok != "$N" || $LOAD_RC != 0 ]]; then
        echo "run.sh: FAIL $server $scen rep $rep: $ok of $N accepted (load rc=$LOAD_RC)" >&2
        FAILED=1
    fi
    if [[ $stored != "$N" ]]; then
        echo "run.sh: WARNING $server $scen rep $rep: $stored messages stored, expected $N" >&2
    fi
}

run_postfix() { # SCENARIO REP
    local scen=$1 rep=$2
    pf_start hold
    local from; from=$(( $(nlines "$PFLOG") + 1 ))
    measure postfix "$scen" "$rep" "$(tr -d ' \n' < "$MPID")" "$PF_PORT"
    local held tin
    held=$(find /var/spool/postfix/hold -type f 2>/dev/null | wc -l)
    tin=$(tail -n +"$from" "$PFLOG" 2>/dev/null | grep -c 'smtpd.*TLS connection established from' || true)
    result postfix "$scen" "$rep" "$held" "held=$held log_tls_in=${tin:-0} cert=ecdsa-p256"
    pf_stop
}

run_postern() { # SCENARIO REP
    local scen=$1 rep=$2 d
    pt_setup postern-bench write_hold_config warn
    d=$PT_DIR
    local keytype
    keytype=$(openssl x509 -in "$d/$PT_CERT" -noout -text 2>/dev/null | awk -F': ' '/Public Key Algorithm/{a=$2} /NIST CURVE|ASN1 OID/{c=$2} /Public-Key:/{b=$2} END{gsub(/[ ()]/,"",b); print a "-" (c?c:b)}')
    pt_serve
    measure postern "$scen" "$rep" "$PT_PID" "$POSTERN_PORT"

    # What the queue says (tolerant: the control socket may not exist yet), then stop.
    local listed=na json
    if run_bg timeout 30 "$POSTERN" queue list --json -c "$d/postern.toml" > "$d/queue.json" 2>/dev/null; then
        json=$(cat "$d/queue.json")
        listed=$("$PY" -c 'import json,sys; a=json.load(sys.stdin); print("%d/%d" % (len(a), sum(1 for m in a if m.get("held"))))' <<< "$json" 2>/dev/null || echo na)
    fi
    pt_stop

    # Messages on disk: with queue.hold = true every accepted message is a file in
    # var/spool/hold/ (README, "Spool format"). Only warn on a mismatch.
    local qdir=$d/var/spool/hold files
    files=$(find "$qdir" -type f 2>/dev/null | wc -l)
    result postern "$scen" "$rep" "$files" "spool_files=$files queue_list=$listed stop_s=$PT_STOP_S serve_rc=$PT_RC cert=$keytype"
    [[ $KEEP == 1 ]] && echo "kept $d"
    [[ $KEEP == 1 ]] || rm_run_dir "$d"
    PT_DIR=""
}

ptver=na
[[ $DO_PT == 1 ]] && ptver=$(timeout 5 "$POSTERN" --version 2>/dev/null | head -1 | tr ' ' '_' || true)
log "# bench/inbound/run.sh $(date -Is) host=$(hostname) nproc=$(nproc) kernel=$(uname -r)" \
    "postfix=$(postconf -d -h mail_version 2>/dev/null || echo na) postern=${ptver:-na}" \
    "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)" \
    "N=$N SIZE=$SIZE CONC=$CONC REPS=$REPS SCEN=${SCEN// /,} postfix=$DO_PF postern=$DO_PT" \
    "postern_port=$POSTERN_PORT postern_cert=$POSTERN_CERT mon_interval=$MON_INTERVAL settle=$SETTLE inode_settle=$INODE_SETTLE"

bench_reps

echo
"$PY" "$HERE/summarize.py" "$OUT" || true
echo "raw results: $OUT"
if [[ $FAILED != 0 ]]; then echo "run.sh: some runs did not accept all $N messages" >&2; exit 1; fi
exit 0
