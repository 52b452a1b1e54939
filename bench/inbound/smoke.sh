#!/bin/bash
# bench/inbound/smoke.sh - quick check that the inbound benchmark harness works against Postern.
#
# usage: bench/inbound/smoke.sh          (from anywhere; called by `make test`)
#
# Runs bench/inbound/run.sh --postern-only with N=200 messages, 1 repetition, both scenarios
# (plain and STARTTLS), no settling pause; results and Postern's run directories go to a
# temporary directory removed afterwards (bench/results is not touched); the whole run is
# bounded by SMOKE_TIMEOUT seconds (default 50).  No Postfix, no root needed (Postern uses the
# certificate `postern init` made).  Prints one line
#   SMOKE PASS: ...   or   SMOKE FAIL: ...
# and exits non-zero unless every scenario had all messages accepted.
# env: POSTERN (build/postern)  POSTERN_PORT (2625)  SMOKE_N (200)  SMOKE_TIMEOUT (50)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SMOKE_N=${SMOKE_N:-200} SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-50}
[[ $SMOKE_N =~ ^[0-9]+$ && $SMOKE_N -ge 1 && $SMOKE_N -le 10000 ]] || { echo "SMOKE FAIL: SMOKE_N 1..10000"; exit 2; }
[[ $SMOKE_TIMEOUT =~ ^[0-9]+$ && $SMOKE_TIMEOUT -ge 10 && $SMOKE_TIMEOUT -le 600 ]] || { echo "SMOKE FAIL: SMOKE_TIMEOUT 10..600"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
set +e
# timeout sends SIGTERM to run.sh, whose EXIT trap stops the Postern it started.
N=$SMOKE_N SCEN="plain tls" SETTLE=0 INODE_SETTLE=0 TIME_LIMIT=30 POSTERN_CERT=init RESULTS=$tmp BENCH_TMP=$tmp MON_INTERVAL=0.2 \
    timeout -k 5 "$SMOKE_TIMEOUT" "$HERE/run.sh" 1 --postern-only > "$tmp/out.log" 2>&1
rc=$?
set -e
secs=$((SECONDS - t0))
summary=$(grep -h '^RESULT inbound' "$tmp"/inbound-*.txt 2>/dev/null |
    awk '{for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          printf "%s%s %s/%s accepted %s msgs/s stored=%s", (NR > 1 ? ", " : ""), v["scenario"], v["ok"], v["n"], v["msgs_per_s"], v["stored"]}' || true)
runs=$(cat "$tmp"/inbound-*.txt 2>/dev/null | grep -c '^RESULT inbound' || true)
if [[ $rc == 0 && $runs == 2 ]]; then
    echo "SMOKE PASS: bench/inbound harness vs Postern, N=$SMOKE_N: $summary (${secs}s)"
    exit 0
fi
echo "--- run.sh output (last 25 lines):"
tail -25 "$tmp/out.log"
[[ $rc == 124 || $rc == 137 ]] && summary="timed out after ${SMOKE_TIMEOUT}s${summary:+; $summary}"
echo "SMOKE FAIL: bench/inbound harness vs Postern, N=$SMOKE_N: run.sh exit $rc, $runs of 2 runs recorded${summary:+: $summary} (${secs}s)"
exit 1
