#!/bin/bash
# bench/tls/handshake_suites.sh - server CPU per full TLS 1.3 handshake for each TLS 1.3 cipher
# suite, with OpenSSL's own s_server and s_time (no Postern): does the suite (its hash: SHA-384
# or SHA-256, for the transcript and the key schedule) change what a handshake costs on this
# machine? Rounds alternate the suites. Certificate: the shared bench's ECDSA P-256 one.
# usage: bench/tls/handshake_suites.sh [ROUNDS]   env: PORT (4499), SECONDS_PER_RUN (4)
# Prints: RESULT handshake_suite round=R suite=S conns=N server_ms_per_handshake=X
# Loopback only; bounded in time (ROUNDS x 3 x SECONDS_PER_RUN).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${1:-3}
PORT=${PORT:-4499}
SECS=${SECONDS_PER_RUN:-4}
CERT_DIR=${CERT_DIR:-/etc/bench-certs}
[[ -f $CERT_DIR/ecdsa.crt ]] || CERT_DIR=$CERT_DIR "$HERE/../../../shared/bench/tools/mkcerts.sh" >/dev/null
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for round in $(seq "$ROUNDS"); do
    for suite in TLS_AES_256_GCM_SHA384 TLS_AES_128_GCM_SHA256 TLS_CHACHA20_POLY1305_SHA256; do
        openssl s_server -accept "127.0.0.1:$PORT" -cert "$CERT_DIR/ecdsa.crt" -key "$CERT_DIR/ecdsa.key" \
            -ciphersuites "$suite" -num_tickets 1 -quiet -naccept 1000000 >/dev/null 2>&1 &
        pid=$!
        sleep 0.5
        t0=$(cpu_ticks $pid)
        conns=$(timeout $((SECS + 20)) openssl s_time -connect "127.0.0.1:$PORT" -new -time "$SECS" 2>/dev/null |
            awk '/connections in/ {print $1; exit}')
        t1=$(cpu_ticks $pid)
        kill $pid
        wait $pid 2>/dev/null || true
        awk -v r="$round" -v s="$suite" -v c="${conns:-0}" -v d=$((t1 - t0)) -v hz="$hz" 'BEGIN {
            printf "RESULT handshake_suite round=%d suite=%s conns=%d server_ms_per_handshake=%.3f\n",
                   r, s, c, (c > 0 ? d / hz * 1000 / c : 0) }'
    done
done
