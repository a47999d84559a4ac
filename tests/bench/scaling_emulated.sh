#!/bin/sh
# Pipeline scaling on the emulated diamond (issue goal: four agents each
# limited to half a core train the whole model block-wise at >= 3x the
# throughput of one agent limited the same way).
#
# Two runs of the same job (MobileNet v1 alpha 0.5, 32x32 Fashion-MNIST,
# batch 128, STEPS training steps, a tiny eval): four stages placed by
# bottleneck-dp, then everything on one agent (--placement single). Each
# agent's CPU is capped with a cgroup quota (CORES_PER_AGENT, default a
# quarter core: four half-core agents would take the whole 2-core host and
# starve OVS's userspace datapath). Throughput =
# training images / time from the run's start to its end (controller log).
#   tests/bench/scaling_emulated.sh [BIN_DIR] [STEPS] [CORES_PER_AGENT]
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/bin}
steps=${2:-40}
# Cores per agent: the diamond declares 11 GFLOP/s per Pi, so cpu-per-gflop
# = cores / 11. Four agents must leave the host room for OVS and the I/O.
cores=${3:-0.25}
cpg=$(python3 -c "print($cores / 11)")
[ "$(id -u)" = 0 ] || { echo "scaling: needs root (emulator)"; exit 2; }
run() {   # placement stages -> prints images/s
    out=$(topology/emulate topology/diamond-4pi.json --bin "$bin" --keep-logs \
          --cpu-per-gflop "$cpg" --threads 1 --seconds 1200 \
          --data 'fashion-mnist?test-limit=256' -- \
          --placement "$1" --stages "$2" --alpha 0.5 --input 32 --channels 1 \
          --classes 10 --head-pool 4 --batch 128 --micro-batch 32 --epochs 1 \
          --steps-per-epoch "$steps" --data 'fashion-mnist?test-limit=256' \
          --exit-when-done 2>&1)
    dir=$(echo "$out" | sed -n 's/.*run dir \([^ ]*\).*/\1/p' | head -n 1)
    /usr/bin/python3 - "$dir/controller.log" "$steps" <<'PY'
import re, sys, datetime
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+)Z controller INFO: run \S+(: \d+ stages| done:)", line)
    if m:
        ts = datetime.datetime.fromisoformat(m.group(1))
        t.setdefault("done" if "done" in m.group(2) else "start", ts)
secs = (t["done"] - t["start"]).total_seconds()
print("%.1f %.1f" % (int(sys.argv[2]) * 128 / secs, secs))
PY
    rm -rf "$dir"
}
set -- $(run bottleneck-dp 4); pipe=$1; pipe_s=$2
set -- $(run single 1); one=$1; one_s=$2
echo "four agents (bottleneck-dp, 4 stages): $pipe img/s (${pipe_s} s)"
echo "one agent (single):                    $one img/s (${one_s} s)"
python3 -c "print('scaling_ratio=%.2f' % ($pipe / $one))"
