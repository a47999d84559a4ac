#!/bin/sh
# Integration: edgetrain-controller with real processes on loopback.
#
# The controller (loopback-3 topology: no switches) and `edgetrain
# agent-sim` clients talk over real TCP. Checks: an unknown agent is
# refused, three agents register and the run starts by itself
# (--expect-agents 3) with consistent Assignments, GET /status has the
# documented fields, GET /metrics, a silent agent is declared dead after 3
# heartbeat periods, a malformed frame and a frame out of order close only
# their connection, a returning agent gets its stage again, POST /start
# during a run is refused, and HMAC authentication with a cluster key.
set -u
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/et-ctl.XXXXXX)
. tests/lib/procs.sh

if start_controller ctl --topology topology/loopback-3.json --expect-agents 3 \
        --stages 3 --heartbeat-ms 200 --substreams 2 --epochs 2; then
    MAINPID=$CTLPID
    pass "controller starts and reports its ports"
else
    fail "controller starts"; exit 1
fi

# 1. Unknown agent: Error frame with the reason, connection closed.
"$BIN/edgetrain" agent-sim --controller 127.0.0.1:$MPORT --name intruder \
    --exit-after-ms 2000 >"$T/intruder.out" 2>&1
check "unknown agent refused with an Error naming it" \
    "grep -q \"error code=2 message=\\\"unknown agent 'intruder'\" '$T/intruder.out' && grep -q 'closed by controller' '$T/intruder.out'"

# 2. Three agents; a3 goes silent after 1.2 s.
sim a1.out --name a1 --gflops 20 --metrics-ms 200 --data 0.0.0.0:7101
sim a2.out --name a2 --gflops 20 --metrics-ms 200
sim a3.out --name a3 --gflops 20 --silent-after-ms 1200
for a in a1 a2 a3; do wait_for "$T/$a.out" 5 "^assignment"; done
check "each agent got Challenge, Welcome (heartbeat 200 ms, timeout 600 ms)" \
    "for a in a1 a2 a3; do grep -q 'challenge nonce=32B version=1' $T/\$a.out && grep -q 'heartbeat_ms=200 timeout_ms=600' $T/\$a.out || exit 1; done"
check "run started by itself: stages 0,1,2 on a1,a2,a3" \
    "grep -q 'stage=0/3 blocks=1-' $T/a1.out && grep -q 'stage=1/3' $T/a2.out && grep -q 'stage=2/3 blocks=[0-9]*-13 ' $T/a3.out"
run1=$(sed -n 's/^assignment run=\([0-9a-f]*\) .*/\1/p' "$T/a1.out" | head -n 1)
check "one run id and a 16-byte token for every stage" \
    "[ -n '$run1' ] && grep -q 'run=$run1 .*token=16B' $T/a2.out && grep -q 'run=$run1 .*token=16B' $T/a3.out"
check "middle stage: upstream a1, downstream a3 with 2 sub-streams on distinct ports" \
    "grep -q 'up=a1@127.0.0.1:7101 subs=\[0:41000->7102 w=0.5000 hops=;1:41001->7102' $T/a2.out && grep -q 'down=a3@127.0.0.1:7103 subs=\[0:41008->7103 w=0.5000 hops=;1:41009->7103' $T/a2.out"

# 3. /status fields.
status_json >"$T/status.json"
check "GET /status has agents/links/placement/paths as documented" \
    "python3 - '$T/status.json' <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
assert sorted(a['name'] for a in s['agents']) == ['a1', 'a2', 'a3']
assert isinstance(s['links'], list)
pl = s['placement']
assert [p['agent'] for p in pl] == ['a1', 'a2', 'a3'], pl
blocks = [b for p in pl for b in p['blocks']]
assert blocks == list(range(1, 14)), blocks
assert [(p['from'], p['to']) for p in s['paths']] == [('a1', 'a2'), ('a2', 'a3')]
for p in s['paths']:
    assert len(p['substreams']) == 2
    assert abs(sum(x['weight'] for x in p['substreams']) - 1) < 1e-9
    for x in p['substreams']:
        assert x['hops'] == []
assert s['run']['state'] == 'running' and s['run']['generation'] == 1
EOF"
check_within "agents' Metrics reach /status" 5 \
    "status_json | python3 -c 'import json,sys; s=json.load(sys.stdin); a=[x for x in s[\"agents\"] if x[\"name\"]==\"a1\"][0]; assert a[\"metrics\"][\"step\"] >= 1 and a[\"metrics\"][\"images_per_s\"] == 100'"
"$BIN/edgetrain" status --controller 127.0.0.1:$HPORT >"$T/status.txt"
check "edgetrain status prints placement and paths for a person" \
    "grep -q '^placement:' $T/status.txt && grep -q 'stage 1  a2' $T/status.txt && grep -q 'a1 -> a2' $T/status.txt"
metrics=$(curl -s "http://127.0.0.1:$HPORT/metrics" 2>/dev/null || python3 -c "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:$HPORT/metrics').read().decode())")
check "GET /metrics is Prometheus text with agents and sub-stream weights" \
    "echo \"\$metrics\" | grep -q '^# TYPE edgetrain_agents_alive gauge' && echo \"\$metrics\" | grep -q 'edgetrain_substream_weight{from=\"a1\",to=\"a2\",id=\"1\"} 0.5'"

# 4. Heartbeat timeout: a3 silent since 1.2 s, dead 3 x 200 ms later.
if wait_for "$T/ctl.err" 5 "agent 'a3' is dead: heartbeat timeout"; then
    pass "silent agent declared dead after 3 missed heartbeat periods"
else
    fail "silent agent declared dead"
fi
check "/status shows a3 dead and the run degraded" \
    "status_json | python3 -c 'import json,sys; s=json.load(sys.stdin); a={x[\"name\"]: x[\"alive\"] for x in s[\"agents\"]}; assert a == {\"a1\": True, \"a2\": True, \"a3\": False}, a; assert s[\"run\"][\"state\"] == \"degraded\"'"

# 5. Bad input closes one connection only.
python3 - "$MPORT" <<'EOF'
import socket, struct, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port)); s.recv(4096)
s.sendall(b"GARBAGE!" * 4); time.sleep(0.2); s.close()
# A well-formed heartbeat (empty meta) before Hello: out of order.
s = socket.create_connection(("127.0.0.1", port)); s.recv(4096)
s.sendall(struct.pack(">IBBHII", 0x4554524e, 1, 4, 0, 0, 0)); time.sleep(0.2)
s.close()
EOF
check "malformed frame closes that connection with a logged reason" \
    "grep -q 'malformed frame: bad magic' $T/ctl.err"
check "frame out of order (heartbeat before hello) is a protocol error" \
    "grep -q 'protocol error: expected hello, got heartbeat' $T/ctl.err"
check "controller keeps serving after bad input" \
    "status_json | python3 -c 'import json,sys; assert len(json.load(sys.stdin)[\"agents\"]) == 3'"

# 6. a3 comes back: it gets its stage of the same run again.
sim a3b.out --name a3 --gflops 20
wait_for "$T/a3b.out" 5 "^assignment"
check "returning agent gets its stage of the same run again" \
    "grep -q 'assignment run=$run1 gen=1 stage=2/3' $T/a3b.out"
check_within "run back to running once every stage agent is alive" 5 \
    "status_json | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"run\"][\"state\"] == \"running\"'"
if "$BIN/edgetrain" start --controller 127.0.0.1:$HPORT >"$T/start.out" 2>&1; then
    fail "POST /start during a run is refused"
else
    check "POST /start during a run is refused (409)" "grep -q 'HTTP 409' $T/start.out"
fi

# 6b. a2 comes back listening elsewhere: the whole run is re-deployed.
sim a2c.out --name a2 --data 127.0.0.1:7222
if wait_for "$T/a1.out" 5 "gen=2 "; then
    check "agent moved its data port: generation 2 tells its upstream" \
        "grep 'gen=2 ' $T/a1.out | grep -q 'down=a2@127.0.0.1:7222 subs=\[0:41000->7222'"
else
    fail "agent moved its data port: generation 2 tells its upstream"
fi

# 7. Cluster key: HMAC of the challenge.
printf 'secret-cluster-key\n' >"$T/key"
printf 'another-key\n' >"$T/badkey"
if start_controller ctlk --topology topology/loopback-3.json --key-file "$T/key"; then
    "$BIN/edgetrain" agent-sim --controller 127.0.0.1:$MPORT --name a1 \
        --key-file "$T/badkey" --exit-after-ms 2000 >"$T/k1.out" 2>&1
    "$BIN/edgetrain" agent-sim --controller 127.0.0.1:$MPORT --name a1 \
        --key-file "$T/key" --exit-after-ms 600 >"$T/k2.out" 2>&1
    check "wrong cluster key refused, right key welcomed" \
        "grep -q 'authentication failed' $T/k1.out && grep -q '^welcome' $T/k2.out"
    "$BIN/edgetrain" start --controller 127.0.0.1:$HPORT --key-file "$T/key" >"$T/start2.out" 2>&1
    check "POST /start with no agent alive fails with a reason" \
        "grep -q 'HTTP 500' $T/start2.out && grep -q 'no agent registered' $T/ctlk.err"
else
    fail "controller with --key-file starts"
fi

# 7b. Offline planning of the diamond: both disjoint paths, 2/3 and 1/3.
"$BIN/edgetrain" plan --topology topology/diamond-4pi.json --disjoint --compare >"$T/plan.out" 2>&1
check "edgetrain plan: diamond streams over c1 (2/3) and c2 (1/3); single does not fit 1 GiB" \
    "grep -q '#0 w 0.667 via e1 c1 e2' $T/plan.out && grep -q '#1 w 0.333 via e1 c2 e2' $T/plan.out && grep -q 'placement single:' $T/plan.out && grep -q 'infeasible' $T/plan.out"

# 8. Placement changes only at an epoch boundary: a2 comes back 10x faster;
#    when every stage reports epoch 1 the controller re-places (gen 2).
if start_controller ctle --topology topology/loopback-3.json --expect-agents 3 \
        --heartbeat-ms 200 --epochs 3; then
    sim e1.out --name a1 --gflops 20 --metrics-ms 100 --epoch-ms 800
    sim e2.out --name a2 --gflops 20 --metrics-ms 100 --epoch-ms 800
    sim e3.out --name a3 --gflops 1 --metrics-ms 100 --epoch-ms 800
    wait_for "$T/e1.out" 5 "^assignment"
    sleep 0.3
    check "no re-placement before an epoch boundary" "! grep -q 'gen=2' $T/e1.out"
    sim e2b.out --name a2 --gflops 200 --metrics-ms 100 --epoch-ms 800
    if wait_for "$T/e1.out" 5 "gen=2 "; then
        g1=$(grep '^assignment' "$T/e1.out" | head -n 1 | sed 's/.*blocks=\([0-9-]*\).*/\1/')
        g2=$(grep 'gen=2 ' "$T/e1.out" | head -n 1 | sed 's/.*blocks=\([0-9-]*\).*/\1/')
        echo "source stage: blocks $g1 in generation 1, $g2 in generation 2"
        check "epoch boundary: faster agent -> new placement (gen 2, start_epoch >= 1)" \
            "[ '$g1' != '$g2' ] && grep 'gen=2 ' $T/e1.out | grep -q 'start_epoch=[1-9]' && status_json | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"run\"]; assert r[\"placement_replans\"] == 1 and r[\"generation\"] == 2, r'"
    else
        fail "epoch boundary: new placement sent"
    fi
else
    fail "controller for the epoch test starts"
fi

# 8b. The same faster agent, but the boundary is the run's last (--epochs
#     1): no new placement there (it would resume every stage past the end,
#     where nothing trains or evaluates, and the run would never be done).
if start_controller ctll --topology topology/loopback-3.json --expect-agents 3 \
        --heartbeat-ms 200 --epochs 1; then
    sim l1.out --name a1 --gflops 20 --metrics-ms 100 --epoch-ms 800 --eval
    sim l2.out --name a2 --gflops 20 --metrics-ms 100 --epoch-ms 800 --eval
    sim l3.out --name a3 --gflops 1 --metrics-ms 100 --epoch-ms 800 --eval
    wait_for "$T/l1.out" 5 "^assignment"
    sleep 0.3
    sim l2b.out --name a2 --gflops 200 --metrics-ms 100 --epoch-ms 800 --eval
    i=0
    while [ $i -lt 50 ] && ! status_json 2>/dev/null | grep -q '"state": *"done"'; do
        sleep 0.1; i=$((i + 1))
    done
    check "last epoch boundary: no new placement, the run is done" \
        "! grep -q 'gen=2' $T/l1.out && status_json | python3 -c 'import json,sys; r=json.load(sys.stdin)[\"run\"]; assert r[\"state\"] == \"done\" and r[\"placement_replans\"] == 0 and r[\"epoch_boundary\"] == 1, r'"
else
    fail "controller for the last-boundary test starts"
fi

# 9. Controller restart: agents report what they run (Hello.current); the
#    new controller continues that run instead of starting another.
if start_controller ctlr --topology topology/loopback-3.json --expect-agents 3; then
    sim r1.out --name a1 --current 1234abcd:5:0:3:1-3:2
    sim r2.out --name a2 --current 1234abcd:5:1:3:4-8:3
    sim r3.out --name a3 --current 1234abcd:5:2:3:9-13:2
    for a in r1 r2 r3; do wait_for "$T/$a.out" 5 "^assignment"; done
    check "restarted controller adopts the agents' run (same id and token, gen 6, epoch 2)" \
        "grep -q 'run=000000001234abcd gen=6 stage=0/3 blocks=1-3 .*token=16B:abababab start_epoch=2' $T/r1.out && grep -q 'run=000000001234abcd gen=6 stage=1/3 blocks=4-8 ' $T/r2.out && grep -q 'stage=2/3 blocks=9-13 ' $T/r3.out && grep -q 'adopted from the agents' $T/ctlr.err"
else
    fail "controller for the restart test starts"
fi

# 10. Failover: a stage agent dead for --failover-s: the run is re-placed
#     on the agents still alive.
if start_controller ctlf --topology topology/loopback-3.json --expect-agents 3 \
        --stages 3 --heartbeat-ms 200 --failover-s 1; then
    sim f1.out --name a1 --gflops 20
    sim f2.out --name a2 --gflops 20
    sim f3.out --name a3 --gflops 20 --silent-after-ms 500
    if wait_for "$T/f1.out" 6 "gen=2 "; then
        check "failover: a3 dead 1 s -> generation 2 placed on a1 and a2 only" \
            "status_json | python3 -c 'import json,sys; s=json.load(sys.stdin); p=[x[\"agent\"] for x in s[\"placement\"]]; assert \"a3\" not in p and p[0] == \"a1\", p; assert s[\"run\"][\"state\"] == \"running\" and s[\"run\"][\"generation\"] == 2'"
    else
        fail "failover: new placement after a stage agent died"
    fi
else
    fail "controller for the failover test starts"
fi

# 11. Clean shutdown on SIGTERM (sanitizer builds: no leak reports).
kill -TERM "$MAINPID"
wait "$MAINPID"; rc=$?
check "controller exits 0 on SIGTERM, no sanitizer report" \
    "[ $rc -eq 0 ] && ! grep -q Sanitizer '$T/ctl.err'"

[ "$fails" -eq 0 ]
