"""Follow a training run through the controller's GET /status.

Used by the namespace emulator, the Mininet launcher and the loopback demo:
prints progress while the run goes, then the final table (per stage: agent,
blocks, head accuracy, images/s; per sub-stream: path, weight, bytes), the
accuracy plot (gnuplot) and the trainer's closing line
`test_accuracy=<head1>,<head2>,...`.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request


def fetch(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def stage_rows(st):
    """(stage, agent name, first, last, metrics) in pipeline order."""
    agents = {a["name"]: a for a in st.get("agents", [])}
    rows = []
    for p in sorted(st.get("placement", []), key=lambda p: p.get("stage", 0)):
        a = agents.get(p["agent"], {})
        rows.append((p.get("stage", 0), p["agent"], p.get("first_block"),
                     p.get("last_block"), a.get("metrics", {})))
    return rows


class RunWatch:
    def __init__(self, url, out_dir=None, stream=sys.stdout):
        self.url = url.rstrip("/") + "/status"
        self.out_dir = out_dir
        self.stream = stream
        self.history = {}       # agent -> {epoch: (top1, top3)}
        self.last_line = 0.0
        self.status = None
        self.tty = stream.isatty()

    def say(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    def poll(self):
        st = fetch(self.url)
        if st is None:
            return None
        self.status = st
        for stage, name, first, last, m in stage_rows(st):
            if m.get("eval_done") or m.get("test_top1"):
                ep = m.get("eval_epoch", m.get("epoch", 0))
                self.history.setdefault(name, {})[ep] = (
                    m.get("test_top1", 0.0), m.get("test_top3", 0.0))
        return st

    def progress(self, st):
        now = time.time()
        if now - self.last_line < (1.0 if self.tty else 5.0):
            return
        self.last_line = now
        run = st.get("run", {})
        parts = []
        for stage, name, first, last, m in stage_rows(st):
            parts.append(f"{name}[{first}-{last}] ep {m.get('epoch', 0)}"
                         f" step {m.get('step', 0)}"
                         f" {m.get('images_per_s', 0):.0f} img/s"
                         f" loss {m.get('loss', 0):.3f}")
        line = f"{run.get('state', '?'):8s} | " + " | ".join(parts)
        if self.tty:
            self.stream.write("\r\033[K" + line[:200])
            self.stream.flush()
        else:
            self.say(line)

    def done(self, st):
        return st.get("run", {}).get("state") in ("done", "finished")

    def follow(self, seconds, alive=lambda: True):
        """Polls until the run is done, 'alive()' turns false or time runs
        out. Returns True when the run finished."""
        deadline = time.time() + seconds
        shown_plan = False
        while time.time() < deadline and alive():
            st = self.poll()
            if st:
                if not shown_plan and st.get("placement"):
                    self.show_plan(st)
                    shown_plan = True
                if self.done(st):
                    if self.tty:
                        self.stream.write("\n")
                    return True
                self.progress(st)
            time.sleep(1.0)
        if self.tty:
            self.stream.write("\n")
        return False

    def show_plan(self, st):
        self.say("placement (%s) and paths (%s):" % (
            st.get("controller", {}).get("placement_policy", "?"),
            st.get("controller", {}).get("routing_policy", "?")))
        for stage, name, first, last, m in stage_rows(st):
            self.say(f"  stage {stage + 1}: blocks {first}-{last} on {name}")
        for p in st.get("paths", []):
            for i, s in enumerate(p.get("substreams", [])):
                hops = ",".join(s.get("hops", [])) or "direct"
                self.say(f"  {p['from']} -> {p['to']} sub-stream {i}:"
                         f" {hops} weight {s.get('weight', 0):.2f}")

    def final(self):
        st = self.status or {}
        rows = stage_rows(st)
        self.say("")
        self.say(f"{'stage':>5} {'agent':10} {'blocks':>7} {'top1':>7}"
                 f" {'top3':>7} {'images/s':>9}")
        accs = []
        for stage, name, first, last, m in rows:
            t1, t3 = m.get("test_top1", 0.0), m.get("test_top3", 0.0)
            accs.append(t1)
            self.say(f"{stage + 1:>5} {name:10} {first:>3}-{last:<3}"
                     f" {t1:7.4f} {t3:7.4f} {m.get('images_per_s', 0):9.1f}")
        sent = {}
        for a in st.get("agents", []):
            for s in a.get("metrics", {}).get("substreams", []):
                sent[(a["name"], s.get("peer"), s.get("id"))] = s.get("bytes", 0)
        if st.get("paths"):
            self.say("")
            self.say(f"{'stream':20} {'sub':>3} {'path':28} {'weight':>6}"
                     f" {'MB sent':>9}")
            for p in st["paths"]:
                for i, s in enumerate(p.get("substreams", [])):
                    b = sent.get((p["from"], p["to"], s.get("id", i)), 0)
                    hops = ",".join(s.get("hops", [])) or "direct"
                    self.say(f"{p['from'] + ' -> ' + p['to']:20} {i:>3}"
                             f" {hops:28} {s.get('weight', 0):6.2f}"
                             f" {b / 1e6:9.2f}")
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            with open(os.path.join(self.out_dir, "status.json"), "w") as f:
                json.dump(st, f, indent=1)
        self.plot()
        self.say("test_accuracy=" + ",".join(f"{a:.4f}" for a in accs))
        return accs

    def plot(self):
        if not self.out_dir or not self.history:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        rows = stage_rows(self.status or {})
        dat = os.path.join(self.out_dir, "accuracy.dat")
        with open(dat, "w") as f:
            for stage, name, first, last, m in rows:
                f.write(f"# head {stage + 1} ({name}, blocks {first}-{last})\n")
                # eval_epoch counts completed epochs (1 after the first).
                for ep, (t1, t3) in sorted(self.history.get(name, {}).items()):
                    f.write(f"{ep} {t1:.5f} {t3:.5f}\n")
                f.write("\n\n")
        png = os.path.join(self.out_dir, "accuracy.png")
        if not shutil.which("gnuplot"):
            self.say(f"(gnuplot missing: accuracy data in {dat})")
            return
        plots = ", ".join(
            f"'{dat}' index {i} using 1:2 with linespoints title"
            f" 'head {stage + 1} (blocks {first}-{last})'"
            for i, (stage, name, first, last, m) in enumerate(rows))
        script = (f"set terminal png size 800,500; set output '{png}';"
                  " set xlabel 'epoch'; set ylabel 'test top-1'; set xtics 1;"
                  " set key bottom right; set grid;"
                  f" plot {plots}\n")
        r = subprocess.run(["gnuplot"], input=script, text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if r.returncode == 0:
            self.say(f"accuracy plot: {png}")
        else:
            self.say(f"(gnuplot failed: {r.stderr.strip()[:200]})")
