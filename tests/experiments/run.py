#!/usr/bin/python3
"""Run an experiment matrix on the emulator and write one CSV row per run.

    tests/experiments/run.py --spec FILE [--out DIR] [--report-only]
                             [--results-md FILE --figures DIR]

A spec (JSON, see tests/experiments/small.json and docs/running.md) names
groups of runs; each group is the cross product of its topologies, placement
policies, routing policies, activation encodings and device mixes, repeated
"repeats" times. Every run is one `topology/emulate` of a short training job
(--epochs x --steps-per-epoch), with real OVS, namespaces, tbf links and
cgroup CPU quotas, so this needs root and openvswitch-switch.

Throughput is defined from the last pipeline stage's own epoch log lines
(timestamps of "epoch N:" in its agent log): for every epoch after the
first (the first includes model set-up and pipeline fill), images/s =
steps_per_epoch * batch / (t_epoch_end[N] - t_epoch_end[N-1]); the CSV
holds the median over those epochs. An epoch's time includes its
evaluation pass over the test images (forward only; keep --data's
test-limit small). The harness also polls /status every second during the
run (link rates, per-stage measured compute and wait) for the link
utilisation plot and the measured bottleneck.

Outputs in --out (default build/experiments/<spec name>):
  results.csv                one row per run (columns: COLUMNS below)
  runs/<run>/status.json     final /status of the run
  runs/<run>/samples.jsonl   one /status digest per second
  runs/<run>/accuracy.dat    per-head accuracy per epoch (from emulate)
report.md and the plots come from tests/experiments/report.py.
"""

import argparse
import csv
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PROG = "experiments"

COLUMNS = [
    "group", "topology", "placement", "routing", "k", "encoding", "mix",
    "repeat", "status", "wall_s", "epochs", "steps_per_epoch", "batch",
    "throughput_img_s", "epoch_s", "epoch_times_s", "planned_img_s",
    "stages", "placement_chosen", "bottleneck_stage", "bottleneck_agent",
    "bottleneck_kind", "bottleneck_compute_s", "bottleneck_transfer_s",
    "measured_busy", "head_top1", "head_top3", "final_top1", "paths",
    "substream_bytes", "total_bytes", "link_mean_mbps", "link_peak_mbps",
    "backend",
]

DEFAULT_MODEL = ["--alpha", "0.5", "--input", "32", "--channels", "1",
                 "--classes", "10", "--head-pool", "4", "--batch", "128",
                 "--micro-batch", "32", "--lr", "0.004", "--seed", "3"]


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def die(msg):
    log(f"error: {msg}")
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=2.0) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def opt_value(opts, name, default):
    """The value following 'name' in a controller option list."""
    for i, o in enumerate(opts[:-1]):
        if o == name:
            return opts[i + 1]
    return default


# --- spec -------------------------------------------------------------------

def load_spec(path):
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, ValueError) as e:
        die(f"{path}: {e}")
    if not isinstance(spec, dict):
        die(f"{path}: expected a JSON object")
    if not isinstance(spec.get("groups"), list) or not spec["groups"]:
        die(f"{path}: needs a non-empty 'groups' list")
    mixes = spec.get("mixes", {})
    if not isinstance(mixes, dict) or not all(
            isinstance(m, dict) and all(isinstance(o, dict) for o in m.values())
            for m in mixes.values()):
        die(f"{path}: 'mixes' maps a name to {{agent or \"*\": {{field:"
            " value}}")
    for i, g in enumerate(spec["groups"]):
        where = f"{path}: groups[{i}]"
        if not isinstance(g, dict):
            die(f"{where}: expected an object")
        if "name" not in g:
            die(f"{where}: needs a 'name'")
        if not g.get("topologies"):
            die(f"{where}: needs 'topologies'")
        for m in g.get("mixes", ["default"]):
            if m != "default" and m not in mixes:
                die(f"{where}: mix {m!r} is not in the spec's 'mixes'")
        for r in g.get("routing", ["ksp-waterfill"]):
            parse_routing(r, where)
    return spec


def parse_routing(r, where="spec"):
    """'ksp-waterfill/k3' -> ('ksp-waterfill', 3); 'shortest' -> (.., None)."""
    m = re.fullmatch(r"([a-z0-9-]+)(?:/k(\d+))?", r)
    if not m:
        die(f"{where}: routing {r!r}: expected NAME or NAME/kN")
    return m.group(1), int(m.group(2)) if m.group(2) else None


def topo_path(name):
    for p in (name, os.path.join(ROOT, "topology", name),
              os.path.join(ROOT, "topology", name + ".json")):
        if os.path.isfile(p):
            return os.path.abspath(p)
    die(f"topology {name!r} not found (a path, or a name under topology/)")


def runs_of(spec):
    """Every run of the spec, in order, without duplicates across groups
    (a run seen in an earlier group is listed again under the later group's
    name but executed once)."""
    reps = int(spec.get("repeats", 1))
    out = []
    for g in spec["groups"]:
        for t in g["topologies"]:
            for p in g.get("placement", ["bottleneck-dp"]):
                for r in g.get("routing", ["ksp-waterfill"]):
                    for e in g.get("encoding", ["f32"]):
                        for m in g.get("mixes", ["default"]):
                            for i in range(int(g.get("repeats", reps))):
                                out.append(dict(group=g["name"], topology=t,
                                                placement=p, routing=r,
                                                encoding=e, mix=m, repeat=i,
                                                epochs=g.get("epochs"),
                                                steps=g.get("steps_per_epoch")))
    # Repeat 0 of every configuration first, then repeat 1, ...: the
    # machine's load drifts, and interleaving spreads it over all
    # configurations instead of over one configuration's repeats.
    return sorted(out, key=lambda r: r["repeat"])


def run_key(r):
    return (r["topology"], r["placement"], r["routing"], r["encoding"],
            r["mix"], r["repeat"], r["epochs"], r["steps"])


def run_name(r):
    t = os.path.splitext(os.path.basename(r["topology"]))[0]
    return "-".join([t, r["placement"], r["routing"].replace("/", ""),
                     r["encoding"], r["mix"], f"r{r['repeat']}"]
                    + ([f"e{r['epochs']}x{r['steps']}"]
                       if r["epochs"] or r["steps"] else []))


def mixed_topology(path, mix, spec, tmpdir):
    """The topology with the mix's per-agent overrides (cpu, gflops, ...)
    applied, written to a temporary file; the original for 'default'."""
    if mix == "default":
        return path
    over = spec["mixes"][mix]
    with open(path) as f:
        t = json.load(f)
    for a in t.get("agents", []):
        for key in ("*", a["name"]):
            for k, v in over.get(key, {}).items():
                if v is None:
                    a.pop(k, None)
                else:
                    a[k] = v
    out = os.path.join(tmpdir, f"{t.get('name', 'topo')}-{mix}.json")
    with open(out, "w") as f:
        json.dump(t, f, indent=1)
    return out


# --- one run ----------------------------------------------------------------

class Sampler(threading.Thread):
    """Polls the controller's /status once a second and keeps a digest:
    time, run state, per-link rates, per-stage step and measured
    compute/wait seconds of the last report interval."""

    def __init__(self, url, path):
        super().__init__(daemon=True)
        self.url = url
        self.path = path
        self.stop = threading.Event()
        self.samples = []

    def run(self):
        t0 = time.time()
        with open(self.path, "w") as f:
            while not self.stop.is_set():
                st = fetch(self.url)
                if st:
                    d = digest(st, time.time() - t0)
                    self.samples.append(d)
                    f.write(json.dumps(d) + "\n")
                    f.flush()
                self.stop.wait(1.0)


def digest(st, t):
    agents = {a["name"]: a.get("metrics", {}) for a in st.get("agents", [])}
    stages = []
    for p in sorted(st.get("placement", []), key=lambda p: p.get("stage", 0)):
        m = agents.get(p["agent"], {})
        stages.append({"agent": p["agent"], "epoch": m.get("epoch", 0),
                       "step": m.get("step", 0),
                       "compute_s": m.get("compute_s", 0.0),
                       "wait_s": m.get("wait_s", 0.0),
                       "images_per_s": m.get("images_per_s", 0.0)})
    links = {}
    for l in st.get("links", []):
        name = f"{l['a']}:{l.get('a_port', 0)}-{l['b']}:{l.get('b_port', 0)}"
        links[name] = [round(l.get("rate_ab_mbps", 0.0), 3),
                       round(l.get("rate_ba_mbps", 0.0), 3),
                       l.get("capacity_mbps", 0)]
    return {"t": round(t, 3), "state": st.get("run", {}).get("state"),
            "stages": stages, "links": links}


EPOCH_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z?\s.*"
                      r"epoch (\d+): train loss")


def epoch_times(logfile):
    """Wall-clock seconds at which the agent finished each epoch."""
    from datetime import datetime
    out = {}
    try:
        with open(logfile, errors="replace") as f:
            for line in f:
                m = EPOCH_RE.match(line)
                if m:
                    ts = datetime.fromisoformat(m.group(1)).timestamp()
                    out[int(m.group(2))] = ts
    except OSError:
        pass
    return [out[k] for k in sorted(out)]


def run_one(r, spec, args, tmpdir):
    name = run_name(r)
    rdir = os.path.join(args.out, "runs", name)
    shutil.rmtree(rdir, ignore_errors=True)
    os.makedirs(rdir)
    epochs = int(r["epochs"] or spec.get("epochs", 3))
    steps = int(r["steps"] or spec.get("steps_per_epoch", 40))
    model = spec.get("model", DEFAULT_MODEL)
    batch = int(opt_value(model, "--batch", 128))
    data = spec.get("data", "fashion-mnist?test-limit=512")
    routing, k = parse_routing(r["routing"])
    topo = mixed_topology(topo_path(r["topology"]), r["mix"], spec, tmpdir)
    port = free_port()
    ctl = list(model) + [
        "--placement", r["placement"], "--routing", routing,
        "--encoding", r["encoding"], "--epochs", str(epochs),
        "--steps-per-epoch", str(steps), "--data", data,
        "--stages", str(spec.get("stages", "auto")), "--exit-when-done"]
    if k:
        ctl += ["--k", str(k)]
    if args.backend == "mininet":
        # Mininet's controller serves /status inside the launcher's own
        # namespace: no samples (link plot, measured busy share) there.
        cmd = [os.path.join(ROOT, "topology", "mininet", "edgetrain_mn.py"),
               topo, "--bin", args.bin, "--out", rdir,
               "--seconds", str(int(spec.get("run_seconds", 300))),
               "--data", data, "--keep-logs", "--"] + ctl
    else:
        cmd = [os.path.join(ROOT, "topology", "emulate"), topo,
               "--bin", args.bin, "--out", rdir, "--threads", "1",
               "--seconds", str(int(spec.get("run_seconds", 300))),
               "--http-port", str(port), "--data", data, "--keep-logs",
               "--"] + ctl
    log(f"run {name}: {' '.join(cmd[1:])}")
    sampler = Sampler(f"http://127.0.0.1:{port}/status",
                      os.path.join(rdir, "samples.jsonl"))
    sampler.start()
    t0 = time.time()
    with open(os.path.join(rdir, "emulate.log"), "w") as lf:
        rc = subprocess.run(cmd, stdout=lf, stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    sampler.stop.set()
    sampler.join(3)
    with open(os.path.join(rdir, "emulate.log")) as f:
        text = f.read()
    m = re.search(r"run dir (\S+?),?\s", text)
    rundir = m.group(1) if m else None
    row = {c: "" for c in COLUMNS}
    row.update(group=r["group"], topology=os.path.basename(r["topology"]).
               replace(".json", ""), placement=r["placement"],
               routing=routing, k=k or "", encoding=r["encoding"],
               mix=r["mix"], repeat=r["repeat"], wall_s=f"{wall:.1f}",
               epochs=epochs, steps_per_epoch=steps, batch=batch,
               status="ok" if rc == 0 else f"failed({rc})",
               backend=args.backend)
    try:
        with open(os.path.join(rdir, "status.json")) as f:
            st = json.load(f)
    except (OSError, ValueError):
        st = {}
    fill_from_status(row, st, sampler.samples, rundir, epochs, steps, batch)
    if rundir and rundir.startswith(tempfile.gettempdir() + "/edgetrain-") \
            and os.path.isdir(rundir):
        if rc != 0:
            # Keep the logs of a failed run next to its results.
            shutil.copytree(rundir, os.path.join(rdir, "logs"),
                            ignore=shutil.ignore_patterns("*.sock", "*.ctl",
                                                          "*.mgmt", "*.snoop",
                                                          "checkpoints",
                                                          "state-*"),
                            dirs_exist_ok=True)
        shutil.rmtree(rundir, ignore_errors=True)
    log(f"run {name}: {row['status']}, {row['throughput_img_s'] or '?'} img/s,"
        f" top-1 {row['final_top1'] or '?'}, {wall:.0f} s")
    return row


def fill_from_status(row, st, samples, rundir, epochs, steps, batch):
    placement = sorted(st.get("placement", []), key=lambda p: p.get("stage", 0))
    agents = {a["name"]: a.get("metrics", {}) for a in st.get("agents", [])}
    row["stages"] = len(placement)
    row["placement_chosen"] = " ".join(
        f"{p['agent']}[{p['first_block']}-{p['last_block']}]" for p in placement)
    if placement:
        b = max(placement, key=lambda p: max(p.get("compute_s", 0),
                                             p.get("transfer_s", 0)))
        row["bottleneck_stage"] = b["stage"] + 1
        row["bottleneck_agent"] = b["agent"]
        row["bottleneck_kind"] = ("compute" if b.get("compute_s", 0) >=
                                  b.get("transfer_s", 0) else "network")
        row["bottleneck_compute_s"] = f"{b.get('compute_s', 0):.4f}"
        row["bottleneck_transfer_s"] = f"{b.get('transfer_s', 0):.4f}"
        bs = st.get("run", {}).get("bottleneck_s") or max(
            b.get("compute_s", 0), b.get("transfer_s", 0))
        if bs:
            row["planned_img_s"] = f"{batch / bs:.1f}"
    row["head_top1"] = ";".join(f"{agents.get(p['agent'], {}).get('test_top1', 0):.4f}"
                                for p in placement)
    row["head_top3"] = ";".join(f"{agents.get(p['agent'], {}).get('test_top3', 0):.4f}"
                                for p in placement)
    if placement:
        row["final_top1"] = f"{agents.get(placement[-1]['agent'], {}).get('test_top1', 0):.4f}"
    paths, sb, total = [], [], 0
    sent = {}
    for a in st.get("agents", []):
        for s in a.get("metrics", {}).get("substreams", []):
            sent[(a["name"], s.get("peer"), s.get("id"))] = s.get("bytes", 0)
    for p in st.get("paths", []):
        for i, s in enumerate(p.get("substreams", [])):
            hops = ">".join(s.get("hops", [])) or "direct"
            paths.append(f"{p['from']}>{p['to']}#{i}:{hops}@{s.get('weight', 0):.2f}")
            b = sent.get((p["from"], p["to"], s.get("id", i)), 0)
            total += b
            sb.append(f"{p['from']}>{p['to']}#{i}:{b}")
    row["paths"] = " ".join(paths)
    row["substream_bytes"] = " ".join(sb)
    row["total_bytes"] = total
    # Measured: per stage, share of the report intervals spent computing
    # (compute_s / (compute_s + wait_s)), summed over the samples that saw
    # a new report while running.
    busy = {}
    seen = {}
    for d in samples:
        if d.get("state") != "running":
            continue
        for s in d["stages"]:
            key = (s["agent"], s["epoch"], s["step"])
            if seen.get(s["agent"]) == key:
                continue
            seen[s["agent"]] = key
            c, w = busy.get(s["agent"], (0.0, 0.0))
            busy[s["agent"]] = (c + s["compute_s"], w + s["wait_s"])
    row["measured_busy"] = " ".join(
        f"{p['agent']}:{busy[p['agent']][0] / max(1e-9, sum(busy[p['agent']])):.2f}"
        for p in placement if p["agent"] in busy)
    # Link rates while running (inter-switch and access links that carried
    # anything): mean and peak of the busier direction, Mbit/s.
    rates = {}
    for d in samples:
        if d.get("state") != "running":
            continue
        for name, (ab, ba, cap) in d["links"].items():
            rates.setdefault(name, []).append(max(ab, ba))
    used = {n: v for n, v in rates.items() if max(v) > 0.5}
    row["link_mean_mbps"] = " ".join(f"{n}:{statistics.mean(v):.1f}"
                                     for n, v in sorted(used.items()))
    row["link_peak_mbps"] = " ".join(f"{n}:{max(v):.1f}"
                                     for n, v in sorted(used.items()))
    # Throughput from the last stage's epoch boundaries.
    if rundir and placement:
        ts = epoch_times(os.path.join(rundir, f"agent-{placement[-1]['agent']}.log"))
        if len(ts) >= 2:
            dts = [b - a for a, b in zip(ts, ts[1:])]
            row["epoch_times_s"] = ";".join(f"{x:.2f}" for x in dts)
            med = statistics.median(dts)
            row["epoch_s"] = f"{med:.2f}"
            if med > 0:
                row["throughput_img_s"] = f"{steps * batch / med:.1f}"


# --- main -------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        prog="tests/experiments/run.py",
        description="Run an edgetrain experiment matrix on the emulator.")
    ap.add_argument("--spec", required=True, help="experiment spec (JSON)")
    ap.add_argument("--out", help="output directory (default "
                    "build/experiments/<spec name>)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"),
                    help="directory of the edgetrain binaries")
    ap.add_argument("--only", help="run only runs whose name contains this")
    ap.add_argument("--backend", choices=("emulate", "mininet"),
                    default="emulate", help="topology/emulate (default) or"
                    " Mininet (topology/mininet/edgetrain_mn.py; no CPU"
                    " quotas, no /status samples)")
    ap.add_argument("--report", action="store_true",
                    help="then write report.md and plots (report.py)")
    ap.add_argument("--results-md", help="with --report: also write this "
                    "results page (docs/results.md)")
    ap.add_argument("--figures", help="with --results-md: plot directory")
    args = ap.parse_args()
    spec = load_spec(args.spec)
    name = spec.get("name", os.path.splitext(os.path.basename(args.spec))[0])
    args.out = os.path.abspath(args.out or os.path.join(ROOT, "build",
                                                        "experiments", name))
    args.bin = os.path.abspath(args.bin)
    if os.geteuid() != 0:
        die("needs root: every run builds an emulated network (namespaces,"
            " Open vSwitch, tc, cgroups); run it with sudo")
    for tool in ("ovs-vswitchd", "ovsdb-server", "ovs-vsctl", "tc") + (
            ("mn",) if args.backend == "mininet" else ()):
        if not shutil.which(tool):
            die(f"'{tool}' not found: install openvswitch-switch and iproute2"
                " (scripts/deps.sh install)")
    for b in ("edgetrain-controller", "edgetrain-agent"):
        if not os.access(os.path.join(args.bin, b), os.X_OK):
            die(f"{args.bin}/{b} missing: build first (make)")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        die(f"--out {args.out}: {e}")
    runs = runs_of(spec)
    if spec.get("curve"):
        c = dict(spec["curve"])
        runs.append(dict(group="curve", topology=c.get("topology", "hetero"),
                         placement=c.get("placement", "bottleneck-dp"),
                         routing=c.get("routing", "ksp-waterfill"),
                         encoding=c.get("encoding", "f32"),
                         mix=c.get("mix", "default"), repeat=0,
                         epochs=c.get("epochs", 8),
                         steps=c.get("steps_per_epoch", 60)))
    if args.only:
        runs = [r for r in runs if args.only in run_name(r)]
    if not runs:
        die("no run matches")
    done = {}
    rows = []
    csv_path = os.path.join(args.out, "results.csv")
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="edgetrain-exp-") as tmpdir:
        for i, r in enumerate(runs):
            key = run_key(r)
            if key in done:
                row = dict(done[key], group=r["group"])
            else:
                log(f"[{len(done) + 1}] {run_name(r)} ({r['group']})")
                row = run_one(r, spec, args, tmpdir)
                row["run"] = run_name(r)
                done[key] = row
            rows.append(row)
            with open(csv_path, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=COLUMNS + ["run"])
                w.writeheader()
                w.writerows(rows)
    log(f"{len(done)} runs in {time.time() - t_start:.0f} s; CSV {csv_path}")
    failed = [r for r in done.values() if r["status"] != "ok"]
    if args.report:
        cmd = [sys.executable, os.path.join(HERE, "report.py"), "--csv",
               csv_path, "--out", args.out]
        if args.results_md:
            cmd += ["--results-md", args.results_md]
        if args.figures:
            cmd += ["--figures", args.figures]
        cmd += ["--spec", os.path.abspath(args.spec),
                "--elapsed", f"{time.time() - t_start:.0f}"]
        if subprocess.run(cmd).returncode != 0:
            return 1
    if failed:
        log(f"{len(failed)} runs failed: "
            + ", ".join(r["run"] for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
