#!/bin/sh
# tests/torture/crash-100-tempfail.sh - `make torture`: as crash-100.sh, with 10% of recipients
# refused 451 and a slow sink, so deferred state files exist at every kill.
exec /usr/bin/python3 "$(dirname "$0")/crash.py" --iterations 100 --tempfail 0.1 --sink-delay 0.05 \
    --postern "${POSTERN:-build/postern}"
