#!/bin/bash
# bench/all.sh - issue 6's `make bench`: every figure, Postern and Postfix side by side, in one run,
# and one table of them with the ratios and the targets.
#
# usage: bench/all.sh                       (REPS=3, N=10000; about 35 min on the reference machine)
#        QUICK=1 bench/all.sh               (REPS=1, N=1000, 10 s latency windows: a few minutes)
#        REPS=3 N=5000 bench/all.sh         (the README's reference run)
#
# Each repetition, in this order (every step pairs Postfix and Postern back to back):
#   1. fsync ceiling: the shared tools/fsyncbench, 8 threads, 5 KB write+fsync+rename, FSYNC_SECS
#      seconds, in a fresh directory under BENCH_TMP (the file system of both spools); then the
#      same with the directory fsynced too (-d, what Postern does per message; for information).
#      The first starts CEILING_SETTLE (120) seconds after the last bulk deletion, not
#      INODE_SETTLE: 40 s after deleting 12,000-38,000 files the same tool measured 1,590-2,232
#      ops/s, 70-120 s after none 5,262-8,300 (README, Performance), so with 32 s the ceiling
#      depended on what the previous repetition had deleted.
#   2. bench/inbound/run.sh 1      inbound accept rate, plain and STARTTLS (both servers).
#   3. latency: bench/latency/run.py against Postfix (hold mode, the shared postfix-relay.sh) and
#      against Postern (the inbound benchmark's hold configuration), each at LAT_FRACTION (0.5) of
#      the plaintext accept rate that server reached in step 2 of the same repetition, over
#      LAT_CONC sessions, LAT_WARMUP + LAT_DURATION seconds; the servers' CPU over the window too.
#   4. bench/relay/run.sh 1        end-to-end relay rate, plain and TLS on both legs.
#   5. bench/relay/sink_ceiling.sh 1   the relay's STARTTLS sink alone, fed over CONC reused TLS
#      connections: its rate and CPU per message (what the relay-with-TLS target leaves the
#      relay of the 2 cores; the table's feasibility rows).
#   6. bench/idle/run.py --connections IDLE_CONNS   (Postern only: RSS while holding them, and a
#      new client's greeting and whole transaction meanwhile).
# Then bench/table.py prints the table (figure | Postern | Postfix | ratio | target | met?) and
# writes it to bench/results/summary-DATE.md.  Raw results: bench/results/all-DATE/ (the
# inbound-*/relay-* files of the two harnesses, one per repetition, and all.txt with the fsync,
# latency, sink and idle RESULT lines and a header describing the run; all.log is the whole output).
#
# The binary: POSTERN (default build/postern) is copied to a temporary file first, so a rebuild
# during the run does not change what is measured; its sha256 goes into the header.
#
# env: QUICK (0|1)  REPS (3; QUICK 1)  N (10000; QUICK 1000)  POSTERN (build/postern)
#      LAT_FRACTION (0.5)  LAT_DURATION (20 s; QUICK 10)  LAT_WARMUP (2 s)  LAT_CONC (20)
#      IDLE_CONNS (10000)  FSYNC_SECS (5)  FSYNC_THREADS (8)  BENCH_TMP (/var/tmp)
#      SHARED_BENCH  SETTLE (3)  INODE_SETTLE (32: seconds since the last bulk deletion before a
#      measured run, bench/lib.sh settle)  CEILING_SETTLE (120: the same before the fsync ceiling)  and the knobs of bench/inbound/run.sh and bench/relay/run.sh.
# Needs root (Postfix, the STARTTLS sink, and raising the descriptor limit for the idle test).
# Loopback only.  Every step is bounded in count and time.  Exit status 0 only if every step
# ran and every run had all its messages accepted (and, in the relay, delivered).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BENCH_ME=all.sh
. "$HERE/lib.sh"

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    REPS=${REPS:-1} N=${N:-1000} LAT_DURATION=${LAT_DURATION:-10}
else
    REPS=${REPS:-3} N=${N:-10000} LAT_DURATION=${LAT_DURATION:-20}
fi
LAT_FRACTION=${LAT_FRACTION:-0.5} LAT_WARMUP=${LAT_WARMUP:-2} LAT_CONC=${LAT_CONC:-20}
IDLE_CONNS=${IDLE_CONNS:-10000} FSYNC_SECS=${FSYNC_SECS:-5} FSYNC_THREADS=${FSYNC_THREADS:-8}
CEILING_SETTLE=${CEILING_SETTLE:-120}
[[ $CEILING_SETTLE =~ ^[0-9]+$ && $CEILING_SETTLE -le 600 ]] || die "CEILING_SETTLE 0..600"
export N
SCEN="plain tls" DO_PF=1 DO_PT=1
bench_env
bench_check
[[ $LAT_DURATION =~ ^[0-9]+$ && $LAT_DURATION -ge 1 && $LAT_DURATION -le 600 ]] || die "LAT_DURATION 1..600"
[[ $LAT_WARMUP =~ ^[0-9]+$ && $LAT_WARMUP -le 60 ]] || die "LAT_WARMUP 0..60"
[[ $LAT_CONC =~ ^[0-9]+$ && $LAT_CONC -ge 1 && $LAT_CONC -le 256 ]] || die "LAT_CONC 1..256"
[[ $LAT_FRACTION =~ ^(0?\.[0-9]+|1(\.0*)?)$ ]] || die "LAT_FRACTION 0..1"
[[ $IDLE_CONNS =~ ^[0-9]+$ && $IDLE_CONNS -ge 1 && $IDLE_CONNS -le 50000 ]] || die "IDLE_CONNS 1..50000"
[[ $FSYNC_SECS =~ ^[0-9]+$ && $FSYNC_SECS -ge 1 && $FSYNC_SECS -le 60 ]] || die "FSYNC_SECS 1..60"
[[ $FSYNC_THREADS =~ ^[0-9]+$ && $FSYNC_THREADS -ge 1 && $FSYNC_THREADS -le 64 ]] || die "FSYNC_THREADS 1..64"
[[ $(id -u) == 0 ]] || die "needs root: Postfix and the shared STARTTLS sink (see bench/README.md)"
[[ -x $POSTERN ]] || die "$POSTERN not found: run 'make build' first"
[[ -x $SHARED/load.sh && -x $SHARED/postfix-relay.sh && -f $SHARED/tools/fsyncbench.c ]] \
    || die "shared harness not found at $SHARED (set SHARED_BENCH)"
for p in "$PF_PORT" "$POSTERN_PORT" 2526 2527 2725; do
    [[ $p == "$PF_PORT" ]] && "$PF" masterpid >/dev/null 2>&1 && continue   # a leftover bench Postfix: restarted anyway
    port_listening "$p" && die "port $p is already in use: another benchmark running?"
done

STAMP=$(date +%Y%m%d-%H%M%S)
RUNDIR=$RESULTS/all-$STAMP
SUMMARY=$RESULTS/summary-$STAMP.md
mkdir -p "$RUNDIR"
OUT=$RUNDIR/all.txt
exec > >(tee -a "$RUNDIR/all.log") 2>&1
"$SHARED/tools/build.sh"
BENCH_BIN=${BENCH_BIN:-${TMPDIR:-/tmp}/postern-bench-bin}

# The binary under test, frozen for the whole run.
BINDIR=$(mktemp -d /tmp/postern-all-bench.XXXXXX)
cp "$POSTERN" "$BINDIR/postern"
SRC_BIN=$POSTERN
POSTERN=$BINDIR/postern
export POSTERN
# all.sh's own clean-up (lib.sh's, plus the frozen binary).  The harnesses use Postfix and the
# sink: stop and purge them on any exit.
PF_USED=1 SINK_USED=1
trap 'cleanup; rm -rf "$BINDIR"' EXIT

# machine_state WHEN: load average, CPU and I/O pressure (PSI "some", avg60) and the processes using
# more than 20% of a core over one second (other people's work shows up here).
machine_state() {
    local psi_cpu psi_io busy
    psi_cpu=$(awk '/^some/{sub("avg60=","",$3); print $3}' /proc/pressure/cpu 2>/dev/null || true)
    psi_io=$(awk '/^some/{sub("avg60=","",$3); print $3}' /proc/pressure/io 2>/dev/null || true)
    busy=$(top -b -n2 -d1 2>/dev/null | awk '/^top -/{f++} f==2 && $1 ~ /^[0-9]+$/ && $9+0 > 20 {printf "%s%s:%d%%", (n++ ? "," : ""), $12, $9}' || true)
    echo "loadavg_$1=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,) psi_cpu_some60_$1=${psi_cpu:-na} psi_io_some60_$1=${psi_io:-na} busy_procs_$1=${busy:-none}"
}

mem_gib=$(awk '/MemTotal/{printf "%.0f", $2/1048576}' /proc/meminfo)
cpu_model=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo | tr ' ' '_')
fs=$(df -T "$BENCH_TMP" | awk 'NR==2{print $2 ":" $1}')
log "# bench/all.sh $(date -Is) host=$(hostname) nproc=$(nproc) mem_gib=$mem_gib cpu=$cpu_model kernel=$(uname -r)" \
    "postfix=$(postconf -d -h mail_version 2>/dev/null || echo na) openssl=$(openssl version | cut -d' ' -f2)" \
    "postern=$(timeout 5 "$POSTERN" --version 2>/dev/null | head -1 | tr ' ' '_' || echo na)" \
    "postern_bin=$SRC_BIN postern_sha256=$(sha256sum "$POSTERN" | cut -c1-12) postern_mtime=$(date -u -r "$SRC_BIN" +%Y-%m-%dT%H:%M:%SZ)" \
    "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo +dirty-src)" \
    "quick=$QUICK inode_settle=${INODE_SETTLE:-32} ceiling_settle=$CEILING_SETTLE REPS=$REPS N=$N SIZE=$SIZE CONC=$CONC lat_fraction=$LAT_FRACTION lat_duration=$LAT_DURATION" \
    "lat_warmup=$LAT_WARMUP lat_conc=$LAT_CONC idle_conns=$IDLE_CONNS fsync_secs=$FSYNC_SECS fsync_threads=$FSYNC_THREADS" \
    "spool_fs=$fs $(machine_state start)"

STEP_FAILED=""
step_fail() { STEP_FAILED+=" $1"; echo "all.sh: step $1 failed (rc $2); going on" >&2; }

fsync_ceiling() { # REP
    local d flags line
    for flags in "" "-d"; do
        # The file creation it measures pays for recent deletions too (bench/lib.sh); the
        # ceiling itself waits longer (CEILING_SETTLE, above), the -d figure is for information.
        if [[ -z $flags ]]; then INODE_SETTLE=$CEILING_SETTLE settle; else settle; fi
        d=$(mktemp -d "$BENCH_TMP/fsyncbench.XXXXXX")
        # shellcheck disable=SC2086  # flags is empty or one word
        line=$(timeout $((FSYNC_SECS + 60)) "$BENCH_BIN/fsyncbench" -t "$FSYNC_THREADS" -s "$SIZE" -T "$FSYNC_SECS" $flags "$d" || true)
        rm_run_dir "$d"
        if [[ $line == RESULT* ]]; then log "$line rep=$1 dir=$BENCH_TMP"; else step_fail "fsync$flags-rep$1" 1; fi
        sleep 1
    done
}

# newest_rate KIND SERVER: msgs_per_s of the plain run in the newest KIND-*.txt of this run.
newest_rate() {
    local f; f=$(ls -1 "$RUNDIR"/"$1"-*.txt 2>/dev/null | tail -1)
    [[ -n $f ]] || return 0
    grep "^RESULT $1 server=$2 scenario=plain " "$f" | tail -1 | sed -n 's/.* msgs_per_s=\([0-9.]*\).*/\1/p'
}

# latency SERVER REP PEAK PORT PID: one bench/latency/run.py run, its RESULT line into all.txt.
latency() {
    local server=$1 rep=$2 peak=$3 port=$4 pid=$5 lo rc=0
    lo=$(mktemp)
    run_bg timeout $((LAT_WARMUP + LAT_DURATION + 90)) "$PY" "$HERE/latency/run.py" 127.0.0.1 "$port" \
        --rate-fraction "$LAT_FRACTION" --peak "$peak" --conc "$LAT_CONC" --size "$SIZE" \
        --duration "$LAT_DURATION" --warmup "$LAT_WARMUP" --server-pid "$pid" --label "$server" > "$lo" 2>&1 || rc=$?
    grep -v '^RESULT' "$lo" || true
    local line; line=$(grep '^RESULT latency' "$lo" | tail -1 || true)
    rm -f "$lo"
    if [[ -n $line ]]; then log "$line server=$server rep=$rep peak_per_s=$peak"; fi
    [[ $rc == 0 ]] || step_fail "latency-$server-rep$rep" "$rc"
}

latency_pair() { # REP
    local rep=$1 pfpeak ptpeak
    pfpeak=$(newest_rate inbound postfix) ptpeak=$(newest_rate inbound postern)
    echo "=== rep $rep/$REPS latency postfix at $LAT_FRACTION x $pfpeak/s $(date +%T)"
    if [[ -n $pfpeak ]]; then
        pf_start hold
        latency postfix "$rep" "$pfpeak" "$PF_PORT" "$("$PF" masterpid)"
        pf_stop
    else
        step_fail "latency-postfix-rep$rep(no peak)" 1
    fi
    echo "=== rep $rep/$REPS latency postern at $LAT_FRACTION x $ptpeak/s $(date +%T)"
    if [[ -n $ptpeak ]]; then
        pt_setup postern-latency write_hold_config warn
        pt_serve
        latency postern "$rep" "$ptpeak" "$POSTERN_PORT" "$PT_PID"
        pt_stop
        [[ $KEEP == 1 ]] || rm_run_dir "$PT_DIR"
        PT_DIR=""
    else
        step_fail "latency-postern-rep$rep(no peak)" 1
    fi
}

idle() { # REP
    local lo rc=0 line
    lo=$(mktemp)
    echo "=== rep $1/$REPS idle: $IDLE_CONNS connections held by postern $(date +%T)"
    run_bg timeout 300 "$PY" "$HERE/idle/run.py" --postern "$POSTERN" --connections "$IDLE_CONNS" > "$lo" 2>&1 || rc=$?
    grep -v '^RESULT' "$lo" || true
    line=$(grep '^RESULT idle' "$lo" | tail -1 || true)
    rm -f "$lo"
    [[ -n $line ]] && log "$line rep=$1"
    [[ $rc == 0 && -n $line ]] || step_fail "idle-rep$1" "$rc"
}

t_start=$SECONDS
for rep in $(seq 1 "$REPS"); do
    echo "=== rep $rep/$REPS fsync ceiling ($FSYNC_THREADS threads, ${FSYNC_SECS}s) $(date +%T)"
    fsync_ceiling "$rep"
    rc=0; run_bg env RESULTS="$RUNDIR" "$HERE/inbound/run.sh" 1 || rc=$?
    [[ $rc == 0 ]] || step_fail "inbound-rep$rep" "$rc"
    latency_pair "$rep"
    rc=0; run_bg env RESULTS="$RUNDIR" "$HERE/relay/run.sh" 1 || rc=$?
    [[ $rc == 0 ]] || step_fail "relay-rep$rep" "$rc"
    echo "=== rep $rep/$REPS the relay's STARTTLS sink alone (bench/relay/sink_ceiling.sh) $(date +%T)"
    rc=0; run_bg env OUT="$OUT" REP_LABEL="$rep" "$HERE/relay/sink_ceiling.sh" 1 || rc=$?
    [[ $rc == 0 ]] || step_fail "sinkcap-rep$rep" "$rc"
    idle "$rep"
done
failed_list=${STEP_FAILED# }
log "# end $(date -Is) elapsed_s=$((SECONDS - t_start)) $(machine_state end) failed_steps=${failed_list// /,}"

echo
"$PY" "$HERE/table.py" "$RUNDIR" --command "${BENCH_COMMAND:-$([[ $QUICK == 1 ]] && echo "QUICK=1 ")bench/all.sh (REPS=$REPS N=$N)}" \
    | tee "$SUMMARY"
echo "table: $SUMMARY"
echo "raw results: $RUNDIR"
if [[ -n $STEP_FAILED ]]; then echo "all.sh: failed steps:$STEP_FAILED" >&2; exit 1; fi
exit 0
