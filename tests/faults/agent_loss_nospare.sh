#!/bin/sh
# Agent loss with no spare, on the emulated linear-4pi (real OVS userspace
# datapath, one namespace per Pi, real controller and agents): a short
# 4-stage run on the 4 Pis, once undisturbed, once with the middle
# stage's agent (stage 2) SIGKILLed mid-epoch 2 and never brought back,
# and once with it SIGKILLed and restarted after the failover.
# Checks and prints: the run completes on 3 stages, the dead blocks merged
# into a neighbour and the other ranges kept; every stage resumed from the
# checkpoints of the last epoch boundary, the merged one from a checkpoint
# the controller assembled from both parts' copies; each head beside the
# undisturbed run's head after the same block (same seed): kept stages
# upstream of the merge within 1 point (they compute what they did), no
# head (the merged one, kept ones downstream whose input changed) worse by
# more than 1 point. With the agent back: the placement before the
# failover (4 stages on the 4 Pis) comes back at the next epoch boundary
# after it registered, the merged checkpoint split into the two parts'
# (the earlier part's head from its checkpoint before the merge), every
# stage resumed from that boundary (the parts from the split checkpoints,
# loaded by their agents), /status says so, the run completes, and each
# head's accuracy is printed beside the undisturbed run's (none worse by
# more than 3 points).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/check.sh
BUILD=${BUILD:-build}
if [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null; then
    echo "SKIP: needs root and openvswitch-switch"
    exit 0
fi
t0=$(now_ms)
T=$(mktemp -d /tmp/et-agent-nospare.XXXXXX)
# Run ids and ports of our own (not agent_loss.sh's: both may run at once).
ida=$(printf "%03x" $(( ($$ * 5 + 2048) % 4096 )))
idb=$(printf "%03x" $(( ($$ * 5 + 2049) % 4096 )))
idc=$(printf "%03x" $(( ($$ * 5 + 2050) % 4096 )))
mport=$(( 30000 + ($$ % 5000) * 2 ))
ofport=$(( mport + 1 ))
STEPS=40
EPOCHS=4
TOPO=topology/linear-4pi.json
DATA='fashion-mnist?test-limit=1000'
# 'equal' placement: the same blocks per stage in both runs whatever the
# agents' measured speeds, so the heads compare one to one.
set -f          # $CTL holds a '?' (the data spec), never a glob
CTL="--placement equal --stages 4 --alpha 0.5 --input 32 --channels 1 \
    --classes 10 --head-pool 4 --batch 128 --micro-batch 32 \
    --epochs $EPOCHS --steps-per-epoch $STEPS --lr 0.004 --seed 3 \
    --data $DATA --heartbeat-ms 500 --failover-s 1 --exit-when-done"
emulate() {
    timeout 400 topology/emulate $TOPO --bin "$BUILD/bin" --threads 1 \
        --data "$DATA" --mgmt-port $mport --openflow-port $ofport "$@"
}

emulate --id "$ida" --out "$T/a" --seconds 300 -- $CTL >"$T/a.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "undisturbed 4-stage run finished" ||
    { fail "undisturbed 4-stage run finished (rc $rc)"; tail -n 20 "$T/a.log"; }

emulate --id "$idb" --out "$T/b" --allow-agent-exit \
    --exec "/usr/bin/python3 tests/lib/agent_loss.py $T/b $TOPO $BUILD/bin $STEPS gone" \
    -- $CTL >"$T/b.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "run with stage 2's agent gone for good finished" ||
    { fail "run with stage 2's agent gone for good finished (rc $rc)";
      tail -n 20 "$T/b.log"; cat "$T/b/result.json" 2>/dev/null
      tail -n 40 "$T/b/controller.log" 2>/dev/null; }
/usr/bin/python3 tests/lib/agent_loss_nospare_check.py "$T/a/status.json" \
    "$T/b" gone || failures=$((failures + 1))

emulate --id "$idc" --out "$T/c" --allow-agent-exit \
    --exec "/usr/bin/python3 tests/lib/agent_loss.py $T/c $TOPO $BUILD/bin $STEPS return" \
    -- $CTL >"$T/c.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "run with stage 2's agent restarted after the failover finished" ||
    { fail "run with stage 2's agent restarted after the failover finished (rc $rc)";
      tail -n 20 "$T/c.log"; cat "$T/c/result.json" 2>/dev/null
      tail -n 40 "$T/c/controller.log" 2>/dev/null; }
/usr/bin/python3 tests/lib/agent_loss_nospare_check.py "$T/a/status.json" \
    "$T/c" return || failures=$((failures + 1))
echo "figure: total test time $(( ($(now_ms) - t0) / 1000 )) s"
[ $failures -eq 0 ] && rm -rf "$T" || echo "logs kept in $T"
exit $([ $failures -eq 0 ] && echo 0 || echo 1)
