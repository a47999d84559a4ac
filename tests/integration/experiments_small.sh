#!/bin/sh
# The experiment harness end to end on its tiniest spec (one emulated run of
# the heterogeneous topology, two epochs of 8 steps): the CSV has every
# column, one row, and sane values (throughput positive and below what the
# machine could do, a placement with its bottleneck, bytes on the paths,
# head accuracies in [0,1]); the report and its plots come out of it.
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
trap 'rm -rf "$out"' EXIT

# Without root the harness refuses with a clear message (checked as nobody).
if command -v setpriv >/dev/null; then
    msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
          /usr/bin/python3 tests/experiments/run.py \
          --spec tests/experiments/tiny.json --out "$out/nobody" 2>&1)
    case "$msg" in
        *"needs root"*) pass "harness refuses to run without root" ;;
        *) failc "harness without root: $msg" ;;
    esac
fi

timeout 240 /usr/bin/python3 tests/experiments/run.py \
    --spec tests/experiments/tiny.json --bin "$BUILD/bin" --out "$out" \
    --report >"$out/log" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "tiny matrix ran" || { failc "tiny matrix ran (rc $rc)"; tail -n 30 "$out/log"; }

/usr/bin/python3 - "$out" <<'EOF' || fail=1
import csv, os, sys
sys.path.insert(0, "tests/experiments")
import run
out = sys.argv[1]
bad = []
def check(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what)
    if not ok:
        bad.append(what)
with open(os.path.join(out, "results.csv"), newline="") as f:
    rd = csv.DictReader(f)
    cols = rd.fieldnames or []
    rows = list(rd)
check(all(c in cols for c in run.COLUMNS), "CSV has every documented column")
check(len(rows) == 1, f"CSV has one row per run ({len(rows)})")
r = rows[0] if rows else {c: "" for c in run.COLUMNS}
num = lambda k: float(r[k]) if r.get(k) not in (None, "") else -1.0
check(r["status"] == "ok", f"run status ok ({r['status']})")
check((r["topology"], r["placement"], r["routing"], r["k"], r["encoding"]) ==
      ("hetero", "bottleneck-dp", "ksp-waterfill", "3", "f16"),
      "row names the configuration of the spec")
# Images/s of a 4-device emulated pipeline on 2 cores: far from 0, far
# below 100k; s/epoch consistent with it.
tp = num("throughput_img_s")
check(10 < tp < 100000, f"throughput sane ({tp} images/s)")
check(abs(num("epoch_s") * tp - 8 * 128) < 0.02 * 8 * 128,
      "epoch time x throughput = images of an epoch")
check(num("planned_img_s") > 0, "planned throughput recorded")
st = int(num("stages"))
check(st >= 1 and len(r["placement_chosen"].split()) == st,
      f"placement of {st} stages recorded ({r['placement_chosen']})")
check(r["bottleneck_kind"] in ("compute", "network") and
      r["bottleneck_agent"] in r["placement_chosen"],
      f"bottleneck stage and kind ({r['bottleneck_agent']}, {r['bottleneck_kind']})")
accs = [float(x) for x in r["head_top1"].split(";") if x]
check(len(accs) == st and all(0 <= a <= 1 for a in accs),
      f"one accuracy in [0,1] per head ({r['head_top1']})")
if st > 1:
    check(num("total_bytes") > 1e6 and "@" in r["paths"],
          f"sub-streams carried bytes on recorded paths ({r['total_bytes']} B)")
check(os.path.isfile(os.path.join(out, "report.md")), "report.md written")
check(os.path.getsize(os.path.join(out, "throughput.png")) > 1000,
      "throughput plot drawn")
sys.exit(1 if bad else 0)
EOF
exit $fail
