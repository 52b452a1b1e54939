# shellcheck shell=bash
# bench/lib.sh - the set-up shared by bench/inbound/run.sh, bench/relay/run.sh and bench/all.sh.
# Sourced, not run.  The caller sets HERE (its own directory) and ROOT (the repository root)
# first, and `set -euo pipefail`.  Nothing here starts anything by itself.
#
# What it provides:
#   bench_args "$@"     [REPS] [--postfix-only | --postern-only] -> REPS DO_PF DO_PT
#   bench_env           the common environment knobs and their defaults (N SIZE CONC SCEN
#                       POSTERN POSTERN_PORT POSTERN_CERT RESULTS BENCH_TMP SETTLE KEEP)
#   bench_check         bounds of those knobs (every loop stays bounded)
#   bench_out KIND      mkdir RESULTS; OUT=RESULTS/KIND-DATE.txt; compile the shared C tools
#   cleanup             (installed as the EXIT trap) stops only what the script started:
#                       the process group of run_bg, the monitor, Postern, the sink, Postfix
#   run_bg CMD...       run CMD in its own process group and wait for it
#   log / kv / settle / port_listening / nlines
#   pf_start MODE       the system Postfix through the shared postfix-relay.sh: stop,
#                       configure --mode MODE --in-tls may --out-tls may --cert ecdsa, purge,
#                       (relay: drop the client TLS session cache), start, settle
#   pf_stop             stop and purge Postfix
#   pt_setup PREFIX WRITER warn|strict
#                       fresh `postern init` directory PT_DIR=BENCH_TMP/PREFIX.XXXXXX, the
#                       certificate (PT_CERT/PT_KEY, relative to PT_DIR), WRITER DIR CERT KEY
#                       writes postern.toml, then `postern check-config` (warn: print and go
#                       on; strict: die) and a check that PT_DIR shares the spool's file system
#   pt_serve            `postern serve` in the background (PT_PID), wait for the port, settle
#   pt_stop             SIGTERM, at most 30 s, then SIGKILL -> PT_RC, PT_STOP_S
#   write_hold_config DIR CERT KEY
#                       Postern's configuration for the inbound (hold) benchmark
#   bench_reps          for each repetition, each scenario: run_postfix, then run_postern

SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
PY=/usr/bin/python3
PF=$SHARED/postfix-relay.sh
SINK=$SHARED/sink.sh
MPID=/var/spool/postfix/pid/master.pid
PFLOG=/var/log/postfix-bench.log
PF_PORT=2525   # fixed by postfix-relay.sh's default --listen
BENCH_ME=${BENCH_ME:-run.sh}

die() { echo "$BENCH_ME: $*" >&2; exit 2; }

bench_args() {
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
}

bench_env() {
    N=${N:-10000} SIZE=${SIZE:-5120} CONC=${CONC:-20} SCEN=${SCEN:-plain tls}
    POSTERN=${POSTERN:-$ROOT/build/postern} POSTERN_PORT=${POSTERN_PORT:-2625}
    POSTERN_CERT=${POSTERN_CERT:-bench} RESULTS=${RESULTS:-$ROOT/bench/results}
    BENCH_TMP=${BENCH_TMP:-/var/tmp} SETTLE=${SETTLE:-3} KEEP=${KEEP:-0}
    INODE_SETTLE=${INODE_SETTLE:-32}
}

bench_check() {
    [[ $REPS =~ ^[0-9]+$ && $REPS -ge 1 && $REPS -le 20 ]] || die "REPS 1..20"
    [[ $N =~ ^[0-9]+$ && $N -ge 1 && $N -le 1000000 ]] || die "N 1..1000000"
    [[ $SIZE =~ ^[0-9]+$ && $CONC =~ ^[0-9]+$ && $CONC -ge 1 && $CONC -le 256 ]] || die "bad SIZE/CONC"
    [[ $SETTLE =~ ^[0-9]+$ && $SETTLE -le 60 ]] || die "SETTLE 0..60"
    [[ $INODE_SETTLE =~ ^[0-9]+$ && $INODE_SETTLE -le 120 ]] || die "INODE_SETTLE 0..120"
    [[ $POSTERN_CERT =~ ^(bench|init)$ ]] || die "POSTERN_CERT bench|init"
    local s
    for s in $SCEN; do [[ $s =~ ^(plain|tls)$ ]] || die "SCEN: plain and/or tls, not $s"; done
}

bench_out() { # KIND
    mkdir -p "$RESULTS"
    OUT=$RESULTS/$1-$(date +%Y%m%d-%H%M%S).txt
    "$SHARED/tools/build.sh"   # compiles tools/smtpload into $BENCH_BIN (load.sh does it too)
}

# --- cleanup: only what this script started ----------------------------------------
PT_PID="" MON_PID="" BG_PID="" PT_DIR="" PF_USED=0 SINK_USED=0 FAILED=0
cleanup() {
    [[ -n $BG_PID ]] && kill -TERM -- "-$BG_PID" 2>/dev/null || true
    if [[ -n $BG_PID ]]; then   # e.g. e2e.sh's EXIT trap stops its sink; give it a moment
        for _ in $(seq 1 50); do kill -0 -- "-$BG_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$BG_PID" 2>/dev/null || true
    fi
    [[ -n $MON_PID ]] && kill "$MON_PID" 2>/dev/null || true
    if [[ -n $PT_PID ]] && kill -0 "$PT_PID" 2>/dev/null; then
        kill -TERM "$PT_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$PT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PT_PID" 2>/dev/null || true
    fi
    [[ $SINK_USED == 1 ]] && "$SINK" stop "${SINK_PORT:-2526}" >/dev/null 2>&1 || true
    [[ -n $PT_DIR && $KEEP != 1 ]] && rm_run_dir "$PT_DIR"
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
# settle: sync, SETTLE seconds, and at least INODE_SETTLE seconds since the last bulk deletion
# (bulk_deleted: a purged Postfix queue, a removed run directory). ext4 without a journal, as
# on the reference machine, skips inodes freed in the last 60 s (360 s while their inode table
# block is still dirty: fs/ext4/ialloc.c recently_deleted) when it allocates one, looking each
# up again, in the block groups where it looks for a free inode: right after thousands of
# files were deleted nearby, every file created costs far more CPU (perf:
# recently_deleted/find_inode_bit under openat: up to a quarter of the server's CPU, 42% in a
# profile run right after another run's clean-up). Without the wait, whichever server runs
# right after the other's clean-up pays for it. INODE_SETTLE (32 s) is shorter than that
# window (see the README, *Benchmark hygiene*: 2026-11-30, Postern's plaintext rate and CPU
# per message 70 s after a deletion matched the table's, measured with the 32 s wait).
DELETED_MARK=${TMPDIR:-/tmp}/postern-bench.deleted
bulk_deleted() { touch "$DELETED_MARK"; }
rm_run_dir() { rm -rf "$1"; bulk_deleted; }
settle() {
    sync; sleep "$SETTLE"
    if [[ -f $DELETED_MARK && ${INODE_SETTLE:-0} -gt 0 ]]; then
        local age=$(( $(date +%s) - $(stat -c %Y "$DELETED_MARK") ))
        if (( age >= 0 && age < INODE_SETTLE )); then sleep $(( INODE_SETTLE - age )); fi
    fi
}
port_listening() { [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]; }
nlines() { if [[ -f $1 ]]; then wc -l < "$1"; else echo 0; fi; }

# --- Postfix (the shared postfix-relay.sh) -------------------------------------------
pf_start() { # MODE (hold | relay)
    port_listening "$PF_PORT" && ! "$PF" masterpid >/dev/null 2>&1 && die "127.0.0.1:$PF_PORT is in use by something else"
    PF_USED=1
    "$PF" stop >/dev/null
    "$PF" configure --mode "$1" --in-tls may --out-tls may --cert ecdsa >/dev/null
    "$PF" purge >/dev/null
    bulk_deleted
    # relay: no TLS sessions carried over between runs (as run-postfix-baseline.sh)
    [[ $1 == relay ]] && rm -f /var/lib/postfix/smtp_scache.db
    "$PF" start >/dev/null
    settle
}

pf_stop() {
    "$PF" stop >/dev/null
    "$PF" purge >/dev/null
    bulk_deleted
}

# --- Postern -------------------------------------------------------------------------
pt_setup() { # PREFIX WRITER warn|strict
    local prefix=$1 writer=$2 check=$3 d
    port_listening "$POSTERN_PORT" && die "127.0.0.1:$POSTERN_PORT is already in use"
    d=$(mktemp -d "$BENCH_TMP/$prefix.XXXXXX"); PT_DIR=$d
    if ! run_bg timeout 60 "$POSTERN" init "$d" > "$d.init.log" 2>&1; then
        cat "$d.init.log" >&2; rm -f "$d.init.log"; PT_DIR=""; die "postern init failed (kept $d)"
    fi
    mv "$d.init.log" "$d/init.log"   # kept outside $d until init ran: $d must be empty for init
    PT_CERT=var/tls/cert.pem PT_KEY=var/tls/key.pem
    if [[ $POSTERN_CERT == bench ]]; then   # the ECDSA P-256 certificate Postfix (and the sink) use
        CERT_DIR=${CERT_DIR:-/etc/bench-certs} "$SHARED/tools/mkcerts.sh" >/dev/null
        cp "${CERT_DIR:-/etc/bench-certs}/ecdsa.crt" "$d/var/tls/bench-ecdsa.crt"
        cp "${CERT_DIR:-/etc/bench-certs}/ecdsa.key" "$d/var/tls/bench-ecdsa.key"
        PT_CERT=var/tls/bench-ecdsa.crt PT_KEY=var/tls/bench-ecdsa.key
    fi
    "$writer" "$d" "$PT_CERT" "$PT_KEY"
    mkdir -p "$d/var/spool"
    if ! run_bg timeout 20 "$POSTERN" check-config -c "$d/postern.toml" > "$d/check.log" 2>&1; then
        if [[ $check == strict ]]; then
            cat "$d/check.log" >&2; PT_DIR=""; die "postern check-config failed (kept $d)"
        fi
        echo "$BENCH_ME: warning: postern check-config did not pass:" >&2; head -5 "$d/check.log" >&2
    fi
    [[ $(stat -c %d "$d") == $(stat -c %d /var/spool/postfix 2>/dev/null || stat -c %d "$d") ]] \
        || echo "$BENCH_ME: warning: $d is not on the file system of /var/spool/postfix (fsync costs differ)" >&2
}

pt_serve() {
    local d=$PT_DIR
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
}

pt_stop() {
    kill -TERM "$PT_PID" 2>/dev/null || true
    local stopped=0 t0=$SECONDS
    for _ in $(seq 1 300); do kill -0 "$PT_PID" 2>/dev/null || { stopped=1; break; }; sleep 0.1; done
    if [[ $stopped != 1 ]]; then
        echo "$BENCH_ME: warning: postern did not exit within 30 s of SIGTERM; killing it" >&2
        kill -KILL "$PT_PID" 2>/dev/null || true
    fi
    PT_RC=0; wait "$PT_PID" 2>/dev/null || PT_RC=$?
    PT_PID=""
    PT_STOP_S=$((SECONDS - t0))
    [[ $PT_RC == 0 ]] || { echo "$BENCH_ME: warning: postern serve exited with status $PT_RC; log tail:" >&2; tail -5 "$PT_DIR/serve.log" >&2; }
}

# pt_config_head WHAT: the start of a bench postern.toml (hostname, listener, spool, DNS guard)
# for WHAT ("the inbound benchmark", ...).  Everything not written keeps its documented default.
# POSTERN_THREADS sets server.threads (default 0: one session thread per CPU), POSTERN_SYNC
# spool.sync (default "filesystem").
pt_config_head() {
    cat <<EOF
# written by bench/ (bench/lib.sh) for $1
hostname = "postern.bench.test"

[server]
listen = ["127.0.0.1:$POSTERN_PORT"]
max_connections = 1000
max_connections_per_ip = 1000      # all load comes from 127.0.0.1
allow_root = true                  # the harness runs as root, in throw-away directories
threads = ${POSTERN_THREADS:-0}                        # session threads (POSTERN_THREADS; 0 = one per CPU)

[spool]
dir = "var/spool"
sync = "${POSTERN_SYNC:-filesystem}"                # POSTERN_SYNC: filesystem (syncfs, the default) or file (fsync per file)

[dns]
servers = ["127.0.0.1:5353"]       # guard: any lookup stays on loopback (nothing should resolve)
EOF
}

# Postern's configuration for the inbound (hold) benchmark.
write_hold_config() { # DIR CERT KEY
    { pt_config_head "the inbound benchmark"; cat <<EOF

[tls]
cert_file = "$2"
key_file = "$3"

[queue]
hold = true                        # spool durably, never deliver (= Postfix hold mode)

[[domain]]
name = "dst.bench.test"            # the load's recipient domain
maildir = "var/mail/dst"
EOF
    } > "$1/postern.toml"
    mkdir -p "$1/var/mail/dst"
}

bench_reps() {
    local rep s
    for rep in $(seq 1 "$REPS"); do
        for s in $SCEN; do
            if [[ $DO_PF == 1 ]]; then echo "=== rep $rep/$REPS $s postfix $(date +%T)"; run_postfix "$s" "$rep"; fi
            if [[ $DO_PT == 1 ]]; then echo "=== rep $rep/$REPS $s postern $(date +%T)"; run_postern "$s" "$rep"; fi
        done
    done
}
