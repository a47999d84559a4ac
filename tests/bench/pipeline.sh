#!/bin/sh
# Pipeline throughput of three agents on one machine, each in its own CPU
# cgroup (cfs quota QUOTA CPUs), beside the standalone training-step
# throughput of each agent's stage under the same quota (`edgetrain bench
# --stage blocks:F-L`, same model and batch). Goal: the pipeline reaches
# >= 90% of its slowest stage alone (communication overlaps computation).
#
#   tests/bench/pipeline.sh [build-dir]      (root, cgroup v1 cpu controller)
# Environment: QUOTA (0.6), TRAIN_LIMIT (6000), PORT (17800).
set -u
BUILD=${1:-build}
B=$BUILD/bin
QUOTA=${QUOTA:-0.6}
CG=/sys/fs/cgroup/cpu
P=${PORT:-17800}
if [ "$(id -u)" != 0 ] || [ ! -w "$CG" ]; then
    echo "bench-pipeline: skipped (needs root and cgroup v1 $CG)"; exit 0
fi
T=$(mktemp -d); echo "logs in $T"
quota_us=$(awk -v q="$QUOTA" 'BEGIN { printf "%d", q * 100000 }')
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    for d in "$CG"/edgetrain-bench-$$-*; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
    [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
mkcg() {   # name -> path of a cgroup with the quota
    d=$CG/edgetrain-bench-$$-$1
    mkdir -p "$d" && echo 100000 >"$d/cpu.cfs_period_us" && echo "$quota_us" >"$d/cpu.cfs_quota_us"
    echo "$d"
}
SPEC="fashion-mnist?train-limit=${TRAIN_LIMIT:-6000}&test-limit=256"
$B/edgetrain-controller --topology topology/loopback-3.json --listen 127.0.0.1:$P \
    --http off --expect-agents 3 --source a1 --stages 3 --input 32 --alpha 0.5 \
    --classes 10 --batch 64 --micro-batch 16 --epochs 1 --lr 0.004 \
    --port-base $((P + 100)) --data "$SPEC" >"$T/ctl.log" 2>&1 &
pids="$pids $!"
sleep 0.3
for i in 1 2 3; do
    d=$(mkcg a$i)
    sh -c "echo \$\$ > $d/cgroup.procs; exec $B/edgetrain-agent --name a$i \
        --controller 127.0.0.1:$P --listen 127.0.0.1:$((P + i)) --threads 1" \
        >"$T/a$i.out" 2>"$T/a$i.log" &
    pids="$pids $!"
done
for i in 1 2 3; do
    n=0
    until grep -q "epoch=1" "$T/a$i.out" 2>/dev/null; do
        sleep 0.5; n=$((n + 1))
        [ $n -gt 600 ] && { echo "bench-pipeline: a$i did not finish"; tail -n 3 "$T/a$i.log"; exit 1; }
    done
done
for p in $pids; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
pids=""
slowest=
for k in 0 1 2; do
    a=$(sed -n "s/.*gen 1: stage $k\/3 blocks [0-9-]* -> \(a[0-9]\).*/\1/p" "$T/ctl.log" | head -n 1)
    blk=$(sed -n "s/.*gen 1: stage $k\/3 blocks \([0-9-]*\) -> a.*/\1/p" "$T/ctl.log" | head -n 1)
    pipe=$(sed -n 's/.*epoch 1 training: .* = \([0-9.]*\) images\/s; compute.*/\1/p' "$T/$a.log")
    d=$(mkcg s$k)
    alone=$(sh -c "echo \$\$ > $d/cgroup.procs; exec $B/edgetrain bench --stage blocks:$blk \
        --alpha 0.5 --input 32 --classes 10 --batch 64 --threads 1 --steps 20" 2>&1 \
        | sed -n 's/^images_per_s=\([0-9.]*\).*/\1/p')
    echo "stage $((k + 1)) ($a, blocks $blk): in the pipeline $pipe images/s, alone $alone images/s (quota $QUOTA CPU each)"
    slowest=$(awk -v s="${slowest:-}" -v a="$alone" 'BEGIN { print (s == "" || a < s) ? a : s }')
    last=$pipe
done
awk -v p="$last" -v s="$slowest" 'BEGIN { printf "pipeline %.1f images/s vs slowest stage alone %.1f: ratio %.2f (goal >= 0.90)\n", p, s, p / s }'
