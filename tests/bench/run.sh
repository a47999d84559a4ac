#!/bin/sh
# make bench: edgetrain's training step beside PyTorch 1.13's on the same
# model, threads and batch, in one run; prints both and the ratio.
#   tests/bench/run.sh build/bin/edgetrain
# The machine is shared, so each stage runs BENCH_ROUNDS alternating rounds
# (edgetrain, pytorch, edgetrain, ...) and the best round of each side is
# compared (the least disturbed one); every round is printed too. Both
# sides also report CPU time per step; its ratio (the work each needs for
# a step) is printed as well, as it moves much less with the load.
# BENCH_STAGES ("full block1"), BENCH_STEPS (5), BENCH_BATCH (256),
# BENCH_THREADS (2), BENCH_ALPHA (1.0), BENCH_INPUT (64), BENCH_ROUNDS (3).
# Both sides run with OMP_WAIT_POLICY=passive (BENCH_OMP_WAIT overrides):
# on a shared machine, spinning OpenMP workers lose their core to other
# processes; PyTorch (whose OpenMP also meets OpenBLAS's pthreads) runs
# about 3x faster here with it, edgetrain up to 2x under load, and a quiet
# machine shows little difference.
set -u
export OMP_WAIT_POLICY=${BENCH_OMP_WAIT:-passive}
bin=${1:-build/bin/edgetrain}
dir=$(dirname "$0")
steps=${BENCH_STEPS:-5}
batch=${BENCH_BATCH:-256}
threads=${BENCH_THREADS:-2}
alpha=${BENCH_ALPHA:-1.0}
input=${BENCH_INPUT:-64}
rounds=${BENCH_ROUNDS:-3}
common="--alpha $alpha --input $input --classes 340 --batch $batch --threads $threads --steps $steps"
fail=0
notorch=0
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "bench: /usr/bin/python3 has no torch (apt-get install python3-torch); edgetrain only"
    notorch=1
fi
val() {   # key, line
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}
best() {  # current, candidate -> larger
    awk -v a="$1" -v b="$2" 'BEGIN { print (b + 0 > a + 0) ? b : a }'
}
least() { # current (0 = none), candidate -> smaller
    awk -v a="$1" -v b="$2" 'BEGIN { print (a + 0 == 0 || b + 0 < a + 0) ? b : a }'
}
cpu_ms() { # output of either side -> its CPU-ms/step
    echo "$1" | sed -n 's/.* \([0-9.]*\) CPU-ms\/step.*/\1/p' | tail -n 1
}
echo "bench: OMP_WAIT_POLICY=$OMP_WAIT_POLICY, $rounds alternating rounds, best of each side; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for stage in ${BENCH_STAGES:-full block1}; do
    e=0 p=0 eg=0 em=0 pm=0 r=0 ec=0 pc=0
    while [ "$r" -lt "$rounds" ]; do
        r=$((r + 1))
        out=$("$bin" bench --stage "$stage" $common 2>&1) || { echo "$out"; fail=1; break; }
        [ "$r" = 1 ] && echo "$out" | head -n 1 | sed 's/^/  /'
        l=$(echo "$out" | tail -n 1)
        ec=$(least "$ec" "$(cpu_ms "$out")")
        echo "  round $r edgetrain $l cpu_ms_per_step=$(cpu_ms "$out")"
        if [ "$(best "$e" "$(val images_per_s "$l")")" != "$e" ]; then
            e=$(val images_per_s "$l"); eg=$(val gflops "$l")
        fi
        em=$(best "$em" "$(val peak_rss_mb "$l")")
        [ "$notorch" = 1 ] && continue
        out=$(OMP_NUM_THREADS=$threads /usr/bin/python3 "$dir/torch_mobilenet.py" --stage "$stage" $common 2>&1) \
            || { echo "$out"; fail=1; break; }
        [ "$r" = 1 ] && echo "$out" | head -n 1 | sed 's/^/  /'
        l=$(echo "$out" | tail -n 1)
        pc=$(least "$pc" "$(cpu_ms "$out")")
        echo "  round $r pytorch   $l cpu_ms_per_step=$(cpu_ms "$out")"
        p=$(best "$p" "$(val images_per_s "$l")")
        pm=$(best "$pm" "$(val peak_rss_mb "$l")")
    done
    if [ "$notorch" = 1 ]; then
        echo "bench $stage: edgetrain $e img/s ($eg GFLOP/s, $em MB)"
        continue
    fi
    awk -v s="$stage" -v e="$e" -v p="$p" -v em="$em" -v pm="$pm" -v eg="$eg" \
        -v ec="$ec" -v pc="$pc" -v b="$batch" -v t="$threads" 'BEGIN {
        printf "bench %s: edgetrain %.1f img/s (%.1f GFLOP/s = %.0f%% of the 166 GFLOP/s peak, %d MB), pytorch %.1f img/s (%d MB), ratio %.2fx\n",
               s, e, eg, 100 * eg / 166, em, p, pm, (p > 0) ? e / p : 0
        if (ec > 0 && pc > 0)
            printf "bench %s: CPU time per step edgetrain %.0f ms, pytorch %.0f ms, ratio %.2fx; at %d busy cores edgetrain would run %.0f img/s (%.0f%% of peak)\n",
                   s, ec, pc, pc / ec, t, b * t * 1000 / ec, 100 * (eg / e) * (b * t * 1000 / ec) / 166 }'
done
exit $fail
