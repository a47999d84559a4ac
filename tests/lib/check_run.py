"""Checks a finished run from its final /status (DIR/status.json) and the
OVS flow dumps taken before teardown (DIR/flows-<switch>.txt).

    check_run.py DIR EXPECTED_CHUNKS [--faults]

Prints PASS:/FAIL: lines: stages on distinct agents, every head beats
chance widely, each multipath stream's sub-streams carried byte shares
within 15% of their weights (OVS per-flow counters on the sender's switch),
and every stream delivered exactly EXPECTED_CHUNKS chunks, none twice
(copies of resent chunks, dropped by sequence number, at most 5%).
With --faults (a path failed during the run): no byte-share check, and
any number of copies dropped by sequence number (delivered exactly EXPECTED_CHUNKS: none lost, none
trained twice). Exits 1 if any check failed."""
import glob
import json
import os
import re
import sys

out, expect = sys.argv[1], int(sys.argv[2])
faults = "--faults" in sys.argv[3:]
failed = False


def check(ok, what):
    global failed
    failed |= not ok
    print(("PASS: " if ok else "FAIL: ") + what)


try:
    with open(os.path.join(out, "status.json")) as f:
        st = json.load(f)
except (OSError, ValueError) as e:
    check(False, f"final status readable ({e})")
    sys.exit(1)
agents = {a["name"]: a for a in st["agents"]}
stages = sorted(st["placement"], key=lambda p: p["stage"])
accs = [agents[p["agent"]].get("metrics", {}).get("test_top1", 0)
        for p in stages]
check(len({p["agent"] for p in stages}) == len(stages) >= 3,
      f"{len(stages)} stages on distinct agents")
check(min(accs) > 0.5, "every head beats chance (0.10) widely: "
      + ", ".join(f"{a:.3f}" for a in accs))

flows = {}
for path in glob.glob(os.path.join(out, "flows-*.txt")):
    with open(path) as f:
        flows[os.path.basename(path)[6:-4]] = f.read()
ok_split = bool(flows)
for p in [] if faults else st["paths"]:
    subs = p["substreams"]
    if len(subs) < 2:
        continue
    sw = agents[p["from"]].get("switch")
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
if not faults:
    check(ok_split, "multipath byte shares (OVS flow counters) within 15%"
          " of the weights")

bad = []
for p in st["paths"]:
    rcv = agents[p["to"]].get("metrics", {})
    print(f"  {p['from']}->{p['to']}: delivered {rcv.get('chunks_received')}"
          f" of {expect}, duplicates {rcv.get('chunks_duplicate')},"
          f" stalls {rcv.get('chunks_gap')}")
    # 'chunks_received' counts chunks handed to training in sequence order,
    # each seq once: equal to the expected count, none was lost or trained
    # twice. Copies of resent chunks (a sub-stream moved to another path,
    # or one stalled) are dropped by sequence number and counted apart;
    # without a fault they must stay rare.
    dups = rcv.get("chunks_duplicate") or 0
    if rcv.get("chunks_received") != expect or (
            not faults and dups > 0.05 * expect):
        bad.append(p["to"])
check(not bad and st["paths"],
      "every chunk delivered exactly once (none lost, none trained twice;"
      " copies of resent chunks dropped by sequence number"
      + ("" if faults else ", at most 5%") + ")")
sys.exit(1 if failed else 0)
