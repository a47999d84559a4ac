#!/usr/bin/env python3
"""Checks of tests/faults/agent_loss_nospare.sh: the middle stage's agent
of a 4-stage run on 4 agents (no spare) SIGKILLed, for good (mode gone)
or restarted after the failover (mode return: the merged stage is split
again and the placement before the failover comes back). Reads the
undisturbed run's final /status and the disturbed run's OUT directory
(tests/lib/agent_loss.py). Prints PASS:/FAIL: lines and `figure:` lines.

usage: agent_loss_nospare_check.py A_STATUS B_OUT [gone|return]"""
import glob, json, re, sys
a_path, b = sys.argv[1], sys.argv[2]
mode = sys.argv[3] if len(sys.argv) > 3 else "gone"
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
# The failover's part of the log: up to the home placement's return.
back = re.search(r"boundary, agents back: new placement", log)
full_log, log = log, log[:back.start()] if back else log
victim, before = res["victim"], res["ranges_before"]
dead = before[1]
E = res["boundary_at_kill"]
print(f"victim {victim} (stage 2 of {res['placement_before']}, blocks "
      f"{dead[0]}-{dead[1]}) SIGKILLed "
      f"{'for good' if mode == 'gone' else 'and restarted after the failover'}"
      f" at step "
      f"{res['victim_step']} of epoch 2 (boundary {E}); ranges {before}")

# The dead range went to one neighbour; the others kept theirs.
final = [[p["first_block"], p["last_block"]]
         for p in sorted(sb["placement"], key=lambda p: p["stage"])]
if mode == "return":
    final = res.get("ranges_failover", [])
want = [[[before[0][0], dead[1]]] + before[2:],
        before[:1] + [[dead[0], before[2][1]]] + before[3:]]
print(f"figure: failover placement {res.get('placement_failover')} ranges "
      f"{final}, {res.get('failover_ms', 0) - res['kill_ms']} ms after the "
      f"kill")
check(final in want
      and victim not in res.get("placement_failover", [victim])
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
check(rs and int(rs[-1][1]) == E >= 1
      and (rsm["epoch"] == E or mode == "return")
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

if mode == "return":
    # The agent back: at a boundary after it registered, the merged
    # checkpoint is split into the parts' and every stage of the placement
    # before the failover resumes from that boundary.
    reg, home_b = res.get("boundary_at_register"), res.get("boundary_at_home")
    print(f"figure: placement before the failover back "
          f"{res.get('home_ms', 0) - res.get('restart_ms', 0)} ms after the "
          f"restart (registered at boundary {reg}, back at boundary "
          f"{home_b}, generation {res.get('generation_home')}, from epoch "
          f"{res.get('start_epoch_home')})")
    # agent_loss.py waited for exactly that placement (agents and ranges).
    # A later boundary may still move stages by the gain rule (the ranges
    # stay: 'equal' placement), so the end has the ranges and the agent.
    fin = res.get("placement_final", [])
    check(home_b is not None and reg is not None and home_b <= reg + 1
          and res.get("ranges_final") == before and victim in fin,
          f"the placement before the failover ({len(before)} stages on "
          f"{res['placement_before']}) back from the next epoch boundary; "
          f"at the end {fin} on the same ranges")
    sp = re.search(r"checkpoint of merged blocks (\d+)-(\d+) after epoch "
                   r"(\d+) split into blocks (\d+)-(\d+) \((\d+) bytes, "
                   r"(.*?)\) and (\d+)-(\d+) \((\d+) bytes, .*? in "
                   r"([\d.]+) ms", full_log)
    print(sp.group(0) if sp else "no split logged")
    Es = int(sp.group(3)) if sp else -1
    parts = [[int(sp.group(4)), int(sp.group(5))],
             [int(sp.group(8)), int(sp.group(9))]] if sp else []
    if sp:
        print(f"figure: merged checkpoint of epoch {Es} split in "
              f"{sp.group(11)} ms into {int(sp.group(6)) / 1e6:.2f} + "
              f"{int(sp.group(10)) / 1e6:.2f} MB")
    check(sp and [int(sp.group(1)), int(sp.group(2))] == mr
          and parts and all(p in before for p in parts)
          and f"from its checkpoint of epoch {E} before the merge"
          in sp.group(7),
          f"the merged blocks {mr} split back into their parts {parts} at "
          f"boundary {Es}, the earlier part's head from its checkpoint of "
          f"epoch {E} (before the merge)")
    tail = full_log[back.start():] if back else ""
    rs2 = re.findall(r"generation (\d+) resumes every stage from the "
                     r"checkpoints of epoch (\d+)", tail)
    sent2 = re.findall(r"stage (\d+) resumes from checkpoint \S+-b(\d+)-"
                       r"(\d+)-e(\d+) \((\d+) bytes, (?:made by (\S+)|(\S+)'s "
                       r"own copy: payload not sent)\)", tail)[:len(before)]
    got2 = {(int(f), int(l)): (int(e), made or own)
            for _, f, l, e, _, made, own in sent2}
    print(f"resumes after the return: {rs2[:1]}; checkpoints: {sent2}")
    loaded2 = [re.search(r"resumed blocks %d-%d from checkpoint \S+-b%d-%d-"
                         r"e%d" % (p[0], p[1], p[0], p[1], Es), alogs)
               for p in parts]
    for m_ in loaded2:
        print(m_.group(0) if m_ else "split checkpoint not loaded")
    check(rs2 and int(rs2[0][1]) == Es
          and sorted(got2) == sorted(map(tuple, before))
          and all(e == Es for e, _ in got2.values())
          and all(got2.get(tuple(p), (0, ""))[1].endswith("/split")
                  for p in parts) and parts and all(loaded2),
          f"every stage resumed from the checkpoints of epoch {Es}, the "
          f"parts from the split ones (agents loaded them)")
    mg = sb["run"]["resume"].get("merged", {})
    check(mg.get("active") is False and sb["run"]["resume"]["epoch"] >= Es
          and (mg.get("split_back") or {}).get("epoch") == Es
          and (mg.get("split_back") or {}).get("head_epoch") == E
          and (mg.get("split_back") or {}).get("fresh_head") is False,
          f"/status merged: not active, split_back {mg.get('split_back')}")

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
    what = ("split back" if mode == "return" and [first, last] in parts
            else "merged" if [first, last] == mr else
            "kept, upstream of the merge" if last < mr[0] else
            "kept, downstream of the merge")
    print(f"figure: head after block {last} ({what}, blocks {first}-{last}): "
          f"undisturbed {ha[last][1]['test_top1']:.4f}, disturbed "
          f"{m['test_top1']:.4f}, difference {d:+.4f} (epoch "
          f"{m['eval_epoch']})")
    if last < mr[0]:
        same = max(same, abs(d))
    lowest = min(lowest, d)
if mode == "return":
    # Loose: the split parts lost no training but trained an epoch merged
    # (the earlier part's head not at all in it).
    check(len(hb_) == len(before) and lowest >= -0.03 - 1e-9
          and all(m["eval_epoch"] >= min(x["eval_epoch"]
                                         for _, x in ha.values())
                  for _, m in hb_.values()),
          f"the run completed on {len(before)} stages; no head worse than "
          f"the undisturbed run's by more than 3 points (lowest difference "
          f"{lowest:+.4f})")
    sys.exit(1 if bad else 0)
check(len(hb_) == 3 and same <= 0.01 + 1e-9 and lowest >= -0.01 - 1e-9
      and all(m["eval_epoch"] >= min(x["eval_epoch"] for _, x in ha.values())
              for _, m in hb_.values()),
      f"the run completed; kept heads upstream of the merge within 1 point "
      f"of the undisturbed run (worst {same:.4f}), no head worse than it "
      f"by more than 1 point (lowest difference {lowest:+.4f})")
sys.exit(1 if bad else 0)
