#!/bin/sh
# Runs every test and prints one closing line "N passed, N failed".
#
# - $BUILD/tests/test_*: cmocka binaries; their "[  PASSED  ] n test(s)" and
#   "[  FAILED  ] n test(s)" lines are summed.
# - tests/integration/*.sh: scripts that print "PASS: name" / "FAIL: name"
#   per check (and exit non-zero if any failed).
# Output of each test goes to $BUILD/test-logs/; failures are shown.
# TESTS=pattern restricts the run to matching test names.
# SUITE=faults runs tests/faults/*.sh instead (the fault scenarios of
# `make test-faults`: same PASS:/FAIL: convention, same closing line).
set -u
BUILD=${BUILD:-build}
logs=$BUILD/test-logs
mkdir -p "$logs"
passed=0
failed=0
pattern=${TESTS:-}
# Sanitizer builds: every process (daemons of the integration tests too)
# writes its ASan/UBSan/LeakSanitizer report to $logs/san/; any report
# fails the run at the end, so a leak in a daemon is not missed.
sandir=$logs/san
if [ -n "${SANITIZE_REPORTS:-}" ]; then
    rm -rf "$sandir" && mkdir -p "$sandir"
    export ASAN_OPTIONS="detect_leaks=1:log_path=$PWD/$sandir/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:log_path=$PWD/$sandir/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
fi

run_one() {   # name, log, command...
    name=$1; log=$2; shift 2
    case "$name" in *"$pattern"*) ;; *) return 0 ;; esac
    start=$(date +%s)
    CMOCKA_MESSAGE_OUTPUT=stdout "$@" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p; s/^PASS: .*/1/p' "$log" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p; s/^FAIL: .*/1/p' "$log" | awk '{s+=$1} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1     # crashed or failed without saying which check
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -ne 0 ]; then
        echo "FAIL $name ($p passed, $f failed, ${secs}s; log $log)"
        grep -E '^\[  (ERROR|FAILED)|^FAIL|rror|Assert|Sanitizer' "$log" | head -n 30
    else
        echo "ok   $name ($p passed, ${secs}s)"
    fi
}

scripts=tests/integration
if [ "${SUITE:-}" = faults ]; then
    scripts=tests/faults
else
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        n=$(basename "$t")
        run_one "$n" "$logs/$n.log" "$t"
    done
fi
for s in "$scripts"/*.sh; do
    [ -f "$s" ] || continue
    n=$(basename "$s" .sh)
    run_one "$n" "$logs/$n.log" env BUILD="$BUILD" sh "$s"
done

if [ -n "${SANITIZE_REPORTS:-}" ]; then
    for r in "$sandir"/*; do
        [ -f "$r" ] || continue
        echo "FAIL sanitizer report $r"
        grep -E 'ERROR|SUMMARY|runtime error|#[0-4] ' "$r" | head -n 12
        failed=$((failed + 1))
    done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
