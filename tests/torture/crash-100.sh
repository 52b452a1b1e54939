#!/bin/sh
# tests/torture/crash-100.sh - `make torture`: 100 kill -9/restart cycles under inbound and
# outbound load; exits 1 if any acknowledged message is lost (tests/torture/crash.py).
exec /usr/bin/python3 "$(dirname "$0")/crash.py" --iterations 100 --postern "${POSTERN:-build/postern}"
