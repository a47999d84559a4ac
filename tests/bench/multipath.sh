#!/bin/sh
# Two sub-streams over two links, each shaped to RATE (100 Mbit/s): the
# aggregate `edgetrain bench-stream --substreams 2` reaches, beside one
# sub-stream and iperf3 over one link. Goal: >= 180 Mbit/s with two.
#
# Two network namespaces joined by two veth pairs, tbf on each sender-side
# veth. The receiver has one address (on its loopback) reachable over both
# links; the sender's policy routing sends source port PORT0 over link 1
# and PORT0+1 over link 2 (what the controller's exact-match flows do on
# OpenFlow switches). Needs root.
#
#   tests/bench/multipath.sh [path/to/edgetrain]
# Environment: RATE (100mbit), SECONDS_EACH (5).
set -u
ET=$(readlink -f "${1:-build/bin/edgetrain}")
RATE=${RATE:-100mbit}
SECS=${SECONDS_EACH:-5}
PORT0=41000
if [ "$(id -u)" != 0 ]; then echo "bench-multipath: skipped (needs root)"; exit 0; fi
A=etmpA$$; Bn=etmpB$$
tmp=$(mktemp -d)
cleanup() {
    ip netns pids $Bn 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns pids $A 2>/dev/null | xargs -r kill 2>/dev/null
    sleep 0.2
    ip netns del $A 2>/dev/null; ip netns del $Bn 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
set -e
ip netns add $A; ip netns add $Bn
for i in 1 2; do
    ip link add va$i-$$ type veth peer name vb$i-$$
    ip link set va$i-$$ netns $A; ip link set vb$i-$$ netns $Bn
    ip -n $A addr add 10.77.$i.1/24 dev va$i-$$; ip -n $A link set va$i-$$ up
    ip -n $Bn addr add 10.77.$i.2/24 dev vb$i-$$; ip -n $Bn link set vb$i-$$ up
    # MTU-sized packets: tbf meters them exactly (no 64 KB GSO bursts).
    ip netns exec $A ethtool -K va$i-$$ tso off gso off >/dev/null 2>&1
    tc -n $A qdisc add dev va$i-$$ root tbf rate $RATE burst 64kb limit 4mb
    ip -n $A route add 10.77.9.9/32 via 10.77.$i.2 dev va$i-$$ table $((100 + i))
    ip -n $A rule add sport $((PORT0 + i - 1)) table $((100 + i))
done
ip -n $A link set lo up; ip -n $Bn link set lo up
ip -n $Bn addr add 10.77.9.9/32 dev lo
ip -n $A route add 10.77.9.9/32 via 10.77.1.2 dev va1-$$
set +e

ip netns exec $Bn iperf3 -s -1 -p 17401 >/dev/null 2>&1 &
sleep 0.3
ip netns exec $A iperf3 -c 10.77.9.9 -p 17401 -t "$SECS" -J >"$tmp/ip.json" 2>/dev/null
wait
ip=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' "$tmp/ip.json")
ip netns exec $Bn "$ET" bench-stream --listen 10.77.9.9:17400 >"$tmp/rx.log" 2>&1 &
sleep 0.3
for k in 1 2; do
    ip netns exec $A "$ET" bench-stream --to 10.77.9.9:17400 --substreams $k \
        --local-port-base $PORT0 --seconds "$SECS" --shape 16,16,16,64 >"$tmp/tx$k.log" 2>&1
    eval "g$k=$(sed -n 's/^goodput_mbps=//p' "$tmp/tx$k.log")"
    sed -n 's/^sub-stream/  sub-stream/p' "$tmp/tx$k.log"
done
echo "links shaped to $RATE each: iperf3 over one link $ip Mbit/s; edgetrain one sub-stream ${g1:-?} Mbit/s; two sub-streams over two links ${g2:-?} Mbit/s (goal >= 180)"
