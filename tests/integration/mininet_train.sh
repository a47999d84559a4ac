#!/bin/sh
# End to end in Mininet: the diamond topology built by the Mininet launcher
# (OVSSwitch, userspace datapath, TCLink), edgetrain-controller as the remote
# controller, an agent on every host, a short block-wise run. Checks the
# run finishes, accuracy beats chance widely, the multipath sub-streams'
# OVS byte counters follow their weights, and no chunk is lost or doubled.
set -u
# The byte-share check compares whole-run OVS counters with the weights, so
# the weights stay as planned: no re-routing on measured link load
# (--replan-threshold 1); a late re-weight (0.60 -> 0.52) failed it once.
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ "$(id -u)" != 0 ] || ! command -v mn >/dev/null; then
    echo "SKIP: needs root and mininet"
    exit 0
fi
fail=0
out=$(mktemp -d)
after='for b in $(env | sed -n "s/^MN_BR_\([^=]*\)=\(.*\)/\1=\2/p"); do
    ovs-ofctl -O OpenFlow13 dump-flows "${b#*=}" > "$MN_OUT/flows-${b%%=*}.txt"; done'
timeout 600 topology/mininet/edgetrain_mn.py topology/diamond-4pi.json \
    --bin "$BUILD/bin" --out "$out" --seconds 400 --after "$after" \
    --data 'fashion-mnist?test-limit=2000' -- \
    --alpha 0.5 --input 32 --channels 1 --classes 10 --head-pool 4 \
    --batch 128 --micro-batch 32 --epochs 2 --steps-per-epoch 50 --stages 3 \
    --lr 0.004 --seed 3 --data 'fashion-mnist?test-limit=2000' \
    --replan-threshold 1 --exit-when-done >"$out/mn.log" 2>&1
rc=$?
if [ $rc -eq 0 ]; then echo "PASS: Mininet run finished"; else
    echo "FAIL: Mininet run finished (rc $rc)"; tail -n 30 "$out/mn.log"; fail=1; fi
grep '^test_accuracy=' "$out/mn.log"
/usr/bin/python3 tests/lib/check_run.py "$out" $((2 * (50 * 4 + 15 * 4 + 3))) || fail=1
ns=$(sed -n 's/^edgetrain-mn: namespace \([^,]*\), run dir \(.*\)/\1/p' "$out/mn.log")
dir=$(sed -n 's/^edgetrain-mn: namespace \([^,]*\), run dir \(.*\)/\2/p' "$out/mn.log")
[ -n "$ns" ] && ! ip netns list | grep -q "^$ns" && [ ! -e "$dir" ] &&
    echo "PASS: no namespace or run dir left ($ns)" || { echo "FAIL: no namespace or run dir left ($ns)"; fail=1; }
rm -rf "$out"
exit $fail
