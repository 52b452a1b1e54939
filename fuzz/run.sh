#!/bin/bash
# fuzz/run.sh [SECONDS_PER_TARGET] - build build-fuzz/ (clang, libFuzzer, ASan + UBSan) and run
# every fuzz target for SECONDS_PER_TARGET seconds (default 60) with -max_total_time.
#   FUZZ_JOBS=N       targets run N at a time (default 1; the machine has 2 cores)
#   FUZZ_TARGETS="a b" only these targets (default: every fuzz/*.cpp but replay_main)
# Each target starts from fuzz/corpus/NAME and fuzz/regressions/NAME, read-only: new inputs go
# to build-fuzz/run/NAME/corpus, findings (crash-*, leak-*, timeout-*, oom-*) to
# build-fuzz/run/NAME/findings, the log to build-fuzz/run/NAME/log. Prints per target the
# executions, exec/s, coverage (cov/ft of libFuzzer's last line), corpus size and findings;
# exits 1 when any target found something (or did not run), 0 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
jobs=${FUZZ_JOBS:-1}
build=build-fuzz
if [ -z "${FUZZ_TARGETS:-}" ]; then
    FUZZ_TARGETS=$(for f in fuzz/*.cpp; do n=$(basename "$f" .cpp); [ "$n" = replay_main ] || echo "$n"; done)
fi

echo "fuzz/run.sh: building $build (clang, libFuzzer, ASan + UBSan), then ${secs}s per target" >&2
gen=""
command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
[ -f $build/CMakeCache.txt ] ||
    cmake -S . -B $build $gen -DPOSTERN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build $build -j 2 >/dev/null || cmake --build $build -j 1  # show the errors

symbolizer=/usr/lib/llvm-14/bin/llvm-symbolizer
[ -x $symbolizer ] && export ASAN_SYMBOLIZER_PATH=$symbolizer UBSAN_SYMBOLIZER_PATH=$symbolizer
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

run_one() {
    local t=$1 dir=$build/run/$1
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$dir/findings"
    local dict=()
    if [ -f "fuzz/$t.dict" ]; then dict=(-dict="fuzz/$t.dict")
    elif [ "${t#smtp_}" != "$t" ] || [ "$t" = address ] || [ "$t" = data_decoder ]; then dict=(-dict=fuzz/smtp.dict)
    fi
    local seeds=(fuzz/corpus/"$t")
    [ -d fuzz/regressions/"$t" ] && seeds+=(fuzz/regressions/"$t")
    echo "$build/fuzz/fuzz_$t -max_total_time=$secs ${dict[*]} $dir/corpus ${seeds[*]}" >"$dir/command"
    local rc=0
    "$build/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$dir/findings/" "${dict[@]}" "$dir/corpus" "${seeds[@]}" >"$dir/log" 2>&1 || rc=$?
    echo $rc >"$dir/rc"
}

for t in $FUZZ_TARGETS; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    run_one "$t" &
done
wait

status=0
printf '%-14s %12s %9s %6s %7s %8s %s\n' target executions exec/s cov ft corpus findings
for t in $FUZZ_TARGETS; do
    dir=$build/run/$t
    log=$dir/log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    findings=$(find "$dir/findings" -type f | wc -l)
    rc=$(cat "$dir/rc" 2>/dev/null || echo '?')
    note=$findings
    if [ "$findings" -gt 0 ] || [ "$rc" != 0 ]; then
        status=1
        note="$findings (exit $rc; see $log)"
    fi
    printf '%-14s %12s %9s %6s %7s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$note"
done
exit $status
