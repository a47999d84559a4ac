#!/bin/sh
# Integration: TLS between edgetrain-controller (--openflow pssl:) and a
# real ovs-vswitchd (controller ssl:), certificates from a private CA made
# here with openssl.
#
#   1. The bridge presents a certificate signed by the CA: the handshake
#      completes, the controller identifies the switch and installs its
#      flows (dump-flows shows edgetrain's cookie).
#   2. The bridge presents a certificate of another CA: the controller
#      refuses it (logged) and the bridge gets no flow.
#
# The controller runs in the switches' network namespace, so 127.0.0.1 is
# the same for both. Without root, Open vSwitch or openssl: SKIP.
set -u
BUILD=${BUILD:-build}
BIN=$BUILD/bin
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/lib/ovs.sh"
. "$HERE/lib/check.sh"

skip() { echo "SKIP: openflow_ssl: $*"; exit 0; }
ovs_available || skip "needs root and openvswitch-switch"
for c in openssl python3; do
    command -v $c >/dev/null 2>&1 || skip "needs $c"
done

n=$(( $$ % 100000 ))
P=ets$n
D=$(mktemp -d /tmp/et-ofssl.XXXXXX)
SW=${P}sw
PORT=$(( 20000 + $$ % 20000 ))
ctl_pid=""

cleanup() {
    [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null
    wait 2>/dev/null
    ovs_stop "$D" "$SW"
    if [ "$failures" -ne 0 ]; then
        echo "--- controller log (tail) ---"; tail -n 30 "$D/ctl.err"
        echo "--- ovs-vswitchd log (tail) ---"
        tail -n 15 "$D/ovs-vswitchd.log"
    fi
    [ -z "${KEEP:-}" ] && rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# wait_flows BRIDGE N SECONDS: until BRIDGE has at least N of our flows.
wait_flows() {
    _end=$(( $(now_ms) + $3 * 1000 ))
    while [ "$(ovs_edgetrain_flows "$1")" -lt "$2" ]; do
        [ "$(now_ms)" -ge "$_end" ] && return 1
        sleep 0.1
    done
}

# --- PKI: a CA, the controller's and the switch's certificates, and a
# switch certificate of another CA ------------------------------------------
pki() {
    cd "$D" || return 1
    for ca in ca rogue-ca; do
        openssl req -x509 -newkey rsa:2048 -nodes -keyout $ca.key \
            -out $ca.pem -days 2 -subj "/CN=edgetrain test $ca" || return 1
    done
    for c in ctl:ca sw:ca rogue:rogue-ca; do
        name=${c%%:*} ca=${c#*:}
        openssl req -newkey rsa:2048 -nodes -keyout $name.key \
            -out $name.csr -subj "/CN=$name" &&
        openssl x509 -req -in $name.csr -CA $ca.pem -CAkey $ca.key \
            -CAcreateserial -out $name.pem -days 2 || return 1
    done
}
if (pki) >"$D/pki.log" 2>&1 &&
   openssl verify -CAfile "$D/ca.pem" "$D/sw.pem" >/dev/null 2>&1 &&
   ! openssl verify -CAfile "$D/ca.pem" "$D/rogue.pem" >/dev/null 2>&1; then
    pass "PKI made: CA, controller and switch certificates, a rogue switch certificate"
else
    fail "PKI made"; cat "$D/pki.log"; exit 1
fi

# --- a private OVS with one bridge (two ports) --------------------------------
ovs_start "$D" "$SW" || { fail "private ovs-vswitchd starts"; exit 1; }
B=${P}b1
if ovs_veth "$SW" s1p1 x1p1 && ovs_veth "$SW" s1p2 x1p2 &&
   ovs_of_bridge "$B" 0000000000000001 s1p1 s1p2; then
    pass "bridge with two ports set up"
else
    fail "bridge with two ports set up"; exit 1
fi

cat >"$D/topo.json" <<EOF2
{"name": "tls-one-switch",
 "switches": [{"name": "s1", "dpid": 1}],
 "agents": [
   {"name": "h1", "data": "10.0.0.1:5001", "switch": "s1", "port": 1},
   {"name": "h2", "data": "10.0.0.2:5001", "switch": "s1", "port": 2}],
 "links": []}
EOF2

# --- controller on pssl: ------------------------------------------------------
ip netns exec "$SW" "$BIN/edgetrain-controller" --topology "$D/topo.json" \
    --listen 127.0.0.1:0 --http 127.0.0.1:0 \
    --openflow "pssl:$PORT:127.0.0.1" --ssl-private-key "$D/ctl.key" \
    --ssl-certificate "$D/ctl.pem" --ssl-ca-cert "$D/ca.pem" \
    >"$D/ctl.out" 2>"$D/ctl.err" &
ctl_pid=$!
wait_grep "$D/ctl.out" "^listening" 5 &&
    wait_grep "$D/ctl.err" "openflow: listening on pssl:$PORT" 5 ||
    { fail "controller listens on pssl:$PORT"; exit 1; }

# --- 1. a switch with a certificate of the CA ---------------------------------
ovs-vsctl set-ssl "$D/sw.key" "$D/sw.pem" "$D/ca.pem"
ovs-vsctl set-controller "$B" "ssl:127.0.0.1:$PORT"
if wait_grep "$D/ctl.err" "openflow: switch s1 (.*) up" 15; then
    pass "TLS handshake completes: the controller identifies switch s1"
else
    fail "TLS handshake completes: the controller identifies switch s1"
fi
# table-miss + ip and arp for the two agents.
wait_flows "$B" 5 10
flows=$(ovs_edgetrain_flows "$B")
echo "flows with edgetrain's cookie over TLS: $flows"
# The switch's own view (ovs-vswitchd updates the column every few s).
_end=$(( $(now_ms) + 10000 ))
until [ "$(ovs-vsctl --bare --columns=is_connected list controller)" = true ]; do
    [ "$(now_ms)" -ge "$_end" ] && break
    sleep 0.2
done
connected=$(ovs-vsctl --bare --columns=is_connected list controller)
if [ "$flows" -eq 5 ] && [ "$connected" = true ]; then
    pass "flows installed over ssl: (dump-flows: $flows with cookie 0xed6e...)"
else
    fail "flows installed over ssl: ($flows flows, is_connected $connected)"
    ovs-ofctl -O OpenFlow13 dump-flows "$B"
fi

# The HTTP API in a namespace with only loopback (getaddrinfo's
# AI_ADDRCONFIG once made it fail there).
HPORT=$(sed -n 's/^listening mgmt=[0-9]* http=\([0-9]*\)/\1/p' "$D/ctl.out")
if [ -n "$HPORT" ] && ip netns exec "$SW" "$BIN/edgetrain" status \
        --controller "http://127.0.0.1:$HPORT" --json 2>/dev/null |
   python3 -c 'import json,sys; s=json.load(sys.stdin); assert [x["connected"] for x in s["switches"]] == [True]'; then
    pass "/status over HTTP in the namespace: s1 connected"
else
    fail "/status over HTTP in the namespace: s1 connected (http port ${HPORT:-none})"
fi

# --- 2. the same bridge with a certificate of another CA ----------------------
ovs-vsctl del-controller "$B"
ovs-ofctl -O OpenFlow13 del-flows "$B"
up_before=$(grep -c "openflow: switch s1 (.*) up" "$D/ctl.err")
err_before=$(grep -c "certificate verify failed\|unknown ca" "$D/ctl.err")
ovs-vsctl set-ssl "$D/rogue.key" "$D/rogue.pem" "$D/ca.pem"
ovs-vsctl set-controller "$B" "ssl:127.0.0.1:$PORT"
if wait_grep "$D/ctl.err" "certificate verify failed\|unknown ca" 15 \
       $((err_before + 1)); then
    pass "switch with a certificate of another CA refused and logged: $(grep "certificate verify failed\|unknown ca" "$D/ctl.err" | tail -n 1 | cut -c1-120)"
else
    fail "switch with a certificate of another CA refused and logged"
fi
sleep 2         # a reconnect or two of the rogue switch
flows=$(ovs_edgetrain_flows "$B")
up_after=$(grep -c "openflow: switch s1 (.*) up" "$D/ctl.err")
if [ "$flows" -eq 0 ] && [ "$up_after" -eq "$up_before" ]; then
    pass "the rogue switch gets no flow and is never identified ($flows flows)"
else
    fail "the rogue switch gets no flow ($flows flows, s1 up $up_before -> $up_after)"
fi
kill -0 "$ctl_pid" 2>/dev/null && pass "controller keeps serving after the refusal" ||
    fail "controller keeps serving after the refusal"
[ "$failures" -eq 0 ]
