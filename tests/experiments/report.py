#!/usr/bin/python3
"""Tables, plots and the results page from an experiment CSV (run.py).

    tests/experiments/report.py --csv results.csv --out DIR
                                [--results-md docs/results.md
                                 --figures docs/results] [--spec FILE]

Writes DIR/report.md (every run, one table row each) and, with
--results-md, the results page: headline ratios computed here from the
medians over repeats, and the plots (gnuplot, PNG) in --figures:
throughput.png (images/s per policy per topology), accuracy.png (per-head
test top-1 per epoch of the curve run) and links.png (link rates over time
of the curve run).
"""

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

PROG = "report"


def log(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def fnum(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def median_of(rows, col):
    v = [fnum(r[col]) for r in rows if r["status"] == "ok" and fnum(r[col]) is not None]
    return statistics.median(v) if v else None


def select(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def label(r):
    rt = r["routing"] + (f"/k{r['k']}" if r["k"] else "")
    return f"{r['placement']} {rt} {r['encoding']}" + (
        f" {r['mix']}" if r["mix"] != "default" else "")


def uniq_runs(rows):
    """One row per executed run (a run listed in two groups appears twice
    in the CSV with the same 'run')."""
    seen, out = set(), []
    for r in rows:
        if r["run"] in seen:
            continue
        seen.add(r["run"])
        out.append(r)
    return out


def configs(rows, group):
    """(label, topology, rows of its repeats) per configuration of a group,
    in CSV order."""
    out = {}
    for r in rows:
        if r["group"] != group:
            continue
        key = (r["topology"], label(r))
        out.setdefault(key, []).append(r)
    return [(k[1], k[0], v) for k, v in out.items()]


def fmt(x, d=1):
    return "n/a" if x is None else f"{x:.{d}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


# --- plots --------------------------------------------------------------------

def gnuplot(script, png):
    if not shutil.which("gnuplot"):
        log("gnuplot missing (apt-get install gnuplot-nox): no plots")
        return False
    r = subprocess.run(["gnuplot"], input=script, text=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        log(f"gnuplot failed for {png}: {r.stderr.strip()[:300]}")
        return False
    return True


def plot_throughput(rows, figdir):
    groups = []
    for r in rows:
        if r["group"] not in groups and r["group"] != "curve":
            groups.append(r["group"])
    dat = os.path.join(figdir, "throughput.dat")
    n = 0
    with open(dat, "w") as f:
        f.write("# label median_img_s min max\n")
        for g in groups:
            for lab, topo, rs in configs(rows, g):
                ok = [fnum(r["throughput_img_s"]) for r in rs
                      if r["status"] == "ok" and fnum(r["throughput_img_s"])]
                if not ok:
                    continue
                f.write(f'"{g}: {topo} {lab}" {statistics.median(ok):.1f}'
                        f" {min(ok):.1f} {max(ok):.1f}\n")
                n += 1
    png = os.path.join(figdir, "throughput.png")
    script = (f"set terminal png size 1100,{560 + 18 * n}; set output '{png}';"
              " set style data histogram; set style fill solid 0.7 border -1;"
              " set boxwidth 0.8; set ylabel 'images/s (median of repeats)';"
              " set xtics rotate by -35 left font ',9'; set grid ytics;"
              " set bmargin 22; set rmargin 24; set key off; set yrange [0:*];"
              " set title 'Pipeline throughput per policy and topology';"
              f" plot '{dat}' using 2:xtic(1) lc rgb '#3070b0',"
              f" '' using 0:2:(sprintf('%.0f',$2)) with labels offset 0,0.7"
              " font ',9'\n")
    return gnuplot(script, png) and png


def plot_accuracy(run_dir, figdir):
    dat = os.path.join(run_dir, "accuracy.dat")
    if not os.path.isfile(dat):
        return False
    heads = []
    with open(dat) as f:
        for line in f:
            if line.startswith("# head"):
                heads.append(line[2:].strip())
    local = os.path.join(figdir, "accuracy.dat")
    shutil.copy(dat, local)
    png = os.path.join(figdir, "accuracy.png")
    plots = ", ".join(f"'{local}' index {i} using 1:2 with linespoints lw 2"
                      f" title '{h}'" for i, h in enumerate(heads))
    script = (f"set terminal png size 800,500; set output '{png}';"
              " set xlabel 'epoch'; set ylabel 'test top-1';"
              " set key bottom right; set grid; set yrange [0:1];"
              " set title 'Accuracy per epoch of every head (Fig. 3 analogue)';"
              f" plot {plots}\n")
    return gnuplot(script, png) and png


def plot_links(run_dir, figdir):
    path = os.path.join(run_dir, "samples.jsonl")
    try:
        with open(path) as f:
            samples = [json.loads(l) for l in f if l.strip()]
    except (OSError, ValueError):
        return False
    series = {}
    for d in samples:
        for name, (ab, ba, cap) in d.get("links", {}).items():
            series.setdefault(name, []).append((d["t"], max(ab, ba), cap))
    used = [n for n, v in series.items() if max(x[1] for x in v) > 0.5]
    if not used:
        return False
    dat = os.path.join(figdir, "links.dat")
    with open(dat, "w") as f:
        for n in used:
            f.write(f"# {n}\n")
            for t, rate, cap in series[n]:
                f.write(f"{t:.1f} {rate:.3f} {rate / cap if cap else 0:.4f}\n")
            f.write("\n\n")
    png = os.path.join(figdir, "links.png")
    plots = ", ".join(f"'{dat}' index {i} using 1:2 with lines lw 2"
                      f" title '{n}'" for i, n in enumerate(used))
    script = (f"set terminal png size 900,500; set output '{png}';"
              " set xlabel 'time since start (s)';"
              " set ylabel 'rate, busier direction (Mbit/s)';"
              " set key outside right; set grid;"
              " set title 'Link rates during the curve run (controller /status)';"
              f" plot {plots}\n")
    return gnuplot(script, png) and png


# --- tables -------------------------------------------------------------------

TABLE_COLS = [("topology", "topology"), ("placement", "placement"),
              ("routing", "routing"), ("k", "k"), ("encoding", "enc"),
              ("mix", "mix"), ("repeat", "rep"), ("status", "status"),
              ("throughput_img_s", "img/s"), ("planned_img_s", "planned img/s"),
              ("epoch_s", "s/epoch"), ("placement_chosen", "placement chosen"),
              ("bottleneck_kind", "planned bottleneck"),
              ("measured_busy", "measured busy share"),
              ("head_top1", "head top-1"), ("total_bytes", "bytes sent")]


def table(rows):
    out = ["| " + " | ".join(h for _, h in TABLE_COLS) + " |",
           "|" + "---|" * len(TABLE_COLS)]
    for r in rows:
        cells = []
        for c, _ in TABLE_COLS:
            v = r.get(c, "")
            if c == "bottleneck_kind" and v:
                v = f"{v} (stage {r['bottleneck_stage']}, {r['bottleneck_agent']})"
            if c == "total_bytes" and fnum(v):
                v = f"{fnum(v) / 1e6:.1f} MB"
            cells.append(str(v).replace("|", "/"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", ".."))


def capacities(topology):
    """Link name (as run.py's digest spells it) -> capacity, Mbit/s."""
    for p in (topology, os.path.join(ROOT, "topology", topology + ".json")):
        try:
            with open(p) as f:
                t = json.load(f)
            break
        except (OSError, ValueError):
            t = None
    if not t:
        return {}
    caps = {}
    for l in t.get("links", []):
        caps[f"{l['a']}:{l['a_port']}-{l['b']}:{l['b_port']}"] = l.get("capacity_mbps", 0)
    for a in t.get("agents", []):
        caps[f"{a['name']}:0-{a.get('switch')}:{a.get('port')}"] = a.get("capacity_mbps", 0)
    return caps


def busiest_link(rows):
    """(link, peak Mbit/s, capacity) of the link with the highest peak
    utilisation over the runs, or None."""
    best = None
    for r in rows:
        caps = capacities(r["topology"])
        for item in r.get("link_peak_mbps", "").split():
            name, _, v = item.rpartition(":")
            cap, rate = caps.get(name), fnum(v)
            if cap and rate is not None and (best is None or
                                             rate / cap > best[1] / best[2]):
                best = (name, rate, cap)
    return best


def link_line(rows):
    b = busiest_link(rows)
    if not b:
        return None
    return (f"Busiest link in these runs: {b[0]} peaked at {b[1]:.0f} of"
            f" {b[2]:.0f} Mbit/s ({100 * b[1] / b[2]:.0f}% of capacity, 1-s"
            " samples of the controller's port counters).")


def headlines(rows):
    """The questions of the results page, answered from the medians. Each
    item: (title, list of markdown lines)."""
    out = []
    hp = [r for r in rows if r["group"] == "placement"]
    topos = sorted({r["topology"] for r in hp})
    for t in topos:
        med = {p: median_of(select(hp, topology=t, placement=p),
                            "throughput_img_s")
               for p in ("bottleneck-dp", "equal", "round-robin", "single")}
        naive = {p: v for p, v in med.items()
                 if p in ("equal", "round-robin") and v}
        best = max(naive, key=naive.get) if naive else None
        r_dp = ratio(med["bottleneck-dp"], naive.get(best)) if best else None
        lines = [f"bottleneck-dp {fmt(med['bottleneck-dp'])} images/s, equal"
                 f" {fmt(med['equal'])}, round-robin {fmt(med['round-robin'])},"
                 f" single device {fmt(med['single'])}."]
        plan = {p: median_of(select(hp, topology=t, placement=p),
                             "planned_img_s") for p in med}
        if r_dp is not None:
            goal = "meets" if r_dp >= 1.5 else "misses"
            pr = ratio(plan["bottleneck-dp"], plan.get(best))
            lines.append(f"**Network-aware placement / best naive policy"
                         f" ({best}) = {r_dp:.2f}x** ({goal} the 1.5x goal;"
                         f" the planner expected {fmt(pr, 2)}x).")
        rs = ratio(med["bottleneck-dp"], med["single"])
        if rs is not None:
            pr = ratio(plan["bottleneck-dp"], plan["single"])
            lines.append(f"**Pipeline (bottleneck-dp) / one device (single)"
                         f" = {rs:.2f}x** (the planner expected"
                         f" {fmt(pr, 2)}x).")
        dp = select(hp, topology=t, placement="bottleneck-dp")
        nv = select(hp, topology=t, placement=best) if best else []
        if dp and nv:
            lines.append(f"Placements: bottleneck-dp `{dp[0]['placement_chosen']}`"
                         f" (planned bottleneck: {dp[0]['bottleneck_kind']},"
                         f" stage {dp[0]['bottleneck_stage']});"
                         f" {best} `{nv[0]['placement_chosen']}` (planned"
                         f" bottleneck: {nv[0]['bottleneck_kind']} at"
                         f" {nv[0]['bottleneck_agent']}).")
        for p in ("bottleneck-dp", best):
            ll = link_line(select(hp, topology=t, placement=p)) if p else None
            if ll:
                lines.append(f"{p}: {ll}")
        out.append((f"Placement on {t}", lines))
    mp = [r for r in rows if r["group"] == "multipath"]
    for t, pl, mx in sorted({(r["topology"], r["placement"], r["mix"])
                             for r in mp}):
        rs = select(mp, topology=t, placement=pl, mix=mx)
        multi = [r for r in rs if r["routing"] != "shortest" and r["k"] not in ("1",)]
        single = [r for r in rs if r["routing"] == "shortest" or r["k"] == "1"]
        m1, m2 = median_of(multi, "throughput_img_s"), median_of(single, "throughput_img_s")
        lines = [f"multipath ({label(multi[0]) if multi else '?'})"
                 f" {fmt(m1)} images/s, single path"
                 f" ({label(single[0]) if single else '?'}) {fmt(m2)}."]
        rr = ratio(m1, m2)
        if rr is not None:
            pr = ratio(median_of(multi, "planned_img_s"),
                       median_of(single, "planned_img_s"))
            lines.append(f"**Multipath / single path = {rr:.2f}x** (the"
                         f" planner expected {fmt(pr, 2)}x).")
        if multi:
            lines.append(f"Planned bottleneck with multipath:"
                         f" {multi[0]['bottleneck_kind']} (stage"
                         f" {multi[0]['bottleneck_stage']}, compute"
                         f" {multi[0]['bottleneck_compute_s']} s vs transfer"
                         f" {multi[0]['bottleneck_transfer_s']} s per step);"
                         f" with single path: {single[0]['bottleneck_kind'] if single else '?'}"
                         f" (compute {single[0]['bottleneck_compute_s'] if single else '?'} s"
                         f" vs transfer {single[0]['bottleneck_transfer_s'] if single else '?'} s).")
        busy = " ".join(f"{r['placement']}/{r['routing']}: {r['measured_busy']}"
                        for r in rs if r["repeat"] == "0" and r["measured_busy"])
        if busy:
            lines.append(f"Measured busy share per stage (repeat 0): {busy}.")
        ll = link_line(rs)
        if ll:
            lines.append(ll)
        b = busiest_link(rs)
        shares = [fnum(x.rpartition(":")[2]) for r in rs
                  for x in r["measured_busy"].split()]
        shares = [x for x in shares if x is not None]
        if b and shares and b[1] / b[2] < 0.8 and max(shares) < 0.9:
            lines.append(f"Neither a link (at most {100 * b[1] / b[2]:.0f}%"
                         f" of capacity) nor a stage (at most"
                         f" {100 * max(shares):.0f}% busy) was saturated: the"
                         " emulation host itself (the OVS userspace datapath"
                         " forwarding every packet, and the agents, on 2"
                         " shared cores) limited these runs, so the routing"
                         " policy could not show its planned effect.")
        out.append((f"Multipath on {t}, {pl} placement"
                    + (f", mix {mx}" if mx != "default" else ""), lines))
    en = [r for r in rows if r["group"] == "encoding"]
    for t in sorted({r["topology"] for r in en}):
        for p in sorted({r["placement"] for r in select(en, topology=t)}):
            rs = select(en, topology=t, placement=p)
            base = median_of(select(rs, encoding="f32"), "throughput_img_s")
            acc0 = median_of(select(rs, encoding="f32"), "final_top1")
            lines = []
            for e in ("f32", "f16", "int8"):
                s = select(rs, encoding=e)
                if not s:
                    continue
                v = median_of(s, "throughput_img_s")
                a = median_of(s, "final_top1")
                by = median_of(s, "total_bytes")
                rr = ratio(v, base)
                lines.append(f"{e}: {fmt(v)} images/s"
                             + (f" (**{rr:.2f}x f32**)" if rr and e != "f32" else "")
                             + f", last head top-1 {fmt(a, 4)}"
                             + (f" ({a - acc0:+.4f} vs f32)" if a is not None and acc0 is not None and e != "f32" else "")
                             + (f", {by / 1e6:.1f} MB sent" if by else "") + ".")
            out.append((f"Activation encodings on {t}, {p} placement"
                        f" (planned bottleneck: {rs[0]['bottleneck_kind']})",
                        lines))
    return out


def write_results(path, figdir, rows, spec, elapsed, plots, csv_path):
    rel = os.path.relpath(figdir, os.path.dirname(os.path.abspath(path)))
    runs = uniq_runs(rows)
    total = sum(fnum(r["wall_s"]) or 0 for r in runs)
    spec_name = os.path.relpath(spec) if spec else "?"
    # Run-to-run spread: max/min throughput over the repeats of each
    # configuration that ran more than once.
    by_cfg = {}
    for r in runs:
        if r["status"] == "ok" and fnum(r["throughput_img_s"]):
            by_cfg.setdefault((r["topology"], label(r), r["epochs"],
                               r["steps_per_epoch"]), []).append(
                fnum(r["throughput_img_s"]))
    spreads = sorted(max(v) / min(v) for v in by_cfg.values() if len(v) > 1)
    spread = (f" Repeats of one configuration differed by up to"
              f" {spreads[-1]:.2f}x (median {statistics.median(spreads):.2f}x"
              f" over {len(spreads)} configurations): ratios between"
              " policies below that spread may be noise." if spreads else "")
    L = ["# Results", "",
         "<!-- Generated by tests/experiments/report.py from the CSV of"
         " tests/experiments/run.py (`make experiments`). Do not edit:"
         " rerun. -->", "",
         f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
         f" by `make experiments` from `{spec_name}`: {len(runs)} emulated"
         f" runs ({total:.0f} s of runs"
         + (f", {elapsed} s end to end" if elapsed else "") + ") on a"
         f" {os.cpu_count()}-core machine shared with other jobs, so every"
         " figure is noisy." + spread + " The raw CSV is"
         f" [{os.path.basename(csv_path)}]({rel}/{os.path.basename(csv_path)}).",
         "",
         "Every run is `topology/emulate` (real OVS userspace datapath,"
         " namespaces, tbf-shaped links, cgroup CPU quotas per device) with"
         " the real controller and agents training MobileNet (alpha 0.5,"
         " 32x32 Fashion-MNIST, batch 128) for a few short epochs.", "",
         "**Throughput** = images/s of the pipeline, measured at its last"
         " stage: steps_per_epoch x batch / (wall time between two"
         " consecutive end-of-epoch lines of the last stage's agent log),"
         " median over the epochs after the first (the first includes"
         " set-up and pipeline fill). An epoch's time includes its"
         " evaluation of the test-limit images (forward only). *planned"
         " img/s* is the placement's own estimate (batch / bottleneck"
         " seconds). *Planned bottleneck* compares the placement's compute_s"
         " and transfer_s for the slowest stage; *measured busy share* is"
         " each stage's compute time / (compute + waiting) from the agents'"
         " metrics during the run.", "", "## Headlines", ""]
    for title, lines in headlines(rows):
        L.append(f"### {title}")
        L.append("")
        for l in lines:
            L.append(f"- {l}")
        L.append("")
    # Pipeline scaling is measured by its own benchmark (make
    # bench-scaling-emu), not by this matrix: its section is kept beside
    # the figures and carried into every regenerated report.
    scaling = os.path.join(figdir, "scaling.md")
    if os.path.exists(scaling):
        with open(scaling) as f:
            L += [f.read().rstrip(), ""]
    if plots.get("throughput"):
        L += ["## Throughput per policy and topology", "",
              f"![throughput]({rel}/throughput.png)", ""]
    if plots.get("accuracy") or plots.get("links"):
        c = [r for r in rows if r["group"] == "curve"]
        what = (f"{c[0]['topology']}, {label(c[0])}, {c[0]['epochs']} epochs of"
                f" {c[0]['steps_per_epoch']} steps" if c else "")
        L += [f"## The longer run ({what})", ""]
        if plots.get("accuracy"):
            L += ["Test top-1 of every head (the cut model through each"
                  " stage's exit, as in the paper's Fig. 3) after each"
                  " epoch:", "", f"![accuracy]({rel}/accuracy.png)", ""]
        if plots.get("links"):
            L += ["Rates of the links that carried traffic, sampled from the"
                  " controller's /status once a second (port counters):", "",
                  f"![links]({rel}/links.png)", ""]
    L += ["## Every run", "", table(runs), "",
          "Paths and weights of each run, bytes per sub-stream and link"
          " rates are in the CSV (columns paths, substream_bytes,"
          " link_mean_mbps, link_peak_mbps).", ""]
    with open(path, "w") as f:
        f.write("\n".join(L))
    log(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(prog="tests/experiments/report.py")
    ap.add_argument("--csv", required=True)
    ap.add_argument("--out", required=True, help="directory of the runs")
    ap.add_argument("--results-md")
    ap.add_argument("--figures")
    ap.add_argument("--spec")
    ap.add_argument("--elapsed")
    args = ap.parse_args()
    try:
        rows = load(args.csv)
    except OSError as e:
        log(f"error: {e}")
        return 1
    runs = uniq_runs(rows)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write("# Experiment runs\n\n" + table(runs) + "\n\n")
        for title, lines in headlines(rows):
            f.write(f"## {title}\n\n" + "".join(f"- {l}\n" for l in lines) + "\n")
    log(f"wrote {os.path.join(args.out, 'report.md')}")
    figdir = args.figures or args.out
    os.makedirs(figdir, exist_ok=True)
    plots = {"throughput": plot_throughput(rows, figdir)}
    curve = [r for r in rows if r["group"] == "curve" and r["status"] == "ok"]
    src = curve[0] if curve else (runs[0] if runs else None)
    if src:
        rd = os.path.join(args.out, "runs", src["run"])
        plots["accuracy"] = plot_accuracy(rd, figdir)
        plots["links"] = plot_links(rd, figdir)
    if args.results_md:
        shutil.copy(args.csv, os.path.join(figdir, "results.csv"))
        write_results(args.results_md, figdir, rows, args.spec, args.elapsed,
                      plots, os.path.join(figdir, "results.csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
