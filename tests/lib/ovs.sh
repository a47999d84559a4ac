# Private Open vSwitch instance for tests and benchmarks (sourced by sh).
#
#   ovs_available            exit status 0 if root and OVS binaries exist
#   ovs_start DIR NETNS      ovsdb-server + ovs-vswitchd with their own db,
#                            sockets, pids and logs under DIR; exports
#                            OVS_RUNDIR etc. so ovs-vsctl/ovs-ofctl use them.
#                            ovs-vswitchd runs inside network namespace
#                            NETNS (created here): the userspace datapath
#                            makes a tap device named "ovs-netdev" and one per
#                            bridge, which would collide with any other OVS
#                            in the same namespace.  Switch ports (veths)
#                            must be created in NETNS too.
#   ovs_stop DIR NETNS       stops both (by their pid files), deletes NETNS
#   ovs_two_links SW NS1 NS2 PREFIX   two bridges, two links, two hosts
#   ovs_flow_actions BRIDGE MATCH / ovs_flow_packets BRIDGE MATCH
#                            actions / n_packets of the first flow matching
#   ovs_edgetrain_flows BRIDGE   how many flows carry edgetrain's cookie
#
# Nothing touches a system OVS: no shared socket, db, pid file, log or
# network device.

OVS_SCHEMA=${OVS_SCHEMA:-/usr/share/openvswitch/vswitch.ovsschema}

ovs_available() {
    [ "$(id -u)" = 0 ] || return 1
    for c in ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl ovs-ofctl; do
        command -v "$c" >/dev/null 2>&1 || return 1
    done
    [ -f "$OVS_SCHEMA" ]
}

ovs_start() {
    _d=$1
    ip netns add "$2" || return 1
    ip -n "$2" link set lo up
    export OVS_RUNDIR="$_d" OVS_DBDIR="$_d" OVS_LOGDIR="$_d" OVS_SYSCONFDIR="$_d"
    ovsdb-tool create "$_d/conf.db" "$OVS_SCHEMA" || return 1
    ovsdb-server "$_d/conf.db" --remote="punix:$_d/db.sock" --no-chdir \
        --pidfile="$_d/ovsdb-server.pid" --detach \
        --log-file="$_d/ovsdb-server.log" 2>>"$_d/start.log" || return 1
    ovs-vsctl --no-wait init || return 1
    ip netns exec "$2" ovs-vswitchd "unix:$_d/db.sock" --no-chdir \
        --pidfile="$_d/ovs-vswitchd.pid" --detach \
        --log-file="$_d/ovs-vswitchd.log" 2>>"$_d/start.log" || return 1
}

ovs_stop() {
    _d=$1
    for _p in ovs-vswitchd ovsdb-server; do
        if [ -f "$_d/$_p.pid" ]; then
            _pid=$(cat "$_d/$_p.pid")
            kill "$_pid" 2>/dev/null
            for _i in 1 2 3 4 5 6 7 8 9 10; do
                kill -0 "$_pid" 2>/dev/null || break
                sleep 0.2
            done
            kill -9 "$_pid" 2>/dev/null
            rm -f "$_d/$_p.pid"
        fi
    done
    [ -n "${2:-}" ] && ip netns del "$2" 2>/dev/null
    return 0
}

# ovs_of_bridge NAME DPID [PORT...]: a bridge on the userspace datapath for
# an OpenFlow 1.3 controller (fail_mode secure: no flows of its own),
# datapath id DPID (16 hex digits), PORTs numbered 1, 2, ... in order.
ovs_of_bridge() {
    _br=$1 _dpid=$2
    shift 2
    ovs-vsctl add-br "$_br" -- set bridge "$_br" datapath_type=netdev \
        protocols=OpenFlow13 fail_mode=secure \
        other-config:datapath-id="$_dpid" || return 1
    _n=1
    for _p in "$@"; do
        ovs-vsctl add-port "$_br" "$_p" -- \
            set interface "$_p" ofport_request=$_n || return 1
        _n=$((_n + 1))
    done
}

# Wiring for tests: switch ports are veths in the switches' namespace SW,
# with tx checksum offload off on every end (or TCP stalls on the
# userspace datapath).
#   ovs_veth SW A B          a switch-to-switch pair A <-> B
#   ovs_host SW NS PORT IP   namespace NS with eth0 (IP/24) <-> PORT in SW
ovs_veth() {
    ip -n "$1" link add "$2" type veth peer name "$3" &&
    ip netns exec "$1" ethtool -K "$2" tx off >/dev/null &&
    ip netns exec "$1" ethtool -K "$3" tx off >/dev/null &&
    ip -n "$1" link set "$2" up && ip -n "$1" link set "$3" up
}
ovs_host() {
    ip netns add "$2" 2>/dev/null
    ip -n "$1" link add "$3" type veth peer name eth0 netns "$2" &&
    ip netns exec "$2" ethtool -K eth0 tx off >/dev/null &&
    ip netns exec "$1" ethtool -K "$3" tx off >/dev/null &&
    ip -n "$2" addr add "$4/24" dev eth0 &&
    ip -n "$2" link set eth0 up && ip -n "$2" link set lo up &&
    ip -n "$1" link set "$3" up
}

# ovs_two_links SW NS1 NS2 PREFIX: the network of the two-switch OpenFlow
# tests on a started OVS: h1 (NS1, 10.0.0.1) on port 1 of bridge PREFIXb1
# (datapath id 1), h2 (NS2, 10.0.0.2) on port 1 of PREFIXb2 (id 2), and two
# parallel links between the bridges on their ports 2 and 3.
ovs_two_links() {
    ovs_host "$1" "$2" s1p1 10.0.0.1 && ovs_host "$1" "$3" s2p1 10.0.0.2 &&
    ovs_veth "$1" s1p2 s2p2 && ovs_veth "$1" s1p3 s2p3 &&
    ovs_of_bridge "${4}b1" 0000000000000001 s1p1 s1p2 s1p3 &&
    ovs_of_bridge "${4}b2" 0000000000000002 s2p1 s2p2 s2p3
}

# Flow queries (OpenFlow 1.3 dump-flows of a bridge of this OVS).
ovs_flow_actions() {
    ovs-ofctl -O OpenFlow13 dump-flows "$1" "$2" 2>/dev/null |
        sed -n 's/.*actions=//p' | head -n 1
}
ovs_flow_packets() {
    ovs-ofctl -O OpenFlow13 dump-flows "$1" "$2" 2>/dev/null |
        sed -n 's/.*n_packets=\([0-9]*\).*/\1/p' | head -n 1
}
ovs_edgetrain_flows() {
    ovs-ofctl -O OpenFlow13 dump-flows "$1" \
        cookie=0xed6e000000000000/0xffff000000000000 2>/dev/null |
        grep -c cookie=
}
