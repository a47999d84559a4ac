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
# starve OVS's userspace datapath). Two throughputs per run:
#   end to end = training images / time from the run's start to its end
#                (controller log; includes the one-off start-up: switches
#                connecting, sub-streams opening, the dataset loading)
#   steady     = training images / the longest stage epoch span (each
#                agent's log: its first training step to its last; the
#                longest, so that a stall anywhere in the pipeline counts)
# and, per stage, the agent's own split of that span: compute (wall time in
# training steps, CPU quota throttling included), handing output on (blocked
# on the stream), the rest waiting for input.
#   tests/bench/scaling_emulated.sh [BIN_DIR] [STEPS] [CORES_PER_AGENT]
#                                   [ENCODING] [TOPOLOGY]
# ENCODING: activations on the wire, int8 (default: four stages need
# 2000+ images/s of block-2 output, 4 KB/image in int8, 16 KB in f32, and
# the diamond's paths carry ~100 Mbit/s; docs/placement.md), f16 or f32
# (the planner charges transfers at that size). TOPOLOGY: default
# topology/diamond-4pi.json (topology/linear-4pi.json: one path).
# SCALING_CTL_OPTS (environment): more controller options for both runs,
# e.g. "--routing shortest".
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/bin}
steps=${2:-40}
# Cores per agent: the topologies declare 11 GFLOP/s per Pi, so
# cpu-per-gflop = cores / 11. Four agents must leave the host room for OVS
# and the I/O.
cores=${3:-0.25}
enc=${4:-int8}
topo=${5:-topology/diamond-4pi.json}
cpg=$(python3 -c "print($cores / 11)")
# CFS period of the quotas (SCALING_CPU_PERIOD_US): within each period an
# agent runs at the host's full speed for its quota, then stops. With the
# kernel's 100 ms a quarter-core agent computes 25 ms and stalls 75 ms, so
# its output leaves in bursts a 100 Mbit/s path cannot absorb; a real slow
# device computes steadily, which 10 ms approximates (docs/placement.md).
period=${SCALING_CPU_PERIOD_US:-10000}
[ "$(id -u)" = 0 ] || { echo "scaling: needs root (emulator)"; exit 2; }
run() {   # placement stages -> prints "steady_img_s end_to_end_img_s secs"
    # The epoch reads exactly the images it trains on (train-limit): loading
    # all 60000 under a quarter-core quota is ~3 s of start-up in both runs.
    data="fashion-mnist?train-limit=$((steps * 128))&test-limit=256"
    out=$(topology/emulate "$topo" --bin "$bin" --keep-logs \
          --cpu-per-gflop "$cpg" --cpu-period-us "$period" --threads 1 \
          --seconds 1200 \
          --data "$data" -- \
          --placement "$1" --stages "$2" --alpha 0.5 --input 32 --channels 1 \
          --classes 10 --head-pool 4 --batch 128 --micro-batch 32 --epochs 1 \
          --steps-per-epoch "$steps" --data "$data" \
          --encoding "$enc" --exit-when-done ${SCALING_CTL_OPTS:-} 2>&1)
    dir=$(echo "$out" | sed -n 's/.*run dir \([^ ]*\).*/\1/p' | head -n 1)
    /usr/bin/python3 - "$dir" "$steps" <<'PY'
import datetime, glob, re, sys
d, steps = sys.argv[1], int(sys.argv[2])
t = {}
for line in open(d + "/controller.log"):
    m = re.match(r"(\S+)Z controller INFO: run \S+(: \d+ stages| done:)", line)
    if m:
        ts = datetime.datetime.fromisoformat(m.group(1))
        t.setdefault("done" if "done" in m.group(2) else "start", ts)
secs = (t["done"] - t["start"]).total_seconds()
stages = []
for f in glob.glob(d + "/agent-*.log"):
    blocks = span = None
    for line in open(f):
        m = re.search(r"agent\[(\S+)\] INFO: stage (\d+)-(\d+) ready", line)
        if m:
            name, blocks = m.group(1), (int(m.group(2)), int(m.group(3)))
        m = re.search(r"epoch 1 training: \d+ images in ([\d.]+) s.*compute "
                      r"alone ([\d.]+) s.*handing output on ([\d.]+) s", line)
        if m:
            span, comp, send = map(float, m.groups())
    if blocks and span:
        stages.append((blocks, name, span, comp, send))
stages.sort()
for (b0, b1), name, span, comp, send in stages:
    print("#   %-4s blocks %2d-%-2d span %6.2f s: compute %6.2f s, handing "
          "output on %5.2f s, waiting %5.2f s"
          % (name, b0, b1, span, comp, send, max(0, span - comp - send)))
acc = re.findall(r"run: stage (\d+) on \S+: test top-1 ([\d.]+)",
                 open(d + "/controller.log").read())
print("#   test top-1 per head (256 images): "
      + " ".join("%s:%s" % a for a in acc))
longest = max(st[2] for st in stages)
print("%.1f %.1f %.1f" % (steps * 128 / longest, steps * 128 / secs, secs))
PY
    rm -rf "$dir"
}
report() {   # label stages output-of-run
    echo "$3" | sed -n 's/^# //p'
    set -- "$1" "$2" $(echo "$3" | tail -n 1)
    echo "$1 ($2): steady $3 img/s, end to end $4 img/s (${5} s)"
}
pipe=$(run bottleneck-dp 4)
one=$(run single 1)
echo "scaling: $(basename "$topo"), $cores core per agent, encoding $enc, $steps steps"
report "four agents (bottleneck-dp)" "4 stages" "$pipe"
report "one agent (single)" "1 stage" "$one"
python3 - "$(echo "$pipe" | tail -n 1)" "$(echo "$one" | tail -n 1)" <<'PY'
import sys
p, o = [list(map(float, a.split())) for a in sys.argv[1:3]]
print("scaling_ratio=%.2f (steady, longest stage epoch span)" % (p[0] / o[0]))
print("scaling_ratio_end_to_end=%.2f (controller's run start to done)"
      % (p[1] / o[1]))
PY
