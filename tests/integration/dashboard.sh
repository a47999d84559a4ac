#!/bin/sh
# Integration: the live dashboard (GET /) in a real headless Chromium.
#
# A real edgetrain-controller plans a 4-stage run on the diamond topology
# (6 switches, 4 Pis, 12 links; no OpenFlow: paths are planned, not
# installed) for four `edgetrain agent-sim` clients that report metrics,
# epochs and a rising evaluation accuracy. Chromium loads the page twice,
# a few seconds apart (--dump-dom after the page has polled /status), and
# the DOM is checked against /status: an SVG node for every switch and
# agent, a line for every link, a strand for every planned sub-stream, the
# placement table, the paths list, the run state, chart points; and the
# second dump shows more training steps than the first (the page updates).
# A screenshot is taken too (SCREENSHOT=FILE keeps it).
#
# Then, with root and Open vSwitch, the same on a running emulated job
# (topology/emulate: OVS bridges, namespaces, shaped links, the real
# controller with OpenFlow and four real agents training): every switch
# shown connected, some link drawn with measured utilisation > 0, the
# page updating, and the run finishing. DASHBOARD_EMULATE=0 skips that part.
# Without chromium it prints SKIP and counts nothing.
set -u
BUILD=${BUILD:-build}
HERE=$(cd "$(dirname "$0")/.." && pwd)
TOPO=$HERE/../topology/diamond-4pi.json

skip() { echo "SKIP: dashboard: $*"; exit 0; }
CHROMIUM=$(command -v chromium || command -v chromium-browser) ||
    skip "needs chromium (Debian package chromium)"
command -v python3 >/dev/null 2>&1 || skip "needs python3"

T=$(mktemp -d /tmp/et-dash.XXXXXX)
. tests/lib/procs.sh
# chromium MODE OUT: a fresh profile each time; the virtual-time budget
# lets the page run its first polls of /status before the DOM is taken.
chromium() {
    _prof=$(mktemp -d "$T/profile.XXXXXX")
    if [ "$1" = dom ]; then _mode=--dump-dom; else _mode=--screenshot="$2"; fi
    timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking \
        --disable-component-update --disable-sync --disable-dev-shm-usage \
        --user-data-dir="$_prof" --window-size=1400,1250 \
        --virtual-time-budget=3500 $_mode "http://127.0.0.1:$HPORT/" \
        >"$T/chromium.out" 2>"$T/chromium.err"
    _rc=$?
    [ "$1" = dom ] && cp "$T/chromium.out" "$2"
    rm -rf "$_prof"
    return $_rc
}

start_controller ctl --topology "$TOPO" --expect-agents 4 --stages 4 \
    --substreams 2 --epochs 1000 --heartbeat-ms 1000 ||
    { fail "controller starts"; exit 1; }
for a in pi1 pi2 pi3 pi4; do
    sim "sim-$a.out" --name "$a" --metrics-ms 200 --epoch-ms 1000 --eval \
        --exit-after-ms 60000
done
for a in pi1 pi2 pi3 pi4; do
    wait_for "$T/sim-$a.out" 10 "^assignment" || fail "agent-sim $a assigned"
done
sleep 1.5    # metrics and a first evaluation arrive

# 1. The page itself: served at / and /dashboard, self-contained.
if python3 - "$HPORT" <<'PY'
import sys, urllib.request
port = sys.argv[1]
pages = []
for path in ("/", "/dashboard"):
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5)
    assert r.status == 200, (path, r.status)
    assert r.headers["Content-Type"].startswith("text/html"), r.headers["Content-Type"]
    pages.append(r.read().decode())
assert pages[0] == pages[1]
p = pages[0]
assert "<svg" in p and "/status" in p
# No external resources: nothing loaded from another origin.
for bad in ("http://", "https://", "//cdn"):
    for line in p.splitlines():
        if bad in line and "w3.org/2000/svg" not in line:
            raise SystemExit(f"external reference: {line.strip()}")
PY
then pass "GET / and /dashboard serve the self-contained page"
else fail "GET / and /dashboard serve the self-contained page"; fi

# 2. Two renderings a few seconds apart, each against /status.
chromium dom "$T/dom1.html" || fail "chromium dumps the DOM (1)"
python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$HPORT/status').read().decode())" >"$T/status.json"
sleep 2.5
chromium dom "$T/dom2.html" || fail "chromium dumps the DOM (2)"
SHOT=${SCREENSHOT:-$T/shot.png}
chromium shot "$SHOT" || fail "chromium takes a screenshot"

cat >"$T/check.py" <<'PY'
import json, sys
from html.parser import HTMLParser

class Dom(HTMLParser):
    def __init__(self, text):
        super().__init__()
        self.els = []
        self.feed(text)
    def handle_starttag(self, tag, attrs):
        self.els.append((tag, dict(attrs)))
    handle_startendtag = handle_starttag
    def find(self, tag=None, **want):
        return [a for t, a in self.els if (tag is None or t == tag)
                and all(a.get(k.replace("_", "-")) == v for k, v in want.items())]
    def byid(self, i):
        r = [a for t, a in self.els if a.get("id") == i]
        return r[0] if r else {}

mode = sys.argv[1]    # sim: agent-sim clients, no OpenFlow; emu: emulated job
s = json.load(open(sys.argv[2]))
d1, d2 = Dom(open(sys.argv[3]).read()), Dom(open(sys.argv[4]).read())
fails = 0
def check(name, ok):
    global fails
    print(("PASS: " if ok else "FAIL: ") + mode + ": " + name)
    fails += not ok

def nodes(d, kind):
    return sorted(a["data-name"] for a in d.find("g", data_kind=kind))
check("page polled /status (polls counter %s, %s)"
      % (d1.byid("polls").get("data-polls"), d2.byid("polls").get("data-polls")),
      int(d1.byid("polls").get("data-polls", 0)) >= 1
      and int(d2.byid("polls").get("data-polls", 0)) >= 1)
check("topology: an SVG node for every switch (%d)" % len(s["switches"]),
      nodes(d1, "switch") == sorted(x["name"] for x in s["switches"]))
check("topology: an SVG node for every agent (%d)" % len(s["agents"]),
      nodes(d1, "agent") == sorted(x["name"] for x in s["agents"]))
links = {a["data-link"] for a in d1.find("line") if "data-link" in a}
check("topology: a line for every link (%d)" % len(s["links"]),
      links == {l["a"] + "-" + l["b"] for l in s["links"]} and len(links) == 12)
check("run state shown as %s" % d1.byid("run-state").get("data-state"),
      d1.byid("run-state").get("data-state") == s["run"]["state"] == "running")
rows = {(a["data-stage"], a["data-agent"]) for a in d1.find("tr") if "data-stage" in a}
check("placement table: one row per stage with its agent",
      rows == {(str(p["stage"]), p["agent"]) for p in s["placement"]} and len(rows) >= 2)
stage_of = {a["data-name"]: a.get("data-stage") for a in d1.find("g", data_kind="agent")}
check("agents in the graph carry their stage",
      all(stage_of[p["agent"]] == str(p["stage"]) for p in s["placement"]))
nsub = sum(len(r["substreams"]) for r in s["paths"])
strands = [a for a in d1.find("path") if a.get("id", "").startswith("stream-")]
check("paths: a strand per planned sub-stream (%d) with its weight" % nsub,
      nsub >= 3 and len(strands) == nsub and
      sorted(float(a["data-weight"]) for a in strands)
      == sorted(float(x["weight"]) for r in s["paths"] for x in r["substreams"]))
routes = {(a["data-from"], a["data-to"]) for a in d1.find("div") if "data-route" in a}
check("paths list: one entry per stream",
      routes == {(r["from"], r["to"]) for r in s["paths"]} and len(routes) == len(s["placement"]) - 1 >= 1)
def progress(d):
    # (epoch, step) per agent from the agents table (step restarts each epoch)
    out, agent, epoch = {}, None, None
    for t, a in d.els:
        if t == "tr" and "data-agent" in a and "data-stage" not in a:
            agent = a["data-agent"]
        elif t == "td" and "data-epoch" in a:
            epoch = int(a["data-epoch"] or -1)
        elif t == "td" and "data-step" in a and agent:
            out[agent] = (epoch, int(a["data-step"] or -1))
    return out
p1, p2 = progress(d1), progress(d2)
check("page updates: (epoch, step) %s then %s" % (sorted(p1.values()), sorted(p2.values())),
      len(p1) == len(s["agents"]) and p1.keys() == p2.keys()
      and all(p2[a] >= p1[a] for a in p1) and any(p2[a] > p1[a] for a in p1))
pts = [int(d2.byid(c).get("data-points", 0)) for c in ("chart-ips", "chart-acc", "chart-loss")]
# Accuracy exists once a stage has evaluated an epoch (the agent-sim ones
# after 1 s; an emulated job maybe not yet when the page is looked at).
evaluated = any(a.get("metrics", {}).get("eval_done") for a in s["agents"])
check("charts have points (throughput %d, accuracy %d, loss %d)" % tuple(pts),
      pts[0] > 0 and pts[2] > 0 and (pts[1] > 0 or not evaluated)
      and (evaluated or mode == "emu"))
if mode == "emu":
    conn = {a["data-name"]: a.get("data-connected") for a in d2.find("g", data_kind="switch")}
    check("every switch drawn as connected to the controller",
          len(conn) == 6 and all(v == "1" for v in conn.values()))
    utils = [float(a["data-util"]) for a in d2.find("line") if "data-util" in a]
    check("link utilisation drawn from measured rates (max %.2f)" % max(utils),
          max(utils) > 0.01)
if len(sys.argv) > 5:
    png = open(sys.argv[5], "rb").read()
    check("screenshot is a PNG (%d bytes)" % len(png),
          png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000)
sys.exit(1 if fails else 0)
PY
python3 "$T/check.py" sim "$T/status.json" "$T/dom1.html" "$T/dom2.html" "$SHOT" ||
    fails=$((fails + 1))
for p in $pids; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
pids=""

# 3. A running emulated job.
status_to() {   # FILE: /status of the controller on $HPORT
    python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$HPORT/status', timeout=5).read().decode())" >"$1" 2>/dev/null
}
free_port() {
    python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
}
if [ "${DASHBOARD_EMULATE:-1}" = 0 ]; then
    echo "SKIP: dashboard: emulated job (DASHBOARD_EMULATE=0)"
elif [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null 2>&1; then
    echo "SKIP: dashboard: emulated job needs root and openvswitch-switch"
else
    HPORT=$(free_port)
    id=$(printf "%03x" $(( ($$ + 7) % 4096 )))
    (cd "$HERE/.." && exec timeout 300 topology/emulate topology/diamond-4pi.json \
        --bin "$BIN" --id "$id" --out "$T/emu" --threads 1 --seconds 240 \
        --http-port "$HPORT" --mgmt-port "$(free_port)" \
        --openflow-port "$(free_port)" --data 'fashion-mnist?test-limit=1000' -- \
        --alpha 0.5 --input 32 --channels 1 --classes 10 --head-pool 4 \
        --batch 128 --micro-batch 32 --epochs 3 --steps-per-epoch 80 \
        --stages 4 --lr 0.004 --seed 5 --data 'fashion-mnist?test-limit=1000' \
        --exit-when-done) >"$T/emu.log" 2>&1 &
    EMUPID=$!
    pids="$EMUPID"
    # Wait until every stage has reported training steps.
    _end=$(( $(now_ms) + 120000 ))
    until status_to "$T/emu-status.json" && python3 -c "
import json, sys
s = json.load(open('$T/emu-status.json'))
st = {p['agent'] for p in s['placement']}
ok = s['run']['state'] == 'running' and st and all(
    a.get('metrics', {}).get('step', 0) > 0 for a in s['agents'] if a['name'] in st)
sys.exit(0 if ok else 1)" 2>/dev/null; do
        if [ "$(now_ms)" -ge "$_end" ] || ! kill -0 "$EMUPID" 2>/dev/null; then
            break
        fi
        sleep 0.5
    done
    if chromium dom "$T/emu-dom1.html" && status_to "$T/emu-status.json" &&
       sleep 2 && chromium dom "$T/emu-dom2.html"; then
        python3 "$T/check.py" emu "$T/emu-status.json" "$T/emu-dom1.html" \
            "$T/emu-dom2.html" || fails=$((fails + 1))
    else
        fail "emu: chromium renders the dashboard of the emulated job"
        tail -n 20 "$T/emu.log"
    fi
    if wait "$EMUPID"; then
        pass "emu: the emulated run finishes"
    else
        fail "emu: the emulated run finishes"; tail -n 20 "$T/emu.log"
    fi
    pids=""
fi

[ "$fails" -eq 0 ]
