#!/bin/sh
# Integration: the whole controller (edgetrain-controller, not a driver)
# with a real ovs-vswitchd and agents registering over the management
# channel.
#
#    h1 --1-[ s1 ]-2------link0------2-[ s2 ]-1-- h2
#                 -3------link1------3-
#
# h1 and h2 are network namespaces (data plane); `edgetrain agent-sim` h1
# and h2 register from the root namespace (management is out of band). The
# controller plans a 2-stage run, routes the h1 -> h2 stream over two
# edge-disjoint paths, installs the flows and sends the Assignments.
# Checks: dump-flows shows both sub-streams pinned to different links in
# both directions, traffic follows them (per-flow counters), and a link set
# down is routed around: new flows, packets on the other link within 1 s,
# a new Assignment generation, /status showing the link down.
# Without root or Open vSwitch it prints SKIP and counts nothing.
set -u
BUILD=${BUILD:-build}
BIN=$BUILD/bin
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/lib/ovs.sh"
. "$HERE/lib/check.sh"
TCPFLOW="python3 $HERE/lib/tcpflow.py"

skip() { echo "SKIP: controller_ovs: $*"; exit 0; }
ovs_available || skip "needs root and openvswitch-switch"
for c in ip ethtool python3; do
    command -v $c >/dev/null 2>&1 || skip "needs $c"
done

n=$(( $$ % 100000 ))
P=etc$n
D=$(mktemp -d /tmp/et-ctlovs.XXXXXX)
NS1=${P}h1 NS2=${P}h2 SW=${P}sw
pids=""

cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    ovs_stop "$D" "$SW"
    ip netns del "$NS1" 2>/dev/null
    ip netns del "$NS2" 2>/dev/null
    if [ "$failures" -ne 0 ]; then
        echo "--- controller log (tail) ---"; tail -n 40 "$D/ctl.err"
    fi
    [ -z "${KEEP:-}" ] && rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

status_py() {   # python expression over s (the /status document)
    "$BIN/edgetrain" status --controller "127.0.0.1:$HPORT" --json |
        python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"
}

# --- network (as in openflow_ovs.sh) ------------------------------------------
ip netns add "$NS1" || skip "cannot create network namespaces"
ip netns add "$NS2"
ovs_start "$D" "$SW" || { fail "private ovs-vswitchd starts"; exit 1; }
ovs_two_links "$SW" "$NS1" "$NS2" "$P" ||
    { fail "namespaces, veths and bridges set up"; exit 1; }
B1=${P}b1 B2=${P}b2

cat >"$D/topo.json" <<EOF
{"name": "two-links",
 "switches": [{"name": "s1", "dpid": 1}, {"name": "s2", "dpid": 2}],
 "agents": [
   {"name": "h1", "data": "10.0.0.1:5001", "switch": "s1", "port": 1, "gflops": 10},
   {"name": "h2", "data": "10.0.0.2:5001", "switch": "s2", "port": 1, "gflops": 10}],
 "links": [
   {"a": "s1", "a_port": 2, "b": "s2", "b_port": 2, "capacity_mbps": 100, "delay_ms": 1},
   {"a": "s1", "a_port": 3, "b": "s2", "b_port": 3, "capacity_mbps": 100, "delay_ms": 1}]}
EOF

# --- controller and agents ----------------------------------------------------
"$BIN/edgetrain-controller" --topology "$D/topo.json" --listen 127.0.0.1:0 \
    --http 127.0.0.1:0 --openflow "punix:$D/of.sock" --expect-agents 2 \
    --stages 2 --k 2 --disjoint --heartbeat-ms 300 --replan-threshold 1 \
    >"$D/ctl.out" 2>"$D/ctl.err" &
CTLPID=$!
pids="$pids $CTLPID"
wait_grep "$D/ctl.out" "^listening" 5 || { fail "controller starts"; exit 1; }
MPORT=$(sed -n 's/^listening mgmt=\([0-9]*\) http=.*/\1/p' "$D/ctl.out")
HPORT=$(sed -n 's/^listening mgmt=[0-9]* http=\([0-9]*\)/\1/p' "$D/ctl.out")
for b in 1 2; do ovs-vsctl set-controller "${P}b$b" "unix:$D/of.sock"; done
for h in h1 h2; do
    "$BIN/edgetrain" agent-sim --controller 127.0.0.1:$MPORT --name $h \
        >"$D/$h.out" 2>&1 &
    pids="$pids $!"
done

_end=$(( $(now_ms) + 10000 ))
until status_py 'all(x["connected"] for x in s["switches"])' 2>/dev/null; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.1
done
status_py 'all(x["connected"] for x in s["switches"])' &&
    pass "both switches connect to the controller" ||
    fail "both switches connect to the controller"

wait_grep "$D/h1.out" "^assignment" 5
if grep -q 'stage=0/2 .*down=h2@10.0.0.2:5001 subs=\[0:41000->5001 w=0.5000 hops=s1,s2;1:41001->5001 w=0.5000 hops=s1,s2\]' "$D/h1.out" &&
   grep -q 'stage=1/2 .*up=h1@10.0.0.1:5001' "$D/h2.out"; then
    pass "assignments: h1 -> h2 over two sub-streams of weight 0.5 (ports 41000, 41001)"
else
    fail "assignments: h1 -> h2 over two sub-streams"; cat "$D/h1.out"
fi

l_inst=$(grep -n 'flows of generation 1 installed' "$D/ctl.err" | head -n 1 | cut -d: -f1)
l_asg=$(grep -n 'gen 1: stage 0/2' "$D/ctl.err" | head -n 1 | cut -d: -f1)
if [ -n "$l_inst" ] && [ -n "$l_asg" ] && [ "$l_inst" -lt "$l_asg" ]; then
    pass "flows installed on both switches before the Assignments went out"
else
    fail "flows installed before the Assignments (lines ${l_inst:-?} / ${l_asg:-?})"
fi

# Both sub-streams pinned, on different links, both directions.
_end=$(( $(now_ms) + 5000 ))
while [ -z "$(ovs_flow_actions "$B1" "tcp,in_port=1,tp_src=41001")" ]; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.1
done
a0=$(ovs_flow_actions "$B1" "tcp,in_port=1,tp_src=41000")
a1=$(ovs_flow_actions "$B1" "tcp,in_port=1,tp_src=41001")
r0=$(ovs_flow_actions "$B2" "tcp,in_port=1,tp_dst=41000")
echo "s1: sub-stream 0 -> $a0, sub-stream 1 -> $a1; s2 reverse of 0 -> $r0"
if [ -n "$a0" ] && [ -n "$a1" ] && [ "$a0" != "$a1" ] &&
   [ "$(echo "$a0 $a1" | tr ' ' '\n' | sort | tr '\n' ' ')" = "output:2 output:3 " ] &&
   [ "$r0" = "$a0" ]; then
    pass "dump-flows: the two sub-streams are pinned to different links, both directions"
else
    fail "dump-flows: the two sub-streams are pinned to different links"
    ovs-ofctl -O OpenFlow13 dump-flows "$B1"
fi
port0=${a0#output:}
port1=${a1#output:}

ip netns exec "$NS2" $TCPFLOW server 5001 20 &
pids="$pids $!"
sleep 0.5
ip netns exec "$NS1" $TCPFLOW client 10.0.0.2 5001 41000 15 10 &
pids="$pids $!"
ip netns exec "$NS1" $TCPFLOW client 10.0.0.2 5001 41001 15 10 &
pids="$pids $!"
# Until both flows counted traffic (up to 8 s: a loaded machine starts the
# two clients late).
_end=$(( $(now_ms) + 8000 ))
while :; do
    c00=$(ovs_flow_packets "$B2" "tcp,in_port=$port0,tp_src=41000")
    c11=$(ovs_flow_packets "$B2" "tcp,in_port=$port1,tp_src=41001")
    [ "${c00:-0}" -gt 20 ] && [ "${c11:-0}" -gt 20 ] && break
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.2
done
c01=$(ovs_flow_packets "$B2" "tcp,in_port=$port1,tp_src=41000")
echo "at s2: sub-stream 0 on port $port0: ${c00:-none} packets (other link ${c01:-none}); sub-stream 1 on port $port1: ${c11:-none}"
if [ "${c00:-0}" -gt 20 ] && [ "${c11:-0}" -gt 20 ] && [ -z "$c01" ]; then
    pass "traffic of each sub-stream follows its own link (per-flow counters)"
else
    fail "traffic of each sub-stream follows its own link"
fi

# --- the link of sub-stream 0 goes down ----------------------------------------
t0=$(now_ms)
ip -n "$SW" link set "s1p$port0" down
moved=""
while [ $(( $(now_ms) - t0 )) -lt 5000 ]; do
    c=$(ovs_flow_packets "$B2" "tcp,in_port=$port1,tp_src=41000")
    if [ "${c:-0}" -gt 0 ]; then moved=$(( $(now_ms) - t0 )); break; fi
    sleep 0.02
done
echo "link down -> sub-stream 0's packets on the other link after ${moved:-never} ms"
if [ -n "$moved" ] && [ "$moved" -lt 1000 ]; then
    pass "link down: sub-stream re-routed and flowing again within 1 s (${moved} ms)"
else
    fail "link down: sub-stream re-routed within 1 s (${moved:-never} ms)"
fi
if wait_grep "$D/h1.out" "gen=2 stage=0/2" 3 &&
   grep 'gen=2 stage=0/2' "$D/h1.out" | grep -q 'subs=\[0:41000->5001 w=1.0000 hops=s1,s2\]'; then
    pass "agents get generation 2: one sub-stream left, weight 1"
else
    fail "agents get generation 2 after the link went down"; tail -n 3 "$D/h1.out"
fi
status_py "[l['up'] for l in s['links'] if not l['access']] .count(False) == 1 and s['run']['path_replans'] >= 1 and s['run']['generation'] == 2" &&
    pass "/status: the link is down, paths re-planned, generation 2" ||
    fail "/status: the link is down, paths re-planned, generation 2"
[ "$(ovs_flow_actions "$B1" "tcp,in_port=1,tp_src=41000")" = "output:$port1" ] &&
    pass "dump-flows: sub-stream 0 now leaves s1 on port $port1" ||
    fail "dump-flows: sub-stream 0 now leaves s1 on port $port1"

kill -TERM "$CTLPID"
wait "$CTLPID"; rc=$?
[ "$rc" -eq 0 ] && ! grep -q Sanitizer "$D/ctl.err" &&
    pass "controller (with its OpenFlow thread) exits 0 on SIGTERM" ||
    fail "controller exits 0 on SIGTERM (exit $rc)"

[ "$failures" -eq 0 ]
