#!/bin/sh
# bench/hostile/run.sh - hostile clients and servers, the long version (issue 5, points 5 and 6).
# Usage: bench/hostile/run.sh [SECONDS] [SCENARIO...]   (POSTERN=path/to/postern)
# See bench/hostile/run.py; the figures are recorded in docs/reliability.md.
set -e
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
