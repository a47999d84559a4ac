#!/usr/bin/env python3
"""Checks of tests/faults/agent_loss.sh on one disturbed run: reads the
undisturbed run's final /status, and the disturbed run's OUT directory
written by tests/lib/agent_loss.py (result.json, status.json, the
controller's log). Prints PASS:/FAIL: lines and the measured figures.

usage: agent_loss_check.py A_STATUS B_OUT HEARTBEAT_MS TIMEOUT_PERIODS"""
import datetime, json, re, sys
a_path, b, hb = sys.argv[1], sys.argv[2], int(sys.argv[3])
periods = int(sys.argv[4])
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
victim = res["victim"]
how = {"kill": "SIGKILLed", "stop": "SIGSTOPped (silent: no FIN)",
       "back": "SIGKILLed and restarted at once"}
print(f"victim {victim} (stage 2 of {res['placement_before']}), "
      f"{how[res['mode']]} at step {res['victim_step']} of epoch 2")
m = re.search(r"^(\S+)Z .*agent '%s' is dead: (.*)$" % victim, log, re.M)
if m:
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    dead_ms = round(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1e3)
    det = dead_ms - res["kill_ms"]
    print(f"detection: {det} ms after the fault ({m.group(2)}); heartbeat "
          f"{hb} ms, dead after {periods} silent periods, bound {3 * hb} ms")
    check(det <= 3 * hb, f"controller noticed the dead agent within 3 "
          f"heartbeat periods ({det} ms <= {3 * hb} ms)")
else:
    check(False, "controller logged the agent dead")
if res["mode"] == "back":
    check(res.get("placement_final") == res["placement_before"],
          "the agent back before the failover keeps the placement "
          f"{res['placement_before']}")
else:
    fo = res.get("placement_failover", [])
    print(f"failover placement {fo} "
          f"{res.get('failover_ms', 0) - res['kill_ms']} ms after the kill")
    check(fo and victim not in fo and len(fo) == len(res["placement_before"]),
          "new placement over the remaining agents, without the dead one")
rs = re.findall(r"generation (\d+) resumes every stage from the checkpoints "
                r"of epoch (\d+)", log)
sent = re.findall(r"stage (\d+) resumes from checkpoint (\S+) \((\d+) bytes, "
                  r"made by (\S+)\)", log)
print(f"resumes: {rs}; checkpoints sent: {len(sent)}, e.g. {sent[:1]}")
check(rs and int(rs[0][1]) >= 1 and res.get("start_epoch_failover", 0) >= 1,
      "every stage resumed from the last boundary's checkpoints "
      f"(start epoch {res.get('start_epoch_failover')})")
check(any(made == victim for _, _, _, made in sent),
      "the dead agent's stage resumed from the copy it had replicated "
      "off the device")
# Checkpoint payloads: an agent resuming the checkpoint it made (same
# registration) loads its own copy; before, every resuming stage got the
# payload. Both from the log, cross-checked with /status.
own = re.findall(r"stage \d+ resumes from checkpoint \S+ \((\d+) bytes, "
                 r"\S+'s own copy: payload not sent\)", log)
asked = re.findall(r"checkpoint \S+ sent to '\S+' on its request \((\d+) "
                   r"bytes", log)
mb = lambda xs: sum(int(x) for x in xs) / 1e6
shipped = mb([b for _, _, b, _ in sent] + asked)
before = mb([b for _, _, b, _ in sent] + own)
rs = sb["run"]["resume"]
print(f"figure: checkpoint payload shipped by the resumes {shipped:.1f} MB "
      f"({len(sent) + len(asked)} frames; {len(own)} stages used their own "
      f"copy, {len(asked)} asked for it), every stage's copy as before "
      f"{before:.1f} MB ({len(sent) + len(own)} frames)")
check(rs.get("checkpoints_local") == len(own) and own
      and abs(rs.get("checkpoint_bytes_sent", -1) / 1e6 - shipped) < 1e-6
      and shipped < before,
      f"stages that made their checkpoint resumed from their own copy "
      f"({len(own)}, /status checkpoints_local {rs.get('checkpoints_local')}):"
      f" {shipped:.1f} MB shipped instead of {before:.1f} MB")
snaps = res.get("snapshots", [])
back = [s for s in snaps if s[0] > res.get("restart_ms", 1e18)
        and victim in s[2]]
if back:
    print(f"returning agent holds stage {back[0][2].index(victim) + 1} again "
          f"from generation {back[0][1]} (epoch boundary {back[0][3]}; "
          f"restarted at boundary {res.get('boundary_at_restart')}, "
          f"registered at boundary {res.get('boundary_at_register')})")
# From the next epoch boundary after it registered on (later boundaries
# may move it again by the gain rule).
check(bool(back) and back[0][3] <= res.get("boundary_at_register", 0) + 1,
      "the returning agent has a stage again from the next epoch boundary")
heads = lambda st: {p["stage"]: next(
    x for x in st["agents"] if x["name"] == p["agent"])["metrics"]
    for p in st["placement"]}
ha, hb_ = heads(sa), heads(sb)
worst = 0
for s in sorted(ha):
    d = hb_[s]["test_top1"] - ha[s]["test_top1"]
    worst = max(worst, abs(d))
    print(f"head {s + 1}: undisturbed {ha[s]['test_top1']:.4f}, disturbed "
          f"{hb_[s]['test_top1']:.4f}, difference {d:+.4f} (epoch "
          f"{hb_[s]['eval_epoch']})")
check(len(ha) == len(hb_) and worst <= 0.01 and
      all(h["eval_epoch"] >= ha[0]["eval_epoch"] for h in hb_.values()),
      f"every head's final accuracy within 1 point of the undisturbed run "
      f"(worst {worst:.4f})")
sys.exit(1 if bad else 0)
