#!/bin/sh
# Integration: the OpenFlow southbound against a real ovs-vswitchd.
#
# A private OVS (own ovsdb-server, db, sockets; userspace datapath) runs two
# bridges joined by two parallel veth links; hosts h1 and h2 live in network
# namespaces:
#
#    h1 --1-[ s1 ]-2------link0------2-[ s2 ]-1-- h2
#                 -3------link1------3-
#
# tests/drivers/sbdriver (the southbound inside a libevent loop, as in
# edgetrain-controller) is the bridges' controller.  Checks: handshake,
# base flows and ping, two pinned TCP sub-streams on different links (per
# flow packet counters), port statistics, a link set down re-routed (time
# measured), and a full resync after the switch reconnects.
# Without root or Open vSwitch it prints SKIP and counts nothing.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/lib/ovs.sh"
. "$HERE/lib/check.sh"
DRIVER=$BUILD/tests/drivers/sbdriver
TCPFLOW="python3 $HERE/lib/tcpflow.py"

skip() { echo "SKIP: openflow_ovs: $*"; exit 0; }
ovs_available || skip "needs root and openvswitch-switch"
for c in ip ethtool python3; do
    command -v $c >/dev/null 2>&1 || skip "needs $c"
done
[ -x "$DRIVER" ] || { echo "FAIL: sbdriver built ($DRIVER missing)"; exit 1; }

n=$(( $$ % 100000 ))
P=eto$n                         # prefix of every name we create
D=$(mktemp -d /tmp/et-openflow.XXXXXX)
NS1=${P}h1 NS2=${P}h2 SW=${P}sw   # hosts' and the switches' namespaces
pids=""

cleanup() {
    [ -n "${drv_pid:-}" ] && kill "$drv_pid" 2>/dev/null
    for p in $pids; do kill "$p" 2>/dev/null; done
    exec 3>&- 2>/dev/null
    ovs_stop "$D" "$SW"          # also deletes the veths in $SW
    ip netns del "$NS1" 2>/dev/null
    ip netns del "$NS2" 2>/dev/null
    if [ "$failures" -ne 0 ] && [ -z "${KEEP:-}" ]; then
        echo "--- driver log (tail) ---"; tail -n 30 "$D/driver.log"
        echo "--- driver stderr (tail) ---"; tail -n 20 "$D/driver.err"
    fi
    [ -z "${KEEP:-}" ] && rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM


wait_log() { wait_grep "$D/driver.log" "$@"; }


# --- network ----------------------------------------------------------------
ip netns add "$NS1" || skip "cannot create network namespaces"
ip netns add "$NS2"
ovs_start "$D" "$SW" || { fail "private ovs-vswitchd starts"; exit 1; }

B1=${P}b1 B2=${P}b2
if ovs_two_links "$SW" "$NS1" "$NS2" "$P"; then
    pass "namespaces, veths and two netdev bridges set up"
else
    fail "namespaces, veths and two netdev bridges set up"; exit 1
fi

cat >"$D/topo" <<EOF
switch s1 0x1
switch s2 0x2
host h1 10.0.0.1 s1 1
host h2 10.0.0.2 s2 1
link s1 2 s2 2
link s1 3 s2 3
EOF

# --- controller ---------------------------------------------------------------
mkfifo "$D/cmd"
"$DRIVER" --topo "$D/topo" --listen "punix:$D/of.sock" \
    <"$D/cmd" >"$D/driver.log" 2>"$D/driver.err" &
drv_pid=$!
exec 3>"$D/cmd"
wait_log "listening" 5 || { fail "driver listens"; exit 1; }
for b in 1 2; do ovs-vsctl set-controller "${P}b$b" "unix:$D/of.sock"; done

if wait_log "switch-up s1" 10 && wait_log "switch-up s2" 10; then
    pass "both switches complete the OpenFlow 1.3 handshake and are identified"
else
    fail "both switches complete the OpenFlow 1.3 handshake and are identified"
fi
wait_log "port-status s1 2 up" 5 && wait_log "port-status s2 3 up" 5 &&
    pass "port states reported" || fail "port states reported"

# table-miss + ip and arp for 2 hosts = 5 flows per switch.
_end=$(( $(now_ms) + 5000 ))
while [ "$(ovs_edgetrain_flows "$B1")" -lt 5 ] || [ "$(ovs_edgetrain_flows "$B2")" -lt 5 ]; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.1
done
if [ "$(ovs_edgetrain_flows "$B1")" -eq 5 ] && [ "$(ovs_edgetrain_flows "$B2")" -eq 5 ] &&
   ovs-ofctl -O OpenFlow13 dump-flows "$B1" | grep -q 'priority=100,arp,arp_tpa=10.0.0.2 actions=output:2'; then
    pass "dump-flows shows table-miss, ip and arp base flows on both switches"
else
    fail "dump-flows shows table-miss, ip and arp base flows on both switches"
    ovs-ofctl -O OpenFlow13 dump-flows "$B1"
fi
if ip netns exec "$NS1" ping -c 3 -i 0.2 -W 2 10.0.0.2 >"$D/ping.log" 2>&1; then
    pass "ping h1 -> h2 over base connectivity"
else
    fail "ping h1 -> h2 over base connectivity"; cat "$D/ping.log"
fi

# --- two sub-streams pinned to the two links ----------------------------------
echo "route 1 0 1 40001 5001 0" >&3
echo "route 2 0 1 40002 5001 1" >&3
echo "commit" >&3
wait_log "flows-synced gen=1" 5 && pass "routes installed (flows-synced)" ||
    fail "routes installed (flows-synced)"
if [ "$(ovs_flow_actions "$B1" "tcp,in_port=1,tp_src=40001")" = "output:2" ] &&
   [ "$(ovs_flow_actions "$B1" "tcp,in_port=1,tp_src=40002")" = "output:3" ] &&
   [ "$(ovs_flow_actions "$B2" "tcp,in_port=1,tp_dst=40002")" = "output:3" ] &&
   [ "$(ovs_edgetrain_flows "$B1")" -eq 9 ] && [ "$(ovs_edgetrain_flows "$B2")" -eq 9 ]; then
    pass "exact-match sub-stream flows in both directions on both switches"
else
    fail "exact-match sub-stream flows in both directions on both switches"
    ovs-ofctl -O OpenFlow13 dump-flows "$B1"
fi

ip netns exec "$NS2" $TCPFLOW server 5001 30 &
pids="$pids $!"
sleep 0.5
ip netns exec "$NS1" $TCPFLOW client 10.0.0.2 5001 40001 25 10 &
pids="$pids $!"
ip netns exec "$NS1" $TCPFLOW client 10.0.0.2 5001 40002 3 10 &
pids="$pids $!"
sleep 2
a_link0=$(ovs_flow_packets "$B2" "tcp,in_port=2,tp_src=40001")
a_link1=$(ovs_flow_packets "$B2" "tcp,in_port=3,tp_src=40001")
b_link1=$(ovs_flow_packets "$B2" "tcp,in_port=3,tp_src=40002")
b_link0=$(ovs_flow_packets "$B2" "tcp,in_port=2,tp_src=40002")
echo "sub-stream 1: link0 ${a_link0:-none} packets, link1 ${a_link1:-none}; sub-stream 2: link1 ${b_link1:-none}, link0 ${b_link0:-none}"
if [ "${a_link0:-0}" -gt 20 ] && [ "${b_link1:-0}" -gt 20 ] &&
   [ -z "$a_link1" ] && [ -z "$b_link0" ]; then
    pass "sub-stream 1 crosses link0 and sub-stream 2 link1 (per-flow counters)"
else
    fail "sub-stream 1 crosses link0 and sub-stream 2 link1 (per-flow counters)"
fi
if grep -q "port-stats s1 2 rx_bytes=" "$D/driver.log" &&
   [ "$(grep -c 'port-stats s2 1 ' "$D/driver.log")" -ge 2 ]; then
    pass "port statistics polled every second"
else
    fail "port statistics polled every second"
fi

# --- link0 down: sub-stream 1 must move to link1 -----------------------------
t0=$(now_ms)
ip -n "$SW" link set s1p2 down
moved=""
while [ $(( $(now_ms) - t0 )) -lt 5000 ]; do
    c=$(ovs_flow_packets "$B2" "tcp,in_port=3,tp_src=40001")
    if [ "${c:-0}" -gt 0 ]; then moved=$(( $(now_ms) - t0 )); break; fi
    sleep 0.02
done
wait_log "reroute-done" 3
ctl_ms=$(sed -n 's/.*reroute-done ms=\([0-9]*\).*/\1/p' "$D/driver.log" | head -n 1)
echo "link down -> packets on the new path: ${moved:-never} ms (port-status -> flows synced: ${ctl_ms:-?} ms)"
if [ -n "$moved" ] && [ "$moved" -lt 1000 ] &&
   [ "$(ovs_flow_actions "$B1" "tcp,in_port=1,tp_src=40001")" = "output:3" ]; then
    pass "link down re-routed: sub-stream 1 flows over link1 within 1 s (${moved} ms)"
else
    fail "link down re-routed: sub-stream 1 flows over link1 within 1 s (${moved:-never} ms)"
fi
if ip netns exec "$NS1" ping -c 2 -i 0.2 -W 2 10.0.0.2 >"$D/ping2.log" 2>&1; then
    pass "ping still works with link0 down (base flows re-routed)"
else
    fail "ping still works with link0 down (base flows re-routed)"
fi

# --- link0 back up: base flows return to the lower-index link ------------------
ip -n "$SW" link set s1p2 up
_end=$(( $(now_ms) + 5000 ))
while [ "$(base_actions "$B1" 10.0.0.2)" != "output:2" ]; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.05
done
if [ "$(base_actions "$B1" 10.0.0.2)" = "output:2" ] &&
   ip netns exec "$NS1" ping -c 2 -i 0.2 -W 2 10.0.0.2 >/dev/null 2>&1; then
    pass "link0 up again: base flows back on it, ping works"
else
    fail "link0 up again: base flows back on it, ping works"
    echo "s1 towards h2: $(base_actions "$B1" 10.0.0.2)"
    grep -E "port-status|link " "$D/driver.log" | tail -n 6
    ip netns exec "$NS1" ping -c 2 -i 0.2 -W 2 10.0.0.2
fi

# --- same paths, new route ids: cookies replaced in place ------------------------
echo "route 11 0 1 40001 5001 1" >&3
echo "route 12 0 1 40002 5001 1" >&3
echo "commit" >&3
wait_log "flows-synced gen=3" 5
cookie=$(ovs-ofctl -O OpenFlow13 dump-flows "$B1" "tcp,in_port=1,tp_src=40001" |
         sed -n 's/.*cookie=\(0x[0-9a-f]*\),.*/\1/p')
if [ "$cookie" = "0xed6e03000000000b" ] && [ "$(ovs_edgetrain_flows "$B1")" -eq 9 ]; then
    pass "new route ids: cookies replaced in place, no flow added or lost"
else
    fail "new route ids: cookies replaced in place (cookie ${cookie:-none})"
fi

# --- resync after reconnect ----------------------------------------------------
ovs-ofctl -O OpenFlow13 add-flow "$B1" "cookie=0x1,priority=50,actions=drop"
before=$(ovs_edgetrain_flows "$B1")
ovs-vsctl del-controller "$B1"
ovs-vsctl set-controller "$B1" "unix:$D/of.sock"
wait_log "switch-up s1" 10 2
_end=$(( $(now_ms) + 5000 ))
while ovs-ofctl -O OpenFlow13 dump-flows "$B1" | grep -q 'cookie=0x1,'; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.1
done
sleep 0.2
if ! ovs-ofctl -O OpenFlow13 dump-flows "$B1" | grep -q 'cookie=0x1,' &&
   [ "$(ovs_edgetrain_flows "$B1")" -eq "$before" ] && [ "$before" -ge 9 ]; then
    pass "switch reconnect: full resync removes stray flows, keeps ours ($before)"
else
    fail "switch reconnect: full resync removes stray flows, keeps ours"
    ovs-ofctl -O OpenFlow13 dump-flows "$B1"
fi

# --- shutdown: the OpenFlow thread joins, nothing leaks (sanitizer builds) ---
echo "quit" >&3
_end=$(( $(now_ms) + 5000 ))
while kill -0 "$drv_pid" 2>/dev/null && [ "$(now_ms)" -lt "$_end" ]; do
    sleep 0.05
done
if kill -0 "$drv_pid" 2>/dev/null; then
    fail "controller shuts down cleanly (still running)"
else
    wait "$drv_pid"; rc=$?
    drv_pid=""
    [ "$rc" -eq 0 ] && pass "controller shuts down cleanly" ||
        { fail "controller shuts down cleanly (exit $rc)"; tail -n 30 "$D/driver.err"; }
fi
[ "$failures" -eq 0 ]
