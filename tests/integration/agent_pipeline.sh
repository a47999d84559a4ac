#!/bin/sh
# A controller and three agents on loopback (topology/loopback-3.json) train
# one short epoch of Fashion-MNIST block-wise, two sub-streams per link.
# Checks: every agent finishes its epoch; every chunk is delivered once and
# in order (sender and receiver counts agree, no duplicates, no gaps, none
# out of place); test accuracy above chance; the same numbers as the
# single-node trainer on the same stages and seed; a malformed frame is
# rejected (and reported to the controller) while training goes on; the
# cut model answers `edgetrain infer --agent`; SIGTERM stops every agent
# cleanly with its checkpoint saved.
set -u
BUILD=${BUILD:-build}
B=$BUILD/bin
DATA=/usr/share/datasets/fashion-mnist
if [ ! -d "$DATA" ]; then
    echo "FAIL: $DATA missing (apt-get install dataset-fashion-mnist)"
    exit 1
fi
T=$(mktemp -d /tmp/et-agent-XXXXXX)
P=$((20000 + $$ % 20000))         # management port; agents P+1..P+3
SPEC="fashion-mnist?train-limit=6000&test-limit=256"
. tests/lib/procs.sh

$B/edgetrain-controller --topology topology/loopback-3.json \
    --listen 127.0.0.1:$P --http 127.0.0.1:$((P + 50)) --expect-agents 3 \
    --source a1 --stages 3 --input 32 --alpha 0.5 --classes 10 --batch 64 \
    --micro-batch 16 --epochs 1 --lr 0.004 --substreams 2 \
    --port-base $((P + 100)) --checkpoint-dir "$T" --data "$SPEC" \
    >"$T/ctl.log" 2>&1 &
pids="$pids $!"
wait_for "$T/ctl.log" 10 "listening" || { fail "controller started"; exit 1; }
for i in 1 2 3; do
    $B/edgetrain-agent --name a$i --controller 127.0.0.1:$P \
        --listen 127.0.0.1:$((P + i)) --threads 1 --state-dir "$T/state" \
        >"$T/a$i.out" 2>"$T/a$i.log" &
    eval "apid$i=$!"
    pids="$pids $!"
done

# The chain as placed: stage k runs on agent $agk with blocks $blkk.
wait_for "$T/ctl.log" 30 "stage 2/3 blocks" || { fail "controller placed 3 stages"; exit 1; }
for k in 0 1 2; do
    eval "ag$k=$(sed -n "s/.*gen 1: stage $k\/3 blocks [0-9-]* -> \(a[0-9]\).*/\1/p" "$T/ctl.log" | head -n 1)"
    eval "blk$k=$(sed -n "s/.*gen 1: stage $k\/3 blocks \([0-9-]*\) -> a.*/\1/p" "$T/ctl.log" | head -n 1)"
done
port1=$((P + ${ag1#a}))

# While stage 0 streams to stage 1, a stranger sends garbage to stage 1.
if wait_for "$T/$ag1.log" 30 "stream from $ag0: sub-stream"; then
    python3 - "$port1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x45\x54\x52\x4e\x01\x0a\x00\x00" + b"\xff" * 64)
s.settimeout(5)
try:
    while s.recv(4096):
        pass
except OSError:
    pass
EOF
else
    fail "$ag1 receives $ag0's stream"
fi

ok=1
for i in 1 2 3; do
    wait_for "$T/a$i.out" 180 "epoch=1" || ok=0
done
[ $ok = 1 ] && pass "three agents trained an epoch over two sub-streams per link" \
    || { fail "three agents trained an epoch"; tail -n 5 "$T"/a*.log; }

# Malformed frame: closed with a reason, reported, training went on.
if grep -q "malformed frame" "$T/$ag1.log" && [ $ok = 1 ]; then
    pass "malformed frame rejected by $ag1 while training continued"
else
    fail "malformed frame rejected while training continued"
fi
python3 - "$((P + 50))" >"$T/status.txt" 2>&1 <<'EOF'
import json, sys, urllib.request
d = json.load(urllib.request.urlopen("http://127.0.0.1:%s/status" % sys.argv[1], timeout=5))
for a in d.get("agents", []):
    print(a.get("name"), a.get("last_error", ""))
EOF
grep -q "^$ag1 .*malformed" "$T/status.txt" \
    && pass "controller got $ag1's error report" \
    || fail "controller got $ag1's error report ($(cat "$T/status.txt" | head -3))"

# Cut model served by the stage-1 agent.
if $B/edgetrain infer --agent 127.0.0.1:$((P + ${ag0#a})) --data "$SPEC" test:0 test:1 \
        >"$T/infer.out" 2>&1 && [ "$(grep -c '=0\.[0-9]*,.*=.*,.*=' "$T/infer.out")" = 2 ]; then
    pass "edgetrain infer --agent prints top-3 ($(head -n 1 "$T/infer.out"))"
else
    fail "edgetrain infer --agent ($(cat "$T/infer.out"))"
fi

# Accuracy above chance (10 classes) on every head.
for i in 1 2 3; do
    acc=$(sed -n 's/^epoch=1 test_top1=//p' "$T/a$i.out")
    if [ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a > 0.3) }'; then
        pass "a$i head test accuracy $acc > chance 0.1"
    else
        fail "a$i head test accuracy '$acc' > 0.3"
    fi
done

# Same stages, seed and data in the single-node trainer: same numbers.
stages="$blk0,$blk1,$blk2"
$B/edgetrain train --data fashion-mnist --train-limit 6000 --test-limit 256 \
    --stages "$stages" --input 32 --alpha 0.5 --batch 64 --epochs 1 --lr 0.004 \
    --threads 1 --no-plot --no-progress --out "$T/single" >"$T/single.log" 2>&1
for k in 0 1 2; do
    eval "a=\$ag$k b=\$blk$k"
    line=$(sed -n 's/.*epoch 1: train loss \([0-9.]*\) .*test top-1 \([0-9.]*\) .*/\1 \2/p' "$T/$a.log")
    ref=$(awk -F, -v h=$((k + 1)) 'NR > 1 && $3 == h { print $5, $8 }' "$T/single/metrics.csv")
    if [ -n "$line" ] && [ -n "$ref" ] && awk -v a="$line" -v b="$ref" 'BEGIN {
            split(a, x, " "); split(b, y, " ");
            d1 = x[1] - y[1]; d2 = x[2] - y[2];
            exit !(d1 < 1e-3 && d1 > -1e-3 && d2 < 1e-3 && d2 > -1e-3) }'; then
        pass "$a (stage $((k + 1)), blocks $b) matches the single-node trainer on stages $stages (loss, top-1: $line)"
    else
        fail "$a matches the single-node trainer (agent '$line', trainer '$ref')"
    fi
done

# Clean shutdown; then the delivery accounting printed at exit.
for i in 1 2 3; do eval "kill -TERM \$apid$i"; done
ok=1
for i in 1 2 3; do
    eval "p=\$apid$i"
    wait "$p" || ok=0
done
[ $ok = 1 ] && grep -q "checkpoint .*$ag2-stage" "$T/$ag2.log" \
    && pass "SIGTERM: agents exit 0 with checkpoints saved" \
    || fail "SIGTERM: agents exit 0 with checkpoints saved"
for k in 1 2; do
    eval "up=\$ag$((k - 1)) down=\$ag$k"
    # Exactly once is sent = delivered in order = trained. The last
    # Credit may still be on its way when TERM arrives (unacked > 0), and
    # a copy of a chunk sent again is dropped by sequence number.
    sent=$(sed -n 's/.*stream to a[0-9] at exit: \([0-9]*\) chunks sent, .*/\1/p' "$T/$up.log")
    got=$(sed -n 's/.*streams at exit: received \([0-9]*\), delivered in order \([0-9]*\), duplicates [0-9]*, gaps 0.*/\2/p' "$T/$down.log")
    trained=$(sed -n 's/.*compute: \([0-9]*\) chunks trained on, 0 out of place.*/\1/p' "$T/$down.log")
    if [ -n "$sent" ] && [ "$sent" -gt 0 ] && [ "$sent" = "$got" ] && [ "$got" = "$trained" ]; then
        pass "$up -> $down: $sent chunks sent, delivered once in order, trained on"
    else
        fail "$up -> $down: sent '$sent' delivered '$got' trained '$trained'"
    fi
done
exit $fails
