#!/bin/sh
# Weights and the sub-stream set change twice in the middle of a two-agent
# run (a scripted controller, tests/drivers/ctl_standin.c: generation 2
# removes sub-stream 0 while chunks are in flight and adds 2; generation 3
# re-weights). Checks: nothing lost or trained twice (sender, receiver and
# trainer counts agree, no chunk out of place), the new sub-streams carried
# data, and the result equals the single-node trainer's on the same stages.
set -u
BUILD=${BUILD:-build}
B=$BUILD/bin
T=$(mktemp -d /tmp/et-reweight-XXXXXX)
P=$((20000 + ($$ + 3000) % 20000))
# Long enough an epoch that both changes (at 0.7 and 1.4 s) land inside it
# even on a quiet machine.
SPEC="fashion-mnist?train-limit=15000&test-limit=256"
. tests/lib/procs.sh

$BUILD/tests/drivers/ctl_standin --listen 127.0.0.1:$P --port-base $((P + 100)) \
    --data "$SPEC" --switch-ms 700 >"$T/ctl.out" 2>&1 &
pids="$pids $!"
wait_for "$T/ctl.out" 10 "listening" || { fail "stand-in started"; exit 1; }
for i in 1 2; do
    $B/edgetrain-agent --name a$i --controller 127.0.0.1:$P \
        --listen 127.0.0.1:$((P + i)) --threads 1 \
        >"$T/a$i.out" 2>"$T/a$i.log" &
    eval "apid$i=$!"
    pids="$pids $!"
done
ok=1
for i in 1 2; do
    wait_for "$T/a$i.out" 120 "epoch=1" || ok=0
done
[ $ok = 1 ] && pass "two agents trained an epoch" || fail "two agents trained an epoch"
# The changes happened while training ran (before a2's epoch ended). An
# agent prints "epoch=1" before its Metrics go out: wait for the stand-in
# to log them.
wait_for "$T/ctl.out" 30 "eval_done 1"
g3=$(grep -n "assign a1 generation 3" "$T/ctl.out" | cut -d: -f1)
e1=$(grep -n "eval_done 1" "$T/ctl.out" | head -n 1 | cut -d: -f1)
if [ -n "$g3" ] && [ -n "$e1" ] && [ "$g3" -lt "$e1" ]; then
    pass "sub-stream set and weights changed twice mid-epoch"
else
    fail "changes mid-epoch (generation 3 at line '$g3', first epoch end at '$e1')"
fi
grep -q "sub-stream 0 removed" "$T/a1.log" && grep -q "sub-stream 2 up" "$T/a1.log" \
    && pass "a1 closed sub-stream 0 and opened sub-stream 2" \
    || fail "a1 closed sub-stream 0 and opened sub-stream 2"

for i in 1 2; do eval "kill -TERM \$apid$i"; done
for i in 1 2; do eval "wait \$apid$i"; done
# The last Credit may still be on its way when TERM arrives (unacked > 0):
# exactly once is sent = delivered in order = trained.
sent=$(sed -n 's/.*stream to a2 at exit: \([0-9]*\) chunks sent, .*/\1/p' "$T/a1.log")
resent=$(sed -n 's/.*stream to a2 at exit: .* \([0-9]*\) resent.*/\1/p' "$T/a1.log")
got=$(sed -n 's/.*streams at exit: received [0-9]*, delivered in order \([0-9]*\), duplicates \([0-9]*\), gaps 0.*/\1/p' "$T/a2.log")
dups=$(sed -n 's/.*streams at exit: received [0-9]*, delivered in order [0-9]*, duplicates \([0-9]*\), gaps 0.*/\1/p' "$T/a2.log")
trained=$(sed -n 's/.*compute: \([0-9]*\) chunks trained on, 0 out of place.*/\1/p' "$T/a2.log")
if [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$got" ] && [ "$got" = "$trained" ]; then
    pass "a1 -> a2: $sent chunks sent, delivered once in order and trained on ($resent resent, $dups duplicates dropped)"
else
    fail "a1 -> a2: sent '$sent' delivered '$got' trained '$trained'"
fi

$B/edgetrain train --data fashion-mnist --train-limit 15000 --test-limit 256 \
    --stages 1-4,5-13 --input 32 --alpha 0.5 --batch 64 --epochs 1 --lr 0.004 \
    --threads 1 --no-plot --no-progress --out "$T/single" >"$T/single.log" 2>&1
line=$(sed -n 's/.*epoch 1: train loss \([0-9.]*\) .*test top-1 \([0-9.]*\) .*/\1 \2/p' "$T/a2.log")
ref=$(awk -F, 'NR > 1 && $3 == 2 { print $5, $8 }' "$T/single/metrics.csv")
if [ -n "$line" ] && [ -n "$ref" ] && awk -v a="$line" -v b="$ref" 'BEGIN {
        split(a, x, " "); split(b, y, " "); d1 = x[1] - y[1]; d2 = x[2] - y[2];
        exit !(d1 < 1e-3 && d1 > -1e-3 && d2 < 1e-3 && d2 > -1e-3) }'; then
    pass "a2 equals the single-node trainer across the changes (loss, top-1: $line)"
else
    fail "a2 equals the single-node trainer (agent '$line', trainer '$ref')"
fi
exit $fails
