#!/bin/sh
# Multipath goodput on the emulated diamond (issue goal: two sub-streams over
# two disjoint 100 Mbit/s paths reach >= 1.8x one path).
#
# The real controller plans a 2-stage run over the diamond with k=2
# edge-disjoint paths and pins the stream's sub-streams with exact-match
# flows; `edgetrain agent-sim` stands in for the agents (registration only),
# and `edgetrain bench-stream` sends real activation frames from the first
# stage's namespace to the second's on the controller's source ports: once
# with one sub-stream (one path), once with two.
#   tests/bench/multipath_emulated.sh [BIN_DIR] [SECONDS]
set -eu
cd "$(dirname "$0")/../.."
bin=${1:-build/bin}
secs=${2:-8}
[ "$(id -u)" = 0 ] || { echo "multipath: needs root (emulator)"; exit 2; }
script=$(mktemp)
cat >"$script" <<EOS
set -e
for a in pi1 pi2 pi3 pi4; do
    ns=\$(eval echo \\\$EMU_NS_\$a)
    ip netns exec \$ns $bin/edgetrain agent-sim --controller \$EMU_MGMT_GW:\$EMU_MGMT_PORT \
        --name \$a --metrics-ms 1000 >/dev/null 2>&1 &
done
sleep 4
curl -s http://127.0.0.1:\$EMU_HTTP_PORT/status > \$EMU_RUNDIR/status.json
eval \$(/usr/bin/python3 -c "
import json; s=json.load(open('\$EMU_RUNDIR/status.json'))
p=s['paths'][0]; a={x['name']: x for x in s['agents']}
print('from=%s; to=%s; to_addr=%s; base=%d;' % (p['from'], p['to'], a[p['to']]['data'], p['substreams'][0]['local_port']))
for i, ss in enumerate(p['substreams']): print('echo \"  sub-stream %d: port %d via %s weight %.2f\";' % (i, ss['local_port'], ','.join(ss['hops']), ss['weight']))
")
echo "stream \$from -> \$to (\$to_addr), sub-streams from source port \$base:"
src=\$(eval echo \\\$EMU_NS_\$from); dst=\$(eval echo \\\$EMU_NS_\$to)
for k in 1 2; do
    ip netns exec \$dst $bin/edgetrain bench-stream --listen \$to_addr >/dev/null 2>&1 &
    l=\$!
    sleep 0.5
    r=\$(ip netns exec \$src $bin/edgetrain bench-stream --to \$to_addr --substreams \$k \
        --seconds $secs --local-port-base \$base | sed -n 's/^goodput_mbps=//p')
    echo "substreams=\$k goodput_mbps=\$r"
    kill \$l 2>/dev/null || true; wait \$l 2>/dev/null || true
    sleep 1
done
EOS
# The diamond with both core switches' links at 100 Mbit/s.
topo=$(mktemp --suffix=.json)
sed 's/"capacity_mbps": 50,/"capacity_mbps": 100,/' topology/diamond-4pi.json >"$topo"
out=$(topology/emulate "$topo" --bin "$bin" --no-agents \
      --exec "sh $script" -- --k 2 --disjoint --stages 2 2>&1)
rm -f "$script" "$topo"
echo "$out" | grep -v '^emulate: up\|netem'
one=$(echo "$out" | sed -n 's/^substreams=1 goodput_mbps=//p')
two=$(echo "$out" | sed -n 's/^substreams=2 goodput_mbps=//p')
[ -n "$one" ] && [ -n "$two" ] || { echo "multipath: no figures"; exit 1; }
python3 -c "print('multipath_ratio=%.2f (one path %.1f Mbit/s, two paths %.1f Mbit/s)' % ($two / $one, $one, $two))"
