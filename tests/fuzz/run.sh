#!/bin/bash
# Run one fuzz target: tests/fuzz/run.sh TARGET SECONDS [--cpu] [--update-corpus] [-- LIBFUZZER_ARGS...]
#
# Builds the target first (clang, TCPEDU_FUZZ=ON, in build-fuzz/ beside the sources, or in
# $TCPEDU_FUZZ_BUILD_DIR), unless TCPEDU_FUZZ_NO_BUILD=1 (ctest: the binary is already built).
# Runs it for SECONDS on a fresh copy of tests/fuzz/corpus/TARGET/ with ASan and UBSan, at most 10 s
# per input and 2 GiB of memory, and prints libFuzzer's final figures:
#   TARGET: WALL s, CPU CPU-s, EXECS execs, EXEC/S exec/s, corpus UNITS inputs (SIZE), cov COV, ft FT, peak RSS MB
# and the same as a Markdown table row for docs/RELIABILITY.md. SECONDS is wall-clock time; with
# --cpu it is the fuzzer's own CPU time (user + system), so that a run shares a busy machine and
# still gets its full budget: the run is ended with SIGUSR1, libFuzzer's graceful stop (final
# figures, and LeakSanitizer's check at exit, as after -max_total_time). The repository's corpus is left
# as it is, unless --update-corpus: then what the run found that adds coverage is merged into it
# (libFuzzer -merge=1). A crash, leak or timeout: the input is kept in
# BUILD/fuzz-artifacts/TARGET/ and the script fails with libFuzzer's exit status.
#
# The long runs (20 CPU-minutes each, two at a time on two cores):
#   tests/fuzz/run.sh config 1200 --cpu & tests/fuzz/run.sh control 1200 --cpu; wait
set -euo pipefail

usage() {
        echo "usage: $0 TARGET SECONDS [--cpu] [--update-corpus] [-- LIBFUZZER_ARGS...]" >&2
        exit 64
}
[ $# -ge 2 ] || usage
target=$1
seconds=$2
shift 2
update=0
cpu=0
extra=()
while [ $# -gt 0 ]; do
        case $1 in
        --update-corpus) update=1 ;;
        --cpu) cpu=1 ;;
        --) shift; extra=("$@"); break ;;
        *) usage ;;
        esac
        shift
done
[[ $seconds =~ ^[0-9]+$ ]] || usage

src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/../.." && pwd)
build=${TCPEDU_FUZZ_BUILD_DIR:-$root/build-fuzz}
corpus=$src/corpus/$target
[ -d "$corpus" ] || { echo "$0: no target '$target' (no $corpus)" >&2; exit 64; }

if [ "${TCPEDU_FUZZ_NO_BUILD:-0}" != 1 ]; then
        # two runs started together must not build in the same directory at once
        mkdir -p "$build"
        exec 9>"$build/.fuzz-build.lock"
        flock 9
        if [ ! -f "$build/CMakeCache.txt" ]; then
                CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTCPEDU_FUZZ=ON >/dev/null
        fi
        cmake --build "$build" -j"$(nproc)" --target "fuzz-$target" >/dev/null
        exec 9>&-
fi
binary=$build/tests/fuzz/fuzz-$target
[ -x "$binary" ] || { echo "$0: $binary is not built" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tcpedu-fuzz-$target.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -r "$corpus" "$work/corpus"
artifacts=$build/fuzz-artifacts/$target
mkdir -p "$artifacts"

symbolizer=$(command -v llvm-symbolizer || ls /usr/lib/llvm-*/bin/llvm-symbolizer 2>/dev/null | tail -n 1 || true)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1${symbolizer:+:external_symbolizer_path=$symbolizer}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The targets with a daemon in-process keep state between inputs (connections, their lingering
# 4-tuples, the journal queue), so the count of allocations after an input rarely matches the
# count before it, and libFuzzer would run a full leak check after nearly every input (a tenth of
# the speed). Leaks are still found: LeakSanitizer checks at exit, when the daemon's state is
# reachable from the harness and anything that is not is a leak.
defaults=()
case $target in
control | plugin-api | servers) defaults=(-detect_leaks=0) ;;
esac

# The fuzzer's CPU time so far (user + system, all its threads), in clock ticks.
cpu_ticks() {
        local stat
        stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
        set -- ${stat##*) }
        echo $((${12} + ${13}))
}
# CPU time of the children waited for so far, in milliseconds, into $children_ms ("times" prints
# it on its second line; in this shell, not a subshell, whose children are not these).
children_cpu() {
        times >"$work/times"
        children_ms=$(tail -n 1 "$work/times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60000 + a[2] * 1000 }
                print int(n) }')
}

wall_limit=$seconds
[ $cpu = 1 ] && wall_limit=$((seconds * 4)) # a bound, in case the machine is busier than that
echo "fuzz-$target: $seconds s$([ $cpu = 1 ] && echo " of CPU time") on a copy of $corpus ($(ls "$corpus" | wc -l) seed inputs)"
status=0
children_cpu
before_ms=$children_ms
started=$(date +%s)
"$binary" -max_total_time="$wall_limit" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${defaults[@]}" "${extra[@]}" "$work/corpus" >"$work/log" 2>&1 &
fuzzer=$!
if [ $cpu = 1 ]; then
        budget=$((seconds * $(getconf CLK_TCK)))
        while ticks=$(cpu_ticks $fuzzer); do
                if [ "$ticks" -ge "$budget" ]; then
                        kill -USR1 $fuzzer 2>/dev/null || true
                        break
                fi
                sleep 1
        done
fi
wait $fuzzer || status=$?
wall=$(($(date +%s) - started))
children_cpu
cpu_s=$(((children_ms - before_ms) / 1000))

# The last status line ("#N DONE cov: C ft: F corp: U/Sb ... exec/s: E") and the final stats.
done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$work/log" | tail -n 1 || true)
field() { sed -nE "s/.*[[:space:]]$1: ([^ ]+).*/\1/p" <<<"$done_line"; }
execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$work/log")
rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$work/log")
rss=$(sed -nE 's/^stat::peak_rss_mb: *([0-9]+)/\1/p' "$work/log")
cov=$(field cov)
ft=$(field ft)
corp=$(field corp)
units=${corp%%/*}
size=${corp#*/}

if [ $status -ne 0 ]; then
        # what went wrong: the sanitizer's or the check's report, and where the input is
        grep -nE '^==[0-9]+==ERROR|check failed|runtime error|SUMMARY:|^artifact_prefix|Test unit written|ALARM|libFuzzer: ' "$work/log" |
                head -n 20 || true
        echo "--- last lines of the log:"
        tail -n 60 "$work/log"
        echo "fuzz-$target: FAILED (exit $status); the input is in $artifacts/"
        exit $status
fi
echo "fuzz-$target: $wall s, $cpu_s CPU-s, ${execs:-?} execs, ${rate:-?} exec/s, corpus ${units:-?} inputs (${size:-?}), cov ${cov:-?}, ft ${ft:-?}, peak RSS ${rss:-?} MB"
echo "| $target | $wall | $cpu_s | ${rate:-?} | ${execs:-?} | ${units:-?} (${size:-?}) | ${cov:-?} | ${ft:-?} | ${rss:-?} |"

if [ $update = 1 ]; then
        before=$(ls "$corpus" | wc -l)
        "$binary" -merge=1 -timeout=10 -rss_limit_mb=2048 "$corpus" "$work/corpus" >"$work/merge.log" 2>&1 ||
                { tail -n 20 "$work/merge.log"; exit 1; }
        echo "fuzz-$target: corpus $corpus: $before -> $(ls "$corpus" | wc -l) inputs"
fi
