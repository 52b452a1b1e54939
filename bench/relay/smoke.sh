#!/bin/bash
# bench/relay/smoke.sh - quick check that the end-to-end relay benchmark harness works against
# Postern.
#
# usage: bench/relay/smoke.sh          (from anywhere; needs root, see below)
#
# Runs bench/relay/run.sh --postern-only with N=200 messages, 1 repetition, both scenarios
# (plain, and STARTTLS on both legs), no settling pause; results and Postern's run directories
# go to a temporary directory removed afterwards (bench/results is not touched); the whole run
# is bounded by SMOKE_TIMEOUT seconds (default 40, plus up to 15 s for clean-up after a
# timeout).  Postern uses the certificate `postern init` made.  No Postfix relay is started,
# but root is needed: the tls scenario's sink is the shared STARTTLS front, a second Postfix
# instance (/etc/postfix-sink).  Prints one line
#   SMOKE PASS: ...   or   SMOKE FAIL: ...
# and exits non-zero unless every scenario had all messages accepted and delivered and
# Postern's queue ended empty.
# env: POSTERN (build/postern)  POSTERN_PORT (2625)  SMOKE_N (200)  SMOKE_TIMEOUT (40)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SMOKE_N=${SMOKE_N:-200} SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-40}
[[ $SMOKE_N =~ ^[0-9]+$ && $SMOKE_N -ge 1 && $SMOKE_N -le 10000 ]] || { echo "SMOKE FAIL: SMOKE_N 1..10000"; exit 2; }
[[ $SMOKE_TIMEOUT =~ ^[0-9]+$ && $SMOKE_TIMEOUT -ge 10 && $SMOKE_TIMEOUT -le 600 ]] || { echo "SMOKE FAIL: SMOKE_TIMEOUT 10..600"; exit 2; }
[[ $(id -u) == 0 ]] || { echo "SMOKE FAIL: bench/relay/smoke.sh needs root (the STARTTLS sink is a Postfix instance)"; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
set +e
# timeout sends SIGTERM to run.sh, whose EXIT trap stops the Postern, the load and the sink it
# started; -k gives that clean-up time before SIGKILL.
N=$SMOKE_N SCEN="plain tls" SETTLE=0 INODE_SETTLE=0 E2E_TIMEOUT=20 DRAIN_TIMEOUT=10 POSTERN_CERT=init RESULTS=$tmp BENCH_TMP=$tmp \
    timeout -k 15 "$SMOKE_TIMEOUT" "$HERE/run.sh" 1 --postern-only > "$tmp/out.log" 2>&1
rc=$?
set -e
secs=$((SECONDS - t0))
summary=$(grep -h '^RESULT relay' "$tmp"/relay-*.txt 2>/dev/null |
    awk '{for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          printf "%s%s %s/%s accepted %s/%s delivered %s msgs/s queue %s->%s sink_tls=%s",
                 (NR > 1 ? ", " : ""), v["scenario"], v["accepted"], v["n"], v["delivered"], v["n"],
                 v["deliver_per_s"], v["queue_after_e2e"], v["queue_left"], v["sink_tls_sessions"]}' || true)
runs=$(cat "$tmp"/relay-*.txt 2>/dev/null | grep -c '^RESULT relay' || true)
# the tls scenario must really have used TLS on both legs
tlsok=$(grep -h '^RESULT relay.* scenario=tls ' "$tmp"/relay-*.txt 2>/dev/null |
    awk '{for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
          print (v["log_tls_in"] == v["n"] && v["sink_tls_sessions"] > 0 && v["log_sent_tls"] > 0) ? "yes" : "no"}' || true)
if [[ $rc == 0 && $runs == 2 && $tlsok != yes ]]; then
    summary="tls scenario did not use TLS on both legs (inbound handshakes must be N, outbound > 0); $summary"
    rc=3
fi
if [[ $rc == 0 && $runs == 2 ]]; then
    echo "SMOKE PASS: bench/relay harness vs Postern, N=$SMOKE_N: $summary (${secs}s)"
    exit 0
fi
echo "--- run.sh output (last 25 lines):"
tail -25 "$tmp/out.log"
[[ $rc == 124 || $rc == 137 ]] && summary="timed out after ${SMOKE_TIMEOUT}s${summary:+; $summary}"
echo "SMOKE FAIL: bench/relay harness vs Postern, N=$SMOKE_N: run.sh exit $rc, $runs of 2 runs recorded${summary:+: $summary} (${secs}s)"
exit 1
