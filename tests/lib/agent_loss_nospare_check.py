#!/usr/bin/env python3
"""Checks of tests/faults/agent_loss_nospare.sh: the middle stage's agent
of a 4-stage run on 4 agents (no spare) SIGKILLed for good. Reads the
undisturbed run's final /status and the disturbed run's OUT directory
(tests/lib/agent_loss.py, mode gone). Prints PASS:/FAIL: lines and
`figure:` lines.

usage: agent_loss_nospare_check.py A_STATUS B_OUT"""
import glob, json, re, sys
a_path, b = sys.argv[1], sys.argv[2]
bad = 0
def check(ok, what):
    global bad
    print(("PASS: " if ok else "FAIL: ") + what)
    bad += not ok
try:
    res = json.load(open(f"{b}/result.json"))
    sa, sb = json.load(open(a_path)), json.load(open(f"{b}/status.json"))
    log = open(f"{b}/controller.log").read()
except (OSError, ValueError) as e:
    print(f"FAIL: results of both runs readable ({e})")
    sys.exit(1)
victim, before = res["victim"], res["ranges_before"]
dead = before[1]
E = res["boundary_at_kill"]
print(f"victim {victim} (stage 2 of {res['placement_before']}, blocks "
      f"{dead[0]}-{dead[1]}) SIGKILLed for good at step "
      f"{res['victim_step']} of epoch 2 (boundary {E}); ranges {before}")

# The dead range went to one neighbour; the others kept theirs.
final = [[p["first_block"], p["last_block"]]
         for p in sorted(sb["placement"], key=lambda p: p["stage"])]
want = [[[before[0][0], dead[1]]] + before[2:],
        before[:1] + [[dead[0], before[2][1]]] + before[3:]]
print(f"figure: failover placement {res.get('placement_failover')} ranges "
      f"{final}, {res.get('failover_ms', 0) - res['kill_ms']} ms after the "
      f"kill")
check(final in want and victim not in res.get("placement_final", [victim])
      and res.get("ranges_failover") == final,
      f"3 stages, the dead blocks {dead[0]}-{dead[1]} merged into a "
      f"neighbour, the other ranges kept ({final})")
m = re.search(r"failover without a spare: blocks .* merged into .*", log)
print(m.group(0) if m else "no merge logged")
mr = next(r for r in final if r not in before)

# Every stage resumed from the boundary's checkpoints, the merged one from
# a checkpoint assembled from both parts (one of them the dead agent's).
rs = re.findall(r"generation (\d+) resumes every stage from the "
                r"checkpoints of epoch (\d+)", log)
# A stage resuming a checkpoint its agent made loads its own copy ("<agent>'s
# own copy: payload not sent"); the others get it as payload ("made by").
sent = [(st, f, l, e, n, made or own) for st, f, l, e, n, made, own in
        re.findall(r"stage (\d+) resumes from checkpoint \S+-b(\d+)-(\d+)-"
                   r"e(\d+) \((\d+) bytes, (?:made by (\S+)|(\S+)'s own "
                   r"copy: payload not sent)\)", log)]
got = {(int(f), int(l)): (int(e), made, int(n))
       for _, f, l, e, n, made in sent[-3:]}
print(f"resumes: {rs}; checkpoints at the failover: {sent[-3:]}")
asm = re.search(r"checkpoint of merged blocks .* assembled .*", log)
print(asm.group(0) if asm else "no merged checkpoint assembled")
rsm = sb["run"]["resume"]
print(f"/status run.resume: {json.dumps(rsm)}")
check(rs and int(rs[-1][1]) == E >= 1 and rsm["epoch"] == E
      and sorted(got) == sorted(map(tuple, final))
      and all(e == E for e, _, _ in got.values()),
      f"every stage resumed from the checkpoints of the last boundary "
      f"(epoch {E})")
mm = got.get(tuple(mr), (0, "", 0))
print(f"figure: merged stage blocks {mr[0]}-{mr[1]}: checkpoint of {mm[2]} "
      f"bytes made by {mm[1]}")
check(victim in mm[1].split("+") and len(mm[1].split("+")) == 2
      and rsm.get("merged", {}).get("blocks") == mr
      and rsm["merged"].get("checkpoints_assembled", 0) >= 1,
      "the merged stage resumed from a checkpoint assembled from both "
      "parts' copies, one made by the dead agent")
alogs = "".join(open(f).read() for f in glob.glob(f"{b}/agent-*.log"))
refused = re.findall(r"resume from .* refused.*", alogs)
loaded = re.search(r"resumed blocks %d-%d from checkpoint \S+" % tuple(mr),
                   alogs)
check(not refused and loaded, "the agent loaded the merged checkpoint "
      f"({loaded.group(0) if loaded else refused[:1]})")

# Heads by the block they follow. A kept stage upstream of the merged one
# computes what it did undisturbed: within 1 point. Downstream of it the
# input features changed (the merged blocks now train through another
# head), so a kept head there, like the merged stage's own, is compared
# with the undisturbed head after the same block and must not be worse
# by more than 1 point: it lost no training.
def heads(st):
    return {p["last_block"]: (p["first_block"], next(
        x for x in st["agents"] if x["name"] == p["agent"])["metrics"])
        for p in st["placement"]}
ha, hb_ = heads(sa), heads(sb)
same, lowest = 0, 1
for last in sorted(hb_):
    first, m = hb_[last]
    d = m["test_top1"] - ha[last][1]["test_top1"]
    what = ("merged" if [first, last] == mr else
            "kept, upstream of the merge" if last < mr[0] else
            "kept, downstream of the merge")
    print(f"figure: head after block {last} ({what}, blocks {first}-{last}): "
          f"undisturbed {ha[last][1]['test_top1']:.4f}, disturbed "
          f"{m['test_top1']:.4f}, difference {d:+.4f} (epoch "
          f"{m['eval_epoch']})")
    if last < mr[0]:
        same = max(same, abs(d))
    lowest = min(lowest, d)
check(len(hb_) == 3 and same <= 0.01 + 1e-9 and lowest >= -0.01 - 1e-9
      and all(m["eval_epoch"] >= min(x["eval_epoch"] for _, x in ha.values())
              for _, m in hb_.values()),
      f"the run completed; kept heads upstream of the merge within 1 point "
      f"of the undisturbed run (worst {same:.4f}), no head worse than it "
      f"by more than 1 point (lowest difference {lowest:+.4f})")
sys.exit(1 if bad else 0)
