#!/bin/sh
# Calibrates the memory term of the block cost model (controller/blockcost.h):
# times one training step of every block alone (a one-block stage with its
# head, `edgetrain bench --stage blocks:B-B`, one thread) and fits
#   time = a * (train FLOPs + head FLOPs) + c * saved bytes
# by least squares; BLOCKCOST_BYTE_FLOPS should be about c / a. Prints each
# block's time next to the FLOP-only fit and the two-term fit.
#   tests/bench/blockcost_fit.sh [BIN_DIR] [REPEATS]
# Model: the scaling benchmark's (alpha 0.5, 32x32x1, 10 classes, head pool
# 4, batch 128). A few seconds per repeat; quiet machine preferred.
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/bin}
reps=${2:-2}
model="--alpha 0.5 --input 32 --classes 10 --batch 128"
table=$("$bin/edgetrain" plan --topology topology/linear-4pi.json $model \
        --channels 1 --head-pool 4 --stages 1 --blocks | sed -n '/^block/,/^placement/p')
times=""
for r in $(seq "$reps"); do
    for b in 1 2 3 4 5 6 7 8 9 10 11 12 13; do
        ips=$("$bin/edgetrain" bench --stage "blocks:$b-$b" $model \
              --in-channels 1 --head-pool 4 --threads 1 --steps 10 \
              | sed -n 's/.*images_per_s=\([0-9.]*\).*/\1/p')
        times="$times $b:$ips"
    done
done
/usr/bin/python3 - "$table" "$times" <<'PY'
import sys
rows = {}
for line in sys.argv[1].splitlines():
    f = line.split()
    if f and f[0].isdigit():   # block (h, w, c) train saved cost out head
        nums = [float(x) for x in line.split(")")[1].split()]
        rows[int(f[0])] = (nums[0] + nums[4], nums[1])   # MFLOP, KB
t = {}
for item in sys.argv[2].split():
    b, ips = item.split(":")
    t.setdefault(int(b), []).append(1e6 / float(ips))
data = [(b, rows[b][0] * 1e6, rows[b][1] * 1e3, sum(v) / len(v))
        for b, v in sorted(t.items())]
sff = sum(f * f for _, f, s, y in data); sss = sum(s * s for _, f, s, y in data)
sfs = sum(f * s for _, f, s, y in data)
sfy = sum(f * y for _, f, s, y in data); ssy = sum(s * y for _, f, s, y in data)
det = sff * sss - sfs * sfs
a = (sfy * sss - ssy * sfs) / det
c = (sff * ssy - sfs * sfy) / det
a0 = sfy / sff
print("block  measured us  FLOPs-only fit  FLOPs+memory fit")
w0 = w1 = 0
for b, f, s, y in data:
    p0, p1 = a0 * f, a * f + c * s
    w0, w1 = max(w0, abs(p0 - y) / y), max(w1, abs(p1 - y) / y)
    print("%5d  %11.1f  %14.1f  %16.1f" % (b, y, p0, p1))
print("worst error: FLOPs only %.0f %%, FLOPs + memory %.0f %%" % (100 * w0, 100 * w1))
print("fitted: %.1f GFLOP/s per core, %.2f FLOP-equivalents per saved byte"
      " (BLOCKCOST_BYTE_FLOPS)" % (1e-3 / a, c / a))
PY
