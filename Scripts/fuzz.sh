#!/usr/bin/env bash
# make fuzz: builds Fuzz/ with libFuzzer and AddressSanitizer, then runs every fuzz target for
# FUZZ_SECONDS (default 120) from a copy of its committed seed corpus (Fuzz/Corpus/<target>).
# Prints `BENCH fuzz_<target>_execs N` and `BENCH fuzz_<target>_crashes N`, copies every
# crash, leak, timeout or out-of-memory input into Fuzz/Regressions/<target>/ (replayed by
# `make test` once committed), and exits non-zero if any target found one.
#
#   FUZZ_SECONDS=30 make fuzz                   # shorter runs
#   FUZZ_RUNS=1000000 FUZZ_SECONDS=600 make fuzz   # each target stops at 1M executions (or the time)
#   FUZZ_TARGETS="csv npy" make fuzz            # some targets only
#   FUZZ_BUILD=0 make fuzz                      # run the binary already built (e.g. a second lane)
#   TESSERA_FUZZ_TARGET=csv Fuzz/.build/release/tessera-fuzz crash-file   # replay one input
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
FUZZ_SECONDS=${FUZZ_SECONDS:-120}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-8192}
FUZZ_RUNS=${FUZZ_RUNS:--1}

# libFuzzer without its main: SwiftPM links every executable with its own entry point, which
# calls LLVMFuzzerRunDriver (Fuzz/Sources/tessera-fuzz/main.swift).
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")
fuzzer_lib="$toolchain/lib/swift/clang/lib/linux/libclang_rt.fuzzer_no_main-$(uname -m).a"
if [ ! -f "$fuzzer_lib" ]; then
    echo "fuzz: $fuzzer_lib not found; this toolchain has no libFuzzer" >&2
    exit 1
fi

binary=Fuzz/.build/release/tessera-fuzz
if [ "${FUZZ_BUILD:-1}" = 0 ] && [ -x "$binary" ]; then
    echo "fuzz: FUZZ_BUILD=0: running the $binary already built ($(date -r "$binary" '+%F %T'))"
else
    echo "fuzz: building Fuzz/ (release, -sanitize=address, libFuzzer coverage)"
    (cd Fuzz && "$SWIFT" build -c release \
        -Xswiftc -sanitize=address \
        -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
        -Xlinker "$fuzzer_lib" -Xlinker -lstdc++)
fi

targets=${FUZZ_TARGETS:-$(ls Fuzz/Corpus)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $targets; do
    if [ ! -d "Fuzz/Corpus/$target" ]; then
        echo "fuzz: no seed corpus Fuzz/Corpus/$target" >&2
        exit 1
    fi
    corpus="$work/$target/corpus"
    artifacts="$work/$target/artifacts"
    mkdir -p "$corpus" "$artifacts"
    cp "Fuzz/Corpus/$target"/* "$corpus/"
    log="$work/$target/log"
    echo "fuzz: $target for ${FUZZ_SECONDS}s$([ "$FUZZ_RUNS" -ge 0 ] && echo " or $FUZZ_RUNS executions")"
    status=0
    TESSERA_FUZZ_TARGET="$target" SWIFT_BACKTRACE=enable=no \
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
        "$binary" "$corpus" \
        -max_total_time="$FUZZ_SECONDS" -runs="$FUZZ_RUNS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
        -max_len="$FUZZ_MAX_LEN" -detect_leaks=1 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    # A slow unit is a report, not a failure: libFuzzer writes one whenever an input takes over
    # ten seconds of wall time, which a paused or starved process also produces. It is kept out
    # of the regressions; a real hang ends as a timeout- artifact (FUZZ_TIMEOUT).
    slow=$(find "$artifacts" -type f -name 'slow-unit-*' | wc -l)
    find "$artifacts" -type f -name 'slow-unit-*' -delete
    found=$(find "$artifacts" -type f | wc -l)
    if [ "$status" -ne 0 ] && [ "$found" -eq 0 ]; then found=1; fi
    echo "BENCH fuzz_${target}_execs ${execs:-0}"
    echo "BENCH fuzz_${target}_crashes $found"
    [ "$slow" -eq 0 ] || echo "fuzz: $target reported $slow slow unit(s) (over 10 s of wall time; not failures)"
    if [ "$found" -ne 0 ]; then
        failed+=("$target")
        mkdir -p "Fuzz/Regressions/$target"
        cp "$artifacts"/* "Fuzz/Regressions/$target/" 2>/dev/null || true
        echo "fuzz: $target failed (exit $status); its inputs are in Fuzz/Regressions/$target. The log ends:" >&2
        tail -40 "$log" >&2
    fi
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: crashes in: ${failed[*]}. Fix each in its module, keep the input in Fuzz/Regressions/ (make test replays it)." >&2
    exit 1
fi
echo "fuzz: no crash, leak or timeout"
