#!/bin/sh
# Flow installation rate: `edgetrain bench-flows` (the controller's path:
# libopenvswitch encoders, one atomic bundle, barrier) beside
# `ovs-ofctl -O OpenFlow13 --bundle add-flows` of the same flows, into the
# same private OVS bridge (userspace datapath), alternating, ROUNDS rounds;
# each run starts from an empty bridge.  Both are timed the same way (wall
# clock of the whole command, connect included); medians are compared.
#
#   tests/bench/flows.sh [build/bin/edgetrain]     COUNT=20000 ROUNDS=5
set -u
BIN=${1:-build/bin/edgetrain}
COUNT=${COUNT:-20000}
ROUNDS=${ROUNDS:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/lib/ovs.sh"

ovs_available || { echo "SKIP: bench-flows needs root and openvswitch-switch"; exit 0; }
D=$(mktemp -d /tmp/et-benchflows.XXXXXX)
SW=etbf$(( $$ % 100000 ))
BR=etbf0
trap 'ovs_stop "$D" "$SW"; [ -z "${KEEP:-}" ] && rm -rf "$D"' EXIT
trap 'exit 1' INT TERM
ovs_start "$D" "$SW" || { echo "bench-flows: cannot start ovs-vswitchd"; exit 1; }
ovs_of_bridge $BR 00000000000000b1 || exit 1

# The same flows bench-flows builds (controller/flowbench.c fb_build()).
awk -v n="$COUNT" 'BEGIN {
    print "cookie=0xed6e010000000000,priority=0,actions=drop"
    for (i = 0; i < n; i++) {
        x = i + 1
        printf "cookie=0xed6e03%010x,priority=1000,tcp,in_port=1,nw_src=10.%d.%d.%d,nw_dst=10.1.0.1,tp_src=%d,tp_dst=5001,actions=output:2\n",
            i, int(x / 65536) % 256, int(x / 256) % 256, x % 256, 1024 + i % 60000
    }
}' >"$D/flows.txt"

now_ns() { date +%s%N; }
count_flows() {
    ovs-ofctl -O OpenFlow13 dump-aggregate $BR | sed -n 's/.*flow_count=\([0-9]*\).*/\1/p'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: >"$D/ofctl" ; : >"$D/ours" ; : >"$D/ours_internal"
for r in $(seq "$ROUNDS"); do
    ovs-ofctl -O OpenFlow13 del-flows $BR
    t0=$(now_ns)
    ovs-ofctl -O OpenFlow13 --bundle add-flows $BR "$D/flows.txt" || exit 1
    t1=$(now_ns)
    n=$(count_flows)
    [ "$n" -eq $((COUNT + 1)) ] || { echo "ovs-ofctl installed $n flows"; exit 1; }
    ofctl=$(awk -v n="$COUNT" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
    echo "$ofctl" >>"$D/ofctl"

    ovs-ofctl -O OpenFlow13 del-flows $BR
    t0=$(now_ns)
    "$BIN" bench-flows --bridge $BR --count "$COUNT" >"$D/out" 2>"$D/err" ||
        { cat "$D/err"; exit 1; }
    t1=$(now_ns)
    n=$(count_flows)
    [ "$n" -eq $((COUNT + 1)) ] || { echo "bench-flows installed $n flows"; exit 1; }
    ours=$(awk -v n="$COUNT" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", n / (ns / 1e9) }')
    echo "$ours" >>"$D/ours"
    sed -n 's/^flow_mods_per_s=//p' "$D/out" >>"$D/ours_internal"
    echo "round $r: ovs-ofctl --bundle $ofctl/s, edgetrain bench-flows $ours/s (wall), $(tail -n 1 "$D/out")"
done

# Flows are identical: compare a dump of ours with one of ovs-ofctl's.
ovs-ofctl -O OpenFlow13 dump-flows --no-stats $BR | grep priority= | sort >"$D/dump.ours"
ovs-ofctl -O OpenFlow13 del-flows $BR
ovs-ofctl -O OpenFlow13 --bundle add-flows $BR "$D/flows.txt"
ovs-ofctl -O OpenFlow13 dump-flows --no-stats $BR | grep priority= | sort >"$D/dump.ofctl"
if cmp -s "$D/dump.ours" "$D/dump.ofctl"; then same=yes; else same=NO; fi

# Informational: re-pointing all of them (the switch-over step of a
# re-route of $COUNT sub-streams), one bundle of modifies.
ovs-ofctl -O OpenFlow13 del-flows $BR
"$BIN" bench-flows --bridge $BR --count "$COUNT" --modify 2>/dev/null |
    grep '^modify_ms='

m_ofctl=$(median <"$D/ofctl")
m_ours=$(median <"$D/ours")
m_int=$(median <"$D/ours_internal")
echo "flows=$COUNT rounds=$ROUNDS identical_flow_tables=$same"
echo "ovs_ofctl_bundle_flow_mods_per_s=$m_ofctl"
echo "edgetrain_flow_mods_per_s=$m_ours (wall) $m_int (internal)"
awk -v a="$m_ours" -v b="$m_ofctl" 'BEGIN { printf "ratio_vs_ovs_ofctl=%.3f (goal >= 0.9)\n", a / b }'
[ "$same" = yes ]
