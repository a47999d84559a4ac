#!/bin/sh
# The namespace emulator's network alone (no edgetrain processes): real OVS
# bridges (userspace datapath) in their own namespace, one namespace per
# agent, tbf-shaped veth links. Checks connectivity, the shaped rate, that
# teardown leaves nothing behind, and that it refuses to run without root.
set -u
cd "$(dirname "$0")/../.."
# A run id of our own: concurrent runs never share object names.
id=$(printf "%03x" $(( $$ % 4096 )))
fail=0
pass() { echo "PASS: $1"; }
failc() { echo "FAIL: $1"; fail=1; }

if [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null; then
    echo "SKIP: emulator needs root and openvswitch-switch"
    exit 0
fi

out=$(mktemp)
# The switches get plain L2 forwarding here; the controller's flows are
# tested elsewhere. The chain has no loop, so NORMAL is safe.
topology/emulate topology/linear-4pi.json --net-only --id "$id" --exec '
    for b in $(env | sed -n "s/^EMU_BR_[^=]*=//p"); do
        ovs-ofctl -O OpenFlow13 add-flow $b "actions=NORMAL" || exit 1
    done
    ip netns exec $EMU_NS_pi1 ping -c 3 -i 0.2 -W 2 10.0.1.4 >/dev/null &&
        echo ping-ok
    ip netns exec $EMU_NS_pi4 iperf3 -s -1 -D -p 5301
    sleep 0.5
    ip netns exec $EMU_NS_pi1 iperf3 -c 10.0.1.4 -p 5301 -t 3 -J |
        python3 -c "import json,sys; print(\"rate_mbps=%.1f\" % (json.load(sys.stdin)[\"end\"][\"sum_received\"][\"bits_per_second\"]/1e6))"
' >"$out" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "emulator exits 0" || { failc "emulator exits 0 (rc $rc)"; cat "$out"; }
grep -q ping-ok "$out" && pass "ping across 3 switches" || failc "ping across 3 switches"
rate=$(sed -n 's/^rate_mbps=//p' "$out")
echo "measured: ${rate:-none} Mbit/s over 100 Mbit/s links"
if [ -n "$rate" ] && python3 -c "import sys; r=float('$rate'); sys.exit(0 if 5 <= r <= 105 else 1)"; then
    pass "tbf holds the chain to its 100 Mbit/s capacity (${rate})"
else
    failc "tbf holds the chain to its 100 Mbit/s capacity (${rate:-none})"
fi
left=$(ip netns list | grep -c "^et$id" ; ip -o link | grep -c "et$id" ; ls /sys/fs/cgroup/cpu 2>/dev/null | grep -c "^et$id"; ls /tmp | grep -c "^edgetrain-et$id")
if [ "$(echo $left | tr -d ' 0')" = "" ]; then
    pass "teardown left no namespace, link, cgroup or run dir"
else
    failc "teardown left objects behind: $left"
    topology/emulate --cleanup >/dev/null 2>&1
fi
msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 topology/emulate topology/linear-4pi.json 2>&1)
case "$msg" in
*"needs root"*) pass "refuses without root, saying why" ;;
*) failc "refuses without root, saying why: $msg" ;;
esac
bad=$(mktemp); echo '{"switches": [{"name": "s1"}]}' >"$bad"
msg=$(topology/emulate "$bad" --net-only 2>&1)
case "$msg" in
*"switches[0]: needs name and dpid"*) pass "bad topology named with its item" ;;
*) failc "bad topology named with its item: $msg" ;;
esac
rm -f "$out" "$bad"
exit $fail
