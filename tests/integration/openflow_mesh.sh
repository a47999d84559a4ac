#!/bin/sh
# Integration: base connectivity on a meshed topology (a triangle, i.e. a
# loop) with a real ovs-vswitchd.  Flooding ARP here would circulate
# forever; edgetrain unicasts ARP by target address along per-destination
# shortest-path trees, so there is nothing to loop.
#
#         h1                 s1:2 - s2:2  link0
#        [s1]                s2:3 - s3:2  link1
#       /    \               s3:3 - s1:3  link2
#   h2 [s2]--[s3] h3         hosts on port 1
#
# Checks: every pair pings, ARP packet counts stay tiny (no storm), the
# direct link is used, and with link2 down h1 still reaches h3 via s2.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/lib/ovs.sh"
. "$HERE/lib/check.sh"
DRIVER=$BUILD/tests/drivers/sbdriver

skip() { echo "SKIP: openflow_mesh: $*"; exit 0; }
ovs_available || skip "needs root and openvswitch-switch"
for c in ip ethtool; do
    command -v $c >/dev/null 2>&1 || skip "needs $c"
done
[ -x "$DRIVER" ] || { echo "FAIL: sbdriver built ($DRIVER missing)"; exit 1; }

P=etm$(( $$ % 100000 ))
D=$(mktemp -d /tmp/et-ofmesh.XXXXXX)
SW=${P}sw

cleanup() {
    [ -n "${drv_pid:-}" ] && kill "$drv_pid" 2>/dev/null
    exec 3>&- 2>/dev/null
    ovs_stop "$D" "$SW"
    for h in 1 2 3; do ip netns del "${P}h$h" 2>/dev/null; done
    if [ "$failures" -ne 0 ]; then
        echo "--- driver log (tail) ---"; grep -v port-stats "$D/driver.log" | tail -n 20
    fi
    [ -z "${KEEP:-}" ] && rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

wait_log() { wait_grep "$D/driver.log" "$@"; }
arp_packets() {    # total packets matched by ARP flows on all bridges
    for b in 1 2 3; do
        ovs-ofctl -O OpenFlow13 dump-flows "${P}b$b" arp 2>/dev/null |
            sed -n 's/.*n_packets=\([0-9]*\).*/\1/p'
    done | awk '{ s += $1 } END { print s + 0 }'
}

ip netns add "${P}h1" || skip "cannot create network namespaces"
ovs_start "$D" "$SW" || { fail "private ovs-vswitchd starts"; exit 1; }
ok=1
for h in 1 2 3; do
    ovs_host "$SW" "${P}h$h" "s${h}p1" "10.0.0.$h" || ok=0
done
ovs_veth "$SW" s1p2 s2p2 || ok=0
ovs_veth "$SW" s2p3 s3p2 || ok=0
ovs_veth "$SW" s3p3 s1p3 || ok=0
for b in 1 2 3; do
    ovs_of_bridge "${P}b$b" 000000000000000$b s${b}p1 s${b}p2 s${b}p3 || ok=0
done
[ "$ok" = 1 ] && pass "triangle of three netdev bridges set up" ||
    { fail "triangle of three netdev bridges set up"; exit 1; }

cat >"$D/topo" <<EOF
switch s1 0x1
switch s2 0x2
switch s3 0x3
host h1 10.0.0.1 s1 1
host h2 10.0.0.2 s2 1
host h3 10.0.0.3 s3 1
link s1 2 s2 2
link s2 3 s3 2
link s3 3 s1 3
EOF
mkfifo "$D/cmd"
"$DRIVER" --topo "$D/topo" --listen "punix:$D/of.sock" \
    <"$D/cmd" >"$D/driver.log" 2>"$D/driver.err" &
drv_pid=$!
exec 3>"$D/cmd"
wait_log "listening" 5 || { fail "driver listens"; exit 1; }
for b in 1 2 3; do ovs-vsctl set-controller "${P}b$b" "unix:$D/of.sock"; done
wait_log "switch-up" 10 3 && pass "three switches identified" ||
    fail "three switches identified"
_end=$(( $(now_ms) + 5000 ))
until [ "$(base_actions "${P}b3" 10.0.0.2)" = "output:2" ]; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.05
done

pings=0
for a in 1 2 3; do
    for b in 1 2 3; do
        [ "$a" = "$b" ] && continue
        ip netns exec "${P}h$a" ping -c 1 -W 2 "10.0.0.$b" >/dev/null 2>&1 &&
            pings=$((pings + 1))
    done
done
[ "$pings" -eq 6 ] && pass "all six ordered host pairs ping over the loop" ||
    fail "all six ordered host pairs ping over the loop ($pings/6)"
sleep 0.5
arp=$(arp_packets)
[ "$arp" -lt 60 ] && pass "no ARP storm on the loop ($arp ARP packets in all)" ||
    fail "no ARP storm on the loop ($arp ARP packets)"
[ "$(base_actions "${P}b1" 10.0.0.3)" = "output:3" ] &&
    pass "h1 -> h3 takes the direct link" || fail "h1 -> h3 takes the direct link"

ip -n "$SW" link set s1p3 down
_end=$(( $(now_ms) + 3000 ))
until [ "$(base_actions "${P}b1" 10.0.0.3)" = "output:2" ]; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.05
done
if [ "$(base_actions "${P}b1" 10.0.0.3)" = "output:2" ] &&
   ip netns exec "${P}h1" ping -c 1 -W 2 10.0.0.3 >/dev/null 2>&1 &&
   ip netns exec "${P}h3" ping -c 1 -W 2 10.0.0.1 >/dev/null 2>&1; then
    pass "link2 down: h1 and h3 reach each other through s2"
else
    fail "link2 down: h1 and h3 reach each other through s2"
fi
echo "quit" >&3
[ "$failures" -eq 0 ]
