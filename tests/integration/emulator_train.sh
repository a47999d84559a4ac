#!/bin/sh
# End to end on the emulated 4-Pi diamond: real OVS (userspace datapath),
# one namespace per Pi, shaped links, the real controller and agents, a
# short block-wise training run on Fashion-MNIST. Checks that accuracy beats
# chance widely, that the sub-streams of every multipath stream carried
# bytes in proportion to their weights (OVS per-flow byte counters, within
# 15%), that no chunk was lost or duplicated, and that teardown left nothing.
set -u
# The byte-share check compares whole-run OVS counters with the weights, so
# the weights stay as planned: no re-routing on measured link load
# (--replan-threshold 1); a late re-weight (0.60 -> 0.52) failed it once.
cd "$(dirname "$0")/../.."
# A run id of our own: concurrent runs never share object names.
id=$(printf "%03x" $(( $$ % 4096 )))
BUILD=${BUILD:-build}
fail=0
pass() { echo "PASS: $1"; }
failc() { echo "FAIL: $1"; fail=1; }
if [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null; then
    echo "SKIP: needs root and openvswitch-switch"
    exit 0
fi
out=$(mktemp -d)
log=$out/emulate.log
# The after-hook runs before teardown: it reads every bridge's flows.
after='for b in $(env | sed -n "s/^EMU_BR_\([^=]*\)=\(.*\)/\1=\2/p"); do
    ovs-ofctl -O OpenFlow13 dump-flows "${b#*=}" > "$EMU_OUT/flows-${b%%=*}.txt"; done'
timeout 600 topology/emulate topology/diamond-4pi.json --bin "$BUILD/bin" \
    --id "$id" --out "$out" --threads 1 --seconds 400 --after "$after" \
    --data 'fashion-mnist?test-limit=2000' -- \
    --alpha 0.5 --input 32 --channels 1 --classes 10 --head-pool 4 \
    --batch 128 --micro-batch 32 --epochs 2 --steps-per-epoch 50 --stages 3 \
    --lr 0.004 --seed 3 --data 'fashion-mnist?test-limit=2000' \
    --replan-threshold 1 --exit-when-done >"$log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "emulated run finished" || { failc "emulated run finished (rc $rc)"; tail -n 30 "$log"; }
grep '^test_accuracy=' "$log"

# Every stream carries the same chunks: per epoch 50 steps x 4 micro-batches
# of training, then the 2000 test images in steps of 128 (15 x 4 + 3).
/usr/bin/python3 tests/lib/check_run.py "$out" $((2 * (50 * 4 + 15 * 4 + 3))) || fail=1
left=$(ip netns list | grep -c "^et$id"; ip -o link | grep -c "et$id"; ls /sys/fs/cgroup/cpu | grep -c "^et$id"; pgrep -fc "edgetrain-et$id")
if [ "$(echo $left | tr -d ' 0')" = "" ]; then
    pass "teardown left no namespace, link, cgroup or process"
else
    failc "teardown left objects behind: $left"
fi
rm -rf "$out"
exit $fail
