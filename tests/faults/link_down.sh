#!/bin/sh
# Link failure under a running multipath stream on the emulated 4-Pi
# diamond (real OVS): mid-epoch, the first hop link of a weighted
# sub-stream is set down (ip link set down on its veth in the switches'
# namespace). Checks (tests/lib/faults.py link-down): the sub-stream's flow
# at its first switch leaves the dead link within 1 s (OVS flow table
# polled every 10 ms), the controller plans and assigns paths that avoid
# it; the chunks that were in flight on it are sent again at once, and
# sub-streams moved only because the split changed resend nothing (agent
# logs);
# then (check_run.py --faults) the run completes, every head beats chance
# and every stream delivered each chunk exactly once (duplicates of resent
# chunks are dropped by sequence number, never trained).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/faults.sh
faults_setup link_down
faults_run link-down
# The cut sub-stream (faults.py: "cutting link A-B (dev) under SRC->DST
# sub-stream K ..."): its sender must treat it as moved off a failed path
# (unacked chunks sent again at once); sub-streams the re-plan moved off
# paths that are still up must resend nothing (TCP carries their data).
cut=$(sed -n 's/.*cutting link .* under \([^ ]*\)->\([^ ]*\) sub-stream \([0-9]*\) .*/\1 \2 \3/p' \
    "$out/during.txt" 2>/dev/null | head -n 1)
set -- $cut
src=${1:-?} dst=${2:-?} k=${3:-?}
slog="$out/agent-$src.log"
resent=$(sed -n "s/.*stream to $dst: \([0-9]*\) unacked chunks of sub-stream $k will be sent again/\1/p" \
    "$slog" 2>/dev/null | awk '{s+=$1} END {print s+0}')
dups=$(/usr/bin/python3 -c "import json,sys; s=json.load(open(sys.argv[1]));
print(sum(a.get('metrics',{}).get('chunks_duplicate',0) for a in s['agents']))" \
    "$out/status.json" 2>/dev/null || echo '?')
if grep -q "stream to $dst: sub-stream $k moved to another path" "$slog" 2>/dev/null; then
    pass "$src sent the dead path's unacked chunks of sub-stream $k again at once: $resent resent ($dups arrived twice, dropped)"
else
    failc "$src treated sub-stream $k to $dst as moved off a failed path (agent log)"
fi
ups=$(sed -n "s/.*stream to $dst: sub-stream \([0-9]*\) moved off a path that is still up/\1/p" \
    "$slog" 2>/dev/null | sort -u)
moved_up=$(echo $ups | wc -w)
others=0
for x in $ups; do
    grep -q "stream to $dst: [0-9]* unacked chunks of sub-stream $x will" "$slog" &&
        others=$((others + 1))
done
if [ "$others" -eq 0 ]; then
    pass "sub-streams moved off paths still up resent nothing ($moved_up moved)"
else
    failc "sub-streams moved off paths still up resent nothing ($others of them resent)"
fi
echo "  figure: resent_chunks=$resent duplicates_dropped=$dups"
CHECK_RUN_OPTS=--faults
faults_finish
