#!/bin/sh
# Link failure under a running multipath stream on the emulated 4-Pi
# diamond (real OVS): mid-epoch, the first hop link of a weighted
# sub-stream is set down (ip link set down on its veth in the switches'
# namespace). Checks (tests/lib/faults.py link-down): the sub-stream's flow
# at its first switch leaves the dead link within 1 s (OVS flow table
# polled every 10 ms), the controller plans and assigns paths that avoid
# it; the chunks that were in flight on it are sent again (agent logs);
# then (check_run.py --faults) the run completes, every head beats chance
# and every stream delivered each chunk exactly once (duplicates of resent
# chunks are dropped by sequence number, never trained).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/faults.sh
faults_setup link_down
faults_run link-down
resent=$(cat "$out"/agent-*.log 2>/dev/null |
    sed -n 's/.*: \([0-9]*\) unacked chunks of sub-stream .* will be sent again/\1/p' |
    awk '{s+=$1} END {print s+0}')
dups=$(/usr/bin/python3 -c "import json,sys; s=json.load(open(sys.argv[1]));
print(sum(a.get('metrics',{}).get('chunks_duplicate',0) for a in s['agents']))" \
    "$out/status.json" 2>/dev/null || echo '?')
if [ "$resent" -gt 0 ]; then
    pass "chunks in flight on the dead path sent again on the other sub-streams: $resent resent ($dups arrived twice, dropped)"
else
    failc "chunks in flight on the dead path sent again (0 resent)"
fi
echo "  figure: resent_chunks=$resent duplicates_dropped=$dups"
CHECK_RUN_OPTS=--faults
faults_finish
