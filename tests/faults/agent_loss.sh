#!/bin/sh
# Issue 9, scenario 1, "agent loss and return", on the emulated linear-4pi
# (real OVS userspace datapath, one namespace per Pi, real controller and
# agents): a short 3-stage run with a spare Pi, once undisturbed and once
# with the middle stage's agent SIGKILLed mid-epoch 2 and restarted after
# the failover. Checks and prints: detection time (kill -> the controller's
# "is dead" line) within 3 heartbeat periods; a new placement without the
# dead agent; every stage resumed from the replicated checkpoints of the
# last epoch boundary; the run completes; each head's final test accuracy
# within 1 point of the undisturbed run (same seed); the returning agent
# holds a stage again from a later epoch boundary.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/check.sh
BUILD=${BUILD:-build}
if [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null; then
    echo "SKIP: needs root and openvswitch-switch"
    exit 0
fi
t0=$(now_ms)
T=$(mktemp -d /tmp/et-agent-loss.XXXXXX)
# Run ids and ports of our own: concurrent runs never share them.
ida=$(printf "%03x" $(( ($$ * 2) % 4096 )))
idb=$(printf "%03x" $(( ($$ * 2 + 1) % 4096 )))
mport=$(( 20000 + ($$ % 5000) * 2 ))
ofport=$(( mport + 1 ))
HB=500
STEPS=40
EPOCHS=4
TOPO=topology/linear-4pi.json
DATA='fashion-mnist?test-limit=1000'
# 'equal' placement: the same blocks per stage in both runs whatever the
# agents' measured speeds, so the heads compare one to one.
set -- --placement equal --stages 3 --alpha 0.5 --input 32 --channels 1 \
    --classes 10 --head-pool 4 --batch 128 --micro-batch 32 \
    --epochs $EPOCHS --steps-per-epoch $STEPS --lr 0.004 --seed 3 \
    --data "$DATA" --heartbeat-ms $HB --failover-s 1 --exit-when-done
emulate() {
    timeout 400 topology/emulate $TOPO --bin "$BUILD/bin" --threads 1 \
        --data "$DATA" --mgmt-port $mport --openflow-port $ofport "$@"
}

emulate --id "$ida" --out "$T/a" --seconds 300 -- "$@" >"$T/a.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "undisturbed run finished" ||
    { fail "undisturbed run finished (rc $rc)"; tail -n 20 "$T/a.log"; }

emulate --id "$idb" --out "$T/b" --allow-agent-exit \
    --exec "/usr/bin/python3 tests/lib/agent_loss.py $T/b $TOPO $BUILD/bin $STEPS" \
    -- "$@" >"$T/b.log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "run with the agent killed and restarted finished" ||
    { fail "run with the agent killed and restarted finished (rc $rc)";
      tail -n 20 "$T/b.log"; cat "$T/b/result.json" 2>/dev/null; }

/usr/bin/python3 - "$T/a/status.json" "$T/b" "$HB" <<'PYEOF' || failures=$((failures + 1))
import datetime, json, re, sys
a_path, b, hb = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
print(f"victim {victim} (stage 2 of {res['placement_before']}), killed at "
      f"step {res['victim_step']} of epoch 2")
m = re.search(r"^(\S+)Z .*agent '%s' is dead: (.*)$" % victim, log, re.M)
if m:
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
    dead_ms = round(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1e3)
    det = dead_ms - res["kill_ms"]
    print(f"detection: {det} ms after SIGKILL ({m.group(2)}); heartbeat "
          f"{hb} ms, bound {3 * hb} ms")
    check(det <= 3 * hb, f"controller noticed the dead agent within 3 "
          f"heartbeat periods ({det} ms <= {3 * hb} ms)")
else:
    check(False, "controller logged the agent dead")
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
      "the dead agent's stage resumed from the copy it had replicated")
snaps = res.get("snapshots", [])
back = [s for s in snaps if s[0] > res.get("restart_ms", 1e18)
        and victim in s[2]]
if back:
    print(f"returning agent holds stage {back[0][2].index(victim) + 1} again "
          f"from generation {back[0][1]} (epoch boundary {back[0][3]}; "
          f"restarted at boundary {res.get('boundary_at_restart')})")
check(bool(back) and victim in res.get("placement_final", []),
      "the returning agent has a stage again from a later epoch")
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
PYEOF
echo "total test time: $(( ($(now_ms) - t0) / 1000 )) s"
[ $failures -eq 0 ] && rm -rf "$T" || echo "logs kept in $T"
exit $([ $failures -eq 0 ] && echo 0 || echo 1)
