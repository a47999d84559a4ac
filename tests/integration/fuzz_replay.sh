#!/bin/sh
# Replays every committed fuzz corpus and crash reproducer
# (tests/fuzz/corpus/<target>/, tests/fuzz/regress/<target>/) through the
# fuzz targets built without libFuzzer ($BUILD/fuzz-replay/<target>). Under
# `make test SANITIZE=1` they run with ASan+UBSan, so a regression of a
# fixed finding fails here.
BUILD=${BUILD:-build}
rc=0
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    bin=$BUILD/fuzz-replay/$t
    if [ ! -x "$bin" ]; then
        echo "FAIL: $t replay binary missing ($bin)"
        rc=1
        continue
    fi
    files=$(find tests/fuzz/corpus/$t tests/fuzz/regress/$t -type f 2>/dev/null)
    if [ -z "$files" ]; then
        echo "FAIL: $t has no corpus"
        rc=1
        continue
    fi
    n=$(echo "$files" | wc -l)
    # shellcheck disable=SC2086
    if out=$(EDGETRAIN_LOG=error "$bin" $files 2>&1) && \
       ! echo "$out" | grep -q "runtime error\|Sanitizer"; then
        echo "PASS: $t replays $n corpus/regression inputs"
    else
        echo "$out" | tail -n 30
        echo "FAIL: $t on its corpus"
        rc=1
    fi
done
exit $rc
