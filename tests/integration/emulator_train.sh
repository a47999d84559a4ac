#!/bin/sh
# End to end on the emulated 4-Pi diamond: real OVS (userspace datapath),
# one namespace per Pi, shaped links, the real controller and agents, a
# short block-wise training run on Fashion-MNIST. Checks that accuracy beats
# chance widely, that the sub-streams of every multipath stream carried
# bytes in proportion to their weights (OVS per-flow byte counters, within
# 15%), that no chunk was lost or duplicated, and that teardown left nothing.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
fail=0
pass() { echo "PASS: $1"; }
failc() { echo "FAIL: $1"; fail=1; }
if [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null; then
    echo "SKIP: needs root and openvswitch-switch"
    exit 0
fi
out=$(mktemp -d)
log=$out/emulate.log
# The after-hook runs before teardown: it reads every bridge's flows.
after='for b in $(env | sed -n "s/^EMU_BR_\([^=]*\)=\(.*\)/\1=\2/p"); do
    ovs-ofctl -O OpenFlow13 dump-flows "${b#*=}" > "$EMU_OUT/flows-${b%%=*}.txt"; done'
timeout 600 topology/emulate topology/diamond-4pi.json --bin "$BUILD/bin" \
    --id e02 --out "$out" --threads 1 --seconds 400 --after "$after" \
    --data 'fashion-mnist?test-limit=2000' -- \
    --alpha 0.5 --input 32 --channels 1 --classes 10 --head-pool 4 \
    --batch 128 --micro-batch 32 --epochs 2 --steps-per-epoch 50 --stages 3 \
    --lr 0.004 --seed 3 --data 'fashion-mnist?test-limit=2000' \
    --exit-when-done >"$log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "emulated run finished" || { failc "emulated run finished (rc $rc)"; tail -n 30 "$log"; }
grep '^test_accuracy=' "$log"

/usr/bin/python3 - "$out" <<'PY'
import glob, json, os, re, sys
out = sys.argv[1]
def check(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what)
try:
    st = json.load(open(os.path.join(out, "status.json")))
except (OSError, ValueError) as e:
    check(False, f"final status readable ({e})")
    sys.exit(0)
agents = {a["name"]: a for a in st["agents"]}
stages = sorted(st["placement"], key=lambda p: p["stage"])
accs = [agents[p["agent"]]["metrics"]["test_top1"] for p in stages]
check(len(stages) >= 3, f"{len(stages)} stages on distinct agents")
check(min(accs) > 0.5, "every head beats chance (0.10) widely: "
      + ", ".join(f"{a:.3f}" for a in accs))

flows = {}
for f in glob.glob(os.path.join(out, "flows-*.txt")):
    flows[os.path.basename(f)[6:-4]] = open(f).read()
ok_split = True
for p in st["paths"]:
    subs = p["substreams"]
    if len(subs) < 2:
        continue
    sender = agents[p["from"]]
    sw = sender["switch"]
    nbytes = []
    for s in subs:
        m = re.search(r"n_bytes=(\d+),.*tp_src=%d[ ,]" % s["local_port"],
                      flows.get(sw, ""))
        nbytes.append(int(m.group(1)) if m else 0)
    total = sum(nbytes) or 1
    for s, b in zip(subs, nbytes):
        share = b / total
        good = abs(share - s["weight"]) <= 0.15 * s["weight"]
        ok_split &= good
        print(f"  {p['from']}->{p['to']} port {s['local_port']} via"
              f" {','.join(s['hops'])}: weight {s['weight']:.2f},"
              f" OVS bytes share {share:.3f}{'' if good else '  <-- off'}")
check(ok_split and flows, "multipath byte shares (OVS flow counters) within"
      " 15% of the weights")

# Every stream carries the same chunks: per epoch 50 steps x 4 micro-batches
# of training, then the 2000 test images in steps of 128 (15 x 4 + 3).
expect = 2 * (50 * 4 + 15 * 4 + 3)
bad = []
for p in st["paths"]:
    rcv = agents[p["to"]]["metrics"]
    print(f"  {p['from']}->{p['to']}: delivered {rcv.get('chunks_received')}"
          f" of {expect}, duplicates {rcv.get('chunks_duplicate')},"
          f" stalls {rcv.get('chunks_gap')}")
    if rcv.get("chunks_received") != expect or rcv.get("chunks_duplicate"):
        bad.append(p["to"])
check(not bad, "every chunk delivered exactly once, none duplicated")
PY
left=$(ip netns list | grep -c '^ete02'; ip -o link | grep -c 'ete02'; ls /sys/fs/cgroup/cpu | grep -c '^ete02'; pgrep -fc 'edgetrain-ete02')
if [ "$(echo $left | tr -d ' 0')" = "" ]; then
    pass "teardown left no namespace, link, cgroup or process"
else
    failc "teardown left objects behind: $left"
fi
rm -rf "$out"
exit $fail
