#!/bin/sh
# The controller dies in the middle of a two-agent run: the agents keep
# training on their assignment and finish the epoch, retry the management
# connection with back-off, and register again (announcing the run they
# are on) when a controller comes back on the same address.
set -u
BUILD=${BUILD:-build}
B=$BUILD/bin
T=$(mktemp -d /tmp/et-reconnect-XXXXXX)
P=$((20000 + ($$ + 7000) % 20000))
SPEC="fashion-mnist?train-limit=6000&test-limit=256"
. tests/lib/procs.sh
controller() {   # expect-agents, log
    $B/edgetrain-controller --topology topology/loopback-3.json \
        --listen 127.0.0.1:$P --http off --expect-agents "$1" --source a1 \
        --stages 2 --input 32 --alpha 0.5 --classes 10 --batch 64 \
        --micro-batch 16 --epochs 1 --lr 0.004 --port-base $((P + 100)) \
        --heartbeat-ms 200 --data "$SPEC" >"$2" 2>&1 &
    ctl=$!
    pids="$pids $ctl"
}

controller 2 "$T/ctl1.log"
wait_for "$T/ctl1.log" 10 "listening" || { fail "controller started"; exit 1; }
for i in 1 2; do
    $B/edgetrain-agent --name a$i --controller 127.0.0.1:$P \
        --listen 127.0.0.1:$((P + i)) --threads 1 \
        >"$T/a$i.out" 2>"$T/a$i.log" &
    pids="$pids $!"
done
if wait_for "$T/a2.log" 30 "stream from a1: sub-stream" \
        || wait_for "$T/a1.log" 1 "stream from a2: sub-stream"; then
    sleep 0.5
    kill -KILL $ctl
    pass "run started; controller killed mid-epoch"
else
    fail "run started"
fi
if grep -q "epoch=1" "$T/a1.out" "$T/a2.out"; then
    fail "the epoch was still running when the controller died"
fi

ok=1
for i in 1 2; do
    wait_for "$T/a$i.out" 120 "epoch=1" || ok=0
done
[ $ok = 1 ] && pass "both agents finished the epoch without a controller" \
    || fail "agents kept training without a controller"
for i in 1 2; do
    grep -q "reconnecting in" "$T/a$i.log" \
        && pass "a$i retries the controller with back-off" \
        || fail "a$i retries the controller"
done

controller 0 "$T/ctl2.log"
ok=1
for i in 1 2; do
    wait_for "$T/ctl2.log" 15 "agent 'a$i' was running run" || ok=0
done
[ $ok = 1 ] && pass "both agents registered again, announcing their run" \
    || { fail "agents registered again"; tail -n 5 "$T/ctl2.log"; }
exit $fails
