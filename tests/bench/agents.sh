#!/bin/sh
# Flow updates under management load: `edgetrain bench-flows` (the
# controller's southbound path: libopenvswitch encoders, one bundle,
# barrier) into a private OVS bridge, alternating rounds without and with
# 64 simulated agents (agent-sim processes: HMAC registration, Assignment,
# Metrics every 50 ms) served by the controller's mgmt code on an event
# loop thread of the same process. Compares median flow_mods_per_s; the
# issue's bound is a slowdown of at most 20% (ratio >= 0.8).
#
#   tests/bench/agents.sh [build/bin/edgetrain]    COUNT=20000 ROUNDS=5 AGENTS=64
set -u
BIN=${1:-build/bin/edgetrain}
COUNT=${COUNT:-20000}
ROUNDS=${ROUNDS:-5}
AGENTS=${AGENTS:-64}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/lib/ovs.sh"
ovs_available || { echo "SKIP: bench-agents needs root and openvswitch-switch"; exit 0; }
D=$(mktemp -d /tmp/et-benchagents.XXXXXX)
SW=etba$(( $$ % 100000 ))
BR=etba0
trap 'ovs_stop "$D" "$SW"; [ -z "${KEEP:-}" ] && rm -rf "$D"' EXIT
trap 'exit 1' INT TERM
ovs_start "$D" "$SW" || { echo "bench-agents: cannot start ovs-vswitchd"; exit 1; }
ovs_of_bridge $BR 00000000000000b2 || exit 1
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: >"$D/idle"; : >"$D/load"
for r in $(seq "$ROUNDS"); do
    for a in 0 "$AGENTS"; do
        ovs-ofctl -O OpenFlow13 del-flows $BR
        "$BIN" bench-flows --bridge $BR --count "$COUNT" --agents "$a" \
            >"$D/out" 2>"$D/err" || { cat "$D/err"; exit 1; }
        v=$(sed -n 's/^flow_mods_per_s=//p' "$D/out")
        if [ "$a" = 0 ]; then echo "$v" >>"$D/idle"; else echo "$v" >>"$D/load"; fi
        echo "round $r agents=$a: flow_mods_per_s=$v $(grep '^agents=' "$D/out")"
    done
done
mi=$(median <"$D/idle"); ml=$(median <"$D/load")
awk -v i="$mi" -v l="$ml" -v n="$AGENTS" 'BEGIN {
    printf "median flow_mods_per_s: idle %.0f, with %d agents %.0f; ratio %.3f (bound >= 0.8: %s)\n",
        i, n, l, l / i, (l / i >= 0.8) ? "met" : "NOT met" }'
