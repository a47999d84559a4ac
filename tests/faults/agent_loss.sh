#!/bin/sh
# Issue 9, scenario 1, "agent loss and return", on the emulated linear-4pi
# (real OVS userspace datapath, one namespace per Pi, real controller and
# agents): a short 3-stage run with a spare Pi, once undisturbed and once
# with the middle stage's agent SIGKILLed mid-epoch 2 and restarted after
# the failover. Checks and prints: detection time (kill -> the controller's
# "is dead" line) within 3 heartbeat periods; a new placement without the
# dead agent; every stage resumed from the replicated checkpoints of the
# last epoch boundary; the run completes; each head's final test accuracy
# within 1 point of the undisturbed run (same seed); the returning agent
# holds a stage again from a later epoch boundary.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/check.sh
BUILD=${BUILD:-build}
if [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null; then
    echo "SKIP: needs root and openvswitch-switch"
    exit 0
fi
t0=$(now_ms)
T=$(mktemp -d /tmp/et-agent-loss.XXXXXX)
# Run ids and ports of our own: concurrent runs never share them.
ida=$(printf "%03x" $(( ($$ * 3) % 4096 )))
idb=$(printf "%03x" $(( ($$ * 3 + 1) % 4096 )))
idc=$(printf "%03x" $(( ($$ * 3 + 2) % 4096 )))
idd=$(printf "%03x" $(( ($$ * 3 + 3) % 4096 )))
mport=$(( 20000 + ($$ % 5000) * 2 ))
ofport=$(( mport + 1 ))
HB=500
STEPS=40
EPOCHS=4
TOPO=topology/linear-4pi.json
DATA='fashion-mnist?test-limit=1000'
# 'equal' placement: the same blocks per stage in both runs whatever the
# agents' measured speeds, so the heads compare one to one.
set -f          # $CTL holds a '?' (the data spec), never a glob
CTL="--placement equal --stages 3 --alpha 0.5 --input 32 --channels 1 \
    --classes 10 --head-pool 4 --batch 128 --micro-batch 32 \
    --epochs $EPOCHS --steps-per-epoch $STEPS --lr 0.004 --seed 3 \
    --data $DATA --heartbeat-ms $HB --failover-s 1 --exit-when-done"
emulate() {
    timeout 400 topology/emulate $TOPO --bin "$BUILD/bin" --threads 1 \
        --data "$DATA" --mgmt-port $mport --openflow-port $ofport "$@"
}

emulate --id "$ida" --out "$T/a" --seconds 300 -- $CTL >"$T/a.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "undisturbed run finished" ||
    { fail "undisturbed run finished (rc $rc)"; tail -n 20 "$T/a.log"; }

# $1 run name, $2 id, $3 fault (kill|stop|back), $4 silent heartbeat
# periods before the controller declares an agent dead, $5 more controller
# options.
disturbed_run() {
    emulate --id "$2" --out "$T/$1" --allow-agent-exit \
        --exec "/usr/bin/python3 tests/lib/agent_loss.py $T/$1 $TOPO $BUILD/bin $STEPS $3" \
        -- $CTL --timeout-periods "$4" ${5:-} >"$T/$1.log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && pass "run with the agent ($3) and restarted finished" ||
        { fail "run with the agent ($3) and restarted finished (rc $rc)";
          tail -n 20 "$T/$1.log"; cat "$T/$1/result.json" 2>/dev/null
          echo "controller log, last lines:"
          tail -n 40 "$T/$1/controller.log" 2>/dev/null
          echo "agents' warnings:"
          grep -h 'WARN\|ERROR' "$T/$1"/agent-*.log \
              2>/dev/null | tail -n 30; }
    /usr/bin/python3 tests/lib/agent_loss_check.py "$T/a/status.json" \
        "$T/$1" "$HB" "$4" || failures=$((failures + 1))
}
# SIGKILL: the kernel closes the agent's sockets; the controller sees the
# connection close at once.
disturbed_run b "$idb" kill 3
# SIGSTOP: a Pi losing power or its link (no FIN): only the heartbeats
# stop. Dead after 2 silent periods, so that a fault just after a
# heartbeat is still noticed within 3 (2 periods + the hb/4 sweep).
disturbed_run c "$idc" stop 2
# Back before the failover (a quick reboot): same placement, every stage
# resumed from the last boundary since the returning agent lost its stage.
disturbed_run d "$idd" back 3 "--failover-s 60"
echo "total test time: $(( ($(now_ms) - t0) / 1000 )) s"
[ $failures -eq 0 ] && rm -rf "$T" || echo "logs kept in $T"
exit $([ $failures -eq 0 ] && echo 0 || echo 1)
