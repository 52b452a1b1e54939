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
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
die() { echo "run.sh: $*" >&2; exit 2; }

REPS=3 DO_PF=1 DO_PT=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --postfix-only) DO_PT=0; shift;;
        --postern-only) DO_PF=0; shift;;
        -h|--help) awk 'NR==1{next} /^#/{sub(/^# ?/,""); print; next} {exit}' "$0"; exit 0;;
        [0-9]*) REPS=$1; shift;;
        *) die "unknown argument $1 (see --help)";;
    esac
done
[[ $DO_PF == 1 || $DO_PT == 1 ]] || die "--postfix-only and --postern-only exclude each other"

N=${N:-10000} SIZE=${SIZE:-5120} CONC=${CONC:-20} SCEN=${SCEN:-plain tls}
POSTERN=${POSTERN:-$ROOT/build/postern} POSTERN_PORT=${POSTERN_PORT:-2625}
POSTERN_CERT=${POSTERN_CERT:-bench} RESULTS=${RESULTS:-$ROOT/bench/results}
BENCH_TMP=${BENCH_TMP:-/var/tmp} SETTLE=${SETTLE:-3} TIME_LIMIT=${TIME_LIMIT:-600}
MON_INTERVAL=${MON_INTERVAL:-0.2} KEEP=${KEEP:-0}
PF_PORT=2525   # fixed by postfix-relay.sh's default --listen

[[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 && $REPS -le 20 ]] || die "REPS 1..20"
[[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 1000000 ]] || die "N 1..1000000"
[[ $SIZE =~ ^[0-9]+$ && $CONC =~ ^[0-9]+$ && $CONC -ge 1 && $CONC -le 256 ]] || die "bad SIZE/CONC"
[[ $POSTERN_PORT =~ ^[0-9]+$ && $POSTERN_PORT -ge 1024 && $POSTERN_PORT -le 65535 && $POSTERN_PORT != "$PF_PORT" ]] \
    || die "POSTERN_PORT 1024..65535, not $PF_PORT"
[[ $TIME_LIMIT =~ ^[0-9]+$ && $TIME_LIMIT -ge 5 && $TIME_LIMIT -le 3600 ]] || die "TIME_LIMIT 5..3600"
[[ $SETTLE =~ ^[0-9]+$ && $SETTLE -le 60 ]] || die "SETTLE 0..60"
[[ $POSTERN_CERT =~ ^(bench|init)$ ]] || die "POSTERN_CERT bench|init"
for s in $SCEN; do [[ $s =~ ^(plain|tls)$ ]] || die "SCEN: plain and/or tls, not $s"; done
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
PY=/usr/bin/python3
PF=$SHARED/postfix-relay.sh
MPID=/var/spool/postfix/pid/master.pid
PFLOG=/var/log/postfix-bench.log

mkdir -p "$RESULTS"
OUT=$RESULTS/inbound-$(date +%Y%m%d-%H%M%S).txt
"$SHARED/tools/build.sh"   # compiles tools/smtpload into $BENCH_BIN (load.sh does it too)

# --- cleanup: only what this script started ----------------------------------------
PT_PID="" MON_PID="" BG_PID="" PT_DIR="" PF_USED=0 FAILED=0
cleanup() {
    [[ -n $BG_PID ]] && kill -TERM -- "-$BG_PID" 2>/dev/null || true
    [[ -n $MON_PID ]] && kill "$MON_PID" 2>/dev/null || true
    if [[ -n $PT_PID ]] && kill -0 "$PT_PID" 2>/dev/null; then
        kill -TERM "$PT_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$PT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PT_PID" 2>/dev/null || true
    fi
    [[ -n $PT_DIR && $KEEP != 1 ]] && rm -rf "$PT_DIR"
    if [[ $PF_USED == 1 ]]; then "$PF" stop >/dev/null 2>&1 || true; "$PF" purge >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_bg CMD...: run CMD in its own process group and wait for it, so that a SIGTERM/SIGINT to
# this script is handled at once (bash defers traps while a foreground command runs) and
# cleanup can end CMD with all its children (kill -- -PGID).
run_bg() {
    setsid "$@" &
    BG_PID=$!
    local rc=0
    wait "$BG_PID" || rc=$?
    BG_PID=""
    return $rc
}

log() { echo "$*" | tee -a "$OUT"; }
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<< "$1" | head -1; }
settle() { sync; sleep "$SETTLE"; }
port_listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }

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
    PF_USED=1
    "$PF" stop >/dev/null
    "$PF" configure --mode hold --in-tls may --out-tls may --cert ecdsa >/dev/null
    "$PF" purge >/dev/null
    "$PF" start >/dev/null
    settle
    local from; from=$(( $(wc -l < "$PFLOG" 2>/dev/null || echo 0) + 1 ))
    measure postfix "$scen" "$rep" "$(tr -d ' \n' < "$MPID")" "$PF_PORT"
    local held tin
    held=$(find /var/spool/postfix/hold -type f 2>/dev/null | wc -l)
    tin=$(tail -n +"$from" "$PFLOG" 2>/dev/null | grep -c 'smtpd.*TLS connection established from' || true)
    result postfix "$scen" "$rep" "$held" "held=$held log_tls_in=${tin:-0} cert=ecdsa-p256"
    "$PF" stop >/dev/null
    "$PF" purge >/dev/null
}

# Postern's bench configuration: everything not listed keeps its documented default.
write_postern_config() { # DIR CERT KEY
    cat > "$1/postern.toml" <<EOF
# written by bench/inbound/run.sh for the inbound benchmark
hostname = "postern.bench.test"

[server]
listen = ["127.0.0.1:$POSTERN_PORT"]
max_connections = 1000
max_connections_per_ip = 1000      # all load comes from 127.0.0.1
allow_root = true                  # the harness runs as root, in throw-away directories

[spool]
dir = "var/spool"

[tls]
cert_file = "$2"
key_file = "$3"

[queue]
hold = true                        # spool durably, never deliver (= Postfix hold mode)

[dns]
servers = ["127.0.0.1:5353"]       # guard: any lookup stays on loopback (nothing should resolve)

[[domain]]
name = "dst.bench.test"            # the load's recipient domain
maildir = "var/mail/dst"
EOF
}

run_postern() { # SCENARIO REP
    local scen=$1 rep=$2 d
    port_listening "$POSTERN_PORT" && die "127.0.0.1:$POSTERN_PORT is already in use"
    d=$(mktemp -d "$BENCH_TMP/postern-bench.XXXXXX"); PT_DIR=$d
    if ! run_bg timeout 60 "$POSTERN" init "$d" > "$d.init.log" 2>&1; then
        cat "$d.init.log" >&2; rm -f "$d.init.log"; PT_DIR=""; die "postern init failed (kept $d)"
    fi
    mv "$d.init.log" "$d/init.log"   # kept outside $d until init ran: $d must be empty for init
    local cert=var/tls/cert.pem key=var/tls/key.pem
    if [[ $POSTERN_CERT == bench ]]; then   # the ECDSA P-256 certificate Postfix uses
        CERT_DIR=${CERT_DIR:-/etc/bench-certs} "$SHARED/tools/mkcerts.sh" >/dev/null
        cp "${CERT_DIR:-/etc/bench-certs}/ecdsa.crt" "$d/var/tls/bench-ecdsa.crt"
        cp "${CERT_DIR:-/etc/bench-certs}/ecdsa.key" "$d/var/tls/bench-ecdsa.key"
        cert=var/tls/bench-ecdsa.crt key=var/tls/bench-ecdsa.key
    fi
    local keytype
    keytype=$(openssl x509 -in "$d/$cert" -noout -text 2>/dev/null | awk -F': ' '/Public Key Algorithm/{a=$2} /NIST CURVE|ASN1 OID/{c=$2} /Public-Key:/{b=$2} END{gsub(/[ ()]/,"",b); print a "-" (c?c:b)}')
    write_postern_config "$d" "$cert" "$key"
    mkdir -p "$d/var/spool" "$d/var/mail/dst"
    if ! run_bg timeout 20 "$POSTERN" check-config -c "$d/postern.toml" > "$d/check.log" 2>&1; then
        echo "run.sh: warning: postern check-config did not pass:" >&2; head -5 "$d/check.log" >&2
    fi
    [[ $(stat -c %d "$d") == $(stat -c %d /var/spool/postfix 2>/dev/null || stat -c %d "$d") ]] \
        || echo "run.sh: warning: $d is not on the file system of /var/spool/postfix (fsync costs differ)" >&2

    "$POSTERN" serve -c "$d/postern.toml" > "$d/serve.log" 2>&1 &
    PT_PID=$!
    local up=0
    for _ in $(seq 1 150); do   # up to 15 s
        kill -0 "$PT_PID" 2>/dev/null || break
        port_listening "$POSTERN_PORT" && { up=1; break; }
        sleep 0.1
    done
    if [[ $up != 1 ]]; then
        tail -20 "$d/serve.log" >&2
        PT_DIR=""   # keep the directory for a look
        die "postern did not listen on 127.0.0.1:$POSTERN_PORT (log: $d/serve.log)"
    fi
    settle
    measure postern "$scen" "$rep" "$PT_PID" "$POSTERN_PORT"

    # What the queue says (tolerant: the control socket may not exist yet), then stop.
    local listed=na json
    if run_bg timeout 30 "$POSTERN" queue list --json -c "$d/postern.toml" > "$d/queue.json" 2>/dev/null; then
        json=$(cat "$d/queue.json")
        listed=$("$PY" -c 'import json,sys; a=json.load(sys.stdin); print("%d/%d" % (len(a), sum(1 for m in a if m.get("held"))))' <<< "$json" 2>/dev/null || echo na)
    fi
    kill -TERM "$PT_PID" 2>/dev/null || true
    local stopped=0 t0=$SECONDS
    for _ in $(seq 1 300); do kill -0 "$PT_PID" 2>/dev/null || { stopped=1; break; }; sleep 0.1; done
    if [[ $stopped != 1 ]]; then
        echo "run.sh: warning: postern did not exit within 30 s of SIGTERM; killing it" >&2
        kill -KILL "$PT_PID" 2>/dev/null || true
    fi
    local rc=0; wait "$PT_PID" 2>/dev/null || rc=$?
    PT_PID=""
    [[ $rc == 0 ]] || { echo "run.sh: warning: postern serve exited with status $rc; log tail:" >&2; tail -5 "$d/serve.log" >&2; }

    # Messages on disk: with queue.hold = true every accepted message is a file in
    # var/spool/hold/ (README, "Spool format"). Only warn on a mismatch.
    local qdir=$d/var/spool/hold files
    files=$(find "$qdir" -type f 2>/dev/null | wc -l)
    result postern "$scen" "$rep" "$files" "spool_files=$files queue_list=$listed stop_s=$((SECONDS - t0)) serve_rc=$rc cert=$keytype"
    [[ $KEEP == 1 ]] && echo "kept $d"
    [[ $KEEP == 1 ]] || rm -rf "$d"
    PT_DIR=""
}

ptver=na
[[ $DO_PT == 1 ]] && ptver=$(timeout 5 "$POSTERN" --version 2>/dev/null | head -1 | tr ' ' '_' || true)
log "# bench/inbound/run.sh $(date -Is) host=$(hostname) nproc=$(nproc) kernel=$(uname -r)" \
    "postfix=$(postconf -h mail_version 2>/dev/null || echo na) postern=${ptver:-na}" \
    "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)" \
    "N=$N SIZE=$SIZE CONC=$CONC REPS=$REPS SCEN=${SCEN// /,} postfix=$DO_PF postern=$DO_PT" \
    "postern_port=$POSTERN_PORT postern_cert=$POSTERN_CERT mon_interval=$MON_INTERVAL settle=$SETTLE"

for rep in $(seq 1 "$REPS"); do
    for s in $SCEN; do
        if [[ $DO_PF == 1 ]]; then echo "=== rep $rep/$REPS $s postfix $(date +%T)"; run_postfix "$s" "$rep"; fi
        if [[ $DO_PT == 1 ]]; then echo "=== rep $rep/$REPS $s postern $(date +%T)"; run_postern "$s" "$rep"; fi
    done
done

echo
"$PY" "$HERE/summarize.py" "$OUT" || true
echo "raw results: $OUT"
if [[ $FAILED != 0 ]]; then echo "run.sh: some runs did not accept all $N messages" >&2; exit 1; fi
exit 0
