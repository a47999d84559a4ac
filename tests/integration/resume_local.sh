#!/bin/sh
# A resume ships a checkpoint only to an agent that lacks it. A controller
# and two agents on loopback (stage 0 on a1, stage 1 on a2), 3 short
# epochs; twice after an epoch boundary a2 is SIGKILLed and started again
# (same --state-dir), so every stage resumes from the last boundary on the
# same placement (docs/controller.md, "Failover and resume"; placement
# "equal", so that an epoch boundary never moves blocks):
#  1. miss: a1's own checkpoint files were deleted first. The controller
#     names a1's checkpoint without its payload (a1 made it, same
#     registration); a1 finds no copy, sends a checkpoint-request, the
#     controller sends the payload and a1 resumes from it.
#  2. hit: a1 loads its own copy; nothing is sent to it.
# a2 registered again, so its checkpoint goes as payload both times. Also:
# a checkpoint-request for a checkpoint the controller does not hold gets
# an Error and the controller keeps serving; both agents finish; /status
# counts checkpoints_sent and checkpoints_local; --checkpoint-dir and the
# agents' state directories keep at most 2 epochs per range.
set -u
BUILD=${BUILD:-build}
B=$BUILD/bin
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    echo "FAIL: fashion-mnist missing (apt-get install dataset-fashion-mnist)"
    exit 1
fi
T=$(mktemp -d /tmp/et-resume-local-XXXXXX)
P=$((20000 + ($$ + 3000) % 20000))    # management port; agents P+1, P+2
SPEC="fashion-mnist?train-limit=6000&test-limit=256"
. tests/lib/procs.sh

$B/edgetrain-controller --topology topology/loopback-3.json \
    --listen 127.0.0.1:$P --http 127.0.0.1:$((P + 50)) --expect-agents 2 \
    --placement equal --source a1 --stages 2 --input 32 --alpha 0.5 --classes 10 --batch 64 \
    --micro-batch 16 --epochs 3 --steps-per-epoch 15 --lr 0.004 \
    --heartbeat-ms 200 --failover-s 60 --port-base $((P + 100)) \
    --checkpoint-dir "$T/ckpt" --data "$SPEC" >"$T/ctl.log" 2>&1 &
pids="$pids $!"
show_logs="$T/ctl.log $T/a1.log $T/a2.log"
HPORT=$((P + 50))
wait_for "$T/ctl.log" 10 "listening" || { fail "controller started"; exit 1; }
agent() {
    $B/edgetrain-agent --name "$1" --controller 127.0.0.1:$P \
        --listen 127.0.0.1:$((P + ${1#a})) --threads 1 \
        --state-dir "$T/s-$1" >>"$T/$1.out" 2>>"$T/$1.log" &
    eval "pid_$1=$!"
    pids="$pids $!"
}
agent a1
agent a2

# $1 epoch: both stages' checkpoints of it reached the controller (a
# resume goes back to the newest boundary every stage has: with only a2's
# the resume would name an older one, which a1 may still hold in memory);
# $2 optional command run then; a2 killed and started again at once.
restart_a2_after() {
    if wait_for "$T/ctl.log" 60 "checkpoint of 'a2' (blocks [0-9-]*, epoch $1) saved" &&
       wait_for "$T/ctl.log" 60 "checkpoint of 'a1' (blocks [0-9-]*, epoch $1) saved"; then
        ${2:-:}
        eval "kill -KILL \$pid_a2"
        sleep 0.3
        agent a2
        pass "a2 killed and restarted after epoch $1"
    else
        fail "a2 checkpointed epoch $1"
    fi
}

# 1. Miss: a1's own copies are gone (a1 writes its copy before it sends
# the checkpoint, so the copy of epoch 1 exists when the controller has it).
drop_a1_copies() { rm -f "$T"/s-a1/a1-*-e*.ckpt; }
restart_a2_after 1 drop_a1_copies
rm -f "$T"/s-a1/a1-*-e*.ckpt        # in case a1 saved another meanwhile
wait_for "$T/ctl.log" 30 "sent to 'a1' on its request" &&
    pass "a1 lacked its own copy, asked, and the controller sent the payload" ||
    fail "a1's checkpoint-request answered with the payload"
check "the controller named a1's checkpoint without its payload" \
    "grep -q \"stage 0 resumes from checkpoint .*a1's own copy: payload not sent\" '$T/ctl.log'"
check "a1 said why it asked (own copy unusable)" \
    "grep -q 'own copy unusable' '$T/a1.log'"
check "a2 (registered again) got its checkpoint as payload" \
    "grep -q 'stage 1 resumes from checkpoint .* bytes, made by a2)' '$T/ctl.log'"

# 2. Hit: a1 still has its copy of the boundary.
restart_a2_after 2
wait_for "$T/a1.log" 30 "this agent's own copy" &&
    pass "a1 resumed from its own copy, nothing sent to it" ||
    fail "a1 resumed from its own copy"
n=$(grep -c "a1's own copy: payload not sent" "$T/ctl.log")
check "the controller sent a1 no payload on both resumes ($n)" "[ $n -ge 2 ]"

ok=1
for a in a1 a2; do
    wait_for "$T/$a.out" 120 "epoch=3" || ok=0
done
[ $ok = 1 ] && pass "both agents finished epoch 3" || fail "both agents finished"
st=$("$B/edgetrain" status --controller "http://127.0.0.1:$HPORT" --json)
sent=$(echo "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["resume"]["checkpoints_sent"])')
loc=$(echo "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["resume"]["checkpoints_local"])')
echo "figure: checkpoints_sent=$sent checkpoints_local=$loc"
# Every payload the log shows (a2's re-registration also gets the current
# generation again, with its checkpoint, before the resume's).
logged=$(grep -c "resumes from checkpoint .* bytes, made by\|sent to '.*' on its request" "$T/ctl.log")
check "/status counts the $logged payloads sent (a2 on both resumes, a1 on request)" \
    "[ '$sent' = '$logged' ] && [ '$sent' -ge 3 ]"
# Two resumes of ours; a busy machine may add an epoch boundary re-placement
# (the same stages, measured faster), which resumes both from own copies.
own=$(grep -c "own copy: payload not sent" "$T/ctl.log")
check "/status counts the $own resumes from the agent's own copy" \
    "[ '$loc' = '$own' ] && [ '$loc' -ge 2 ]"
worst=0
for d in "$T/ckpt" "$T/s-a1" "$T/s-a2"; do
    for r in $(ls "$d" | sed -n 's/.*-\(b[0-9]*-[0-9]*\)-e[0-9]*\.ckpt$/\1/p' | sort | uniq); do
        c=$(ls "$d" | grep -c -- "-$r-e[0-9]*\.ckpt$")
        [ "$c" -gt $worst ] && worst=$c
    done
done
check "checkpoint directories keep at most 2 epochs per range ($worst)" \
    "[ $worst -ge 1 ] && [ $worst -le 2 ]"
# A request for a checkpoint nobody holds, from a client that speaks the
# protocol (a3, no key): an Error naming it, then a heartbeat is still
# echoed and the controller keeps serving.
reply=$(python3 - "$P" <<'EOF2'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
def send(t, meta):
    s.sendall(b"ETRN" + struct.pack(">BBHII", 1, t, 0, len(meta), 0) + meta)
def recv():
    h = b""
    while len(h) < 16:
        h += s.recv(16 - len(h))
    t, ml, pl = h[5], *struct.unpack(">II", h[8:16])
    m = b""
    while len(m) < ml + pl:
        m += s.recv(ml + pl - len(m))
    return t, m
recv()                                          # challenge
addr = b"127.0.0.1:%d" % (int(sys.argv[1]) + 3)
send(2, b"\x0a\x02a3\x12" + bytes([len(addr)]) + addr)  # hello
assert recv()[0] == 3                           # welcome
send(14, b"\x10\x07\x18\x01\x20\x02\x28\x09")  # run 7, b1-2, e9
t, m = recv()
while t == 4:                                   # heartbeats
    t, m = recv()
send(4, b"\x08\x2a")                            # heartbeat seq 42
t2, m2 = recv()
while t2 != 4:
    t2, m2 = recv()
print(t, m[4:].decode(errors="replace"), "echo" if m2[:2] == b"\x08\x2a" else "")
EOF2
)
echo "  checkpoint-request for run 7: $reply"
check "a bad checkpoint-request gets an Error naming it, the channel stays up" \
    "echo \"\$reply\" | grep -q '^8 .*checkpoint-request for 0000000000000007-b1-2-e9: not the current run.* echo\$'"
exit $([ $fails -eq 0 ] && echo 0 || echo 1)
