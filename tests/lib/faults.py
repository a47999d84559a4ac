"""Fault injection beside an emulated run (topology/emulate --during).

    faults.py SCENARIO OUT [options]

Runs inside the emulator's environment (EMU_HTTP_PORT, EMU_BR_<switch>,
EMU_PID, EMU_RUNDIR, EMU_VSWITCHD, OVS_RUNDIR...). Waits until the run is
streaming, injects one fault, measures, and writes PASS:/FAIL: lines and
the figures to OUT/during.txt (the test script prints them after the run).

Scenarios:
  link-down        sets one link of a weighted sub-stream down (in the
                   switches' namespace); re-route time from the OVS flow
                   tables, polled every 10 ms.
  controller-restart  SIGKILL the controller, start it again after
                   --outage seconds; flows must neither go nor reset
                   (duration, n_bytes), traffic must go on, the run must be
                   adopted with the same id and placement, on the paths
                   installed. With --move, a link of a weighted sub-stream
                   is first set down (the controller moves sub-streams off
                   it) and set up again while the controller is away: the
                   restarted controller must keep the moved paths, which
                   a fresh routing would not give.
  switch-restart   stops ovs-vswitchd and starts it again (all flows lost);
                   time until every sub-stream flow is back.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

SUB_COOKIE = "cookie=0xed6e030000000000/0xffffff0000000000"
lines = []


def say(line):
    lines.append(line)
    print(f"faults: {line}", file=sys.stderr, flush=True)


def check(ok, what):
    say(("PASS: " if ok else "FAIL: ") + what)
    return ok


def stamp(t):
    """UTC time of day with milliseconds, as in the edgetrain logs."""
    return time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t * 1e3) % 1000:03d}"


def log_time(line):
    """The UTC time (epoch seconds) at the start of an edgetrain log line."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z", line)
    if not m:
        return None
    import calendar
    return calendar.timegm(time.strptime(m.group(1)[:19],
                                         "%Y-%m-%dT%H:%M:%S")) \
        + int(m.group(1)[20:]) / 1e3


def status():
    try:
        url = f"http://127.0.0.1:{os.environ['EMU_HTTP_PORT']}/status"
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def bridges():
    """Switch name -> bridge name, from the emulator's environment."""
    return {k[len("EMU_BR_"):]: v for k, v in os.environ.items()
            if k.startswith("EMU_BR_")}


def dump_substream_flows(only=None):
    """Every edgetrain sub-stream flow on every switch (or on switch
    'only'): (switch, match and actions) -> dict(duration, n_bytes,
    cookie). Empty for a switch whose ovs-vswitchd is not answering."""
    flows = {}
    for sw, br in bridges().items():
        if only and sw != only:
            continue
        r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", br,
                            SUB_COOKIE], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            m = re.search(r"cookie=(0x[0-9a-f]+), duration=([0-9.]+)s, .*"
                          r"n_bytes=(\d+), (priority=.*)", line)
            if m:
                flows[(sw, m.group(4).strip())] = {
                    "cookie": m.group(1), "duration": float(m.group(2)),
                    "n_bytes": int(m.group(3))}
    return flows


def wait_for(pred, timeout, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def streaming(min_step, min_epoch=0, max_step=None):
    """The /status once every stage agent is past 'min_step' of epoch
    'min_epoch' or later (with 'max_step': training step min_step to
    max_step of epoch min_epoch, the checkpoints of that boundary all held
    by the controller), with sub-stream flows on the switches."""
    st = status()
    if st and st.get("run", {}).get("state") == "done":
        # Waiting on would only end in the emulator's kill, without a word.
        agents = {a["name"]: a.get("metrics", {}) for a in st["agents"]}
        raise RuntimeError(
            f"the run ended before the fault could be injected (wanted"
            f" every stage in epoch {min_epoch} at step {min_step}"
            + (f"-{max_step}, the boundary's checkpoints held"
               if max_step is not None else " or later")
            + "); last steps: "
            + ", ".join(f"{p['agent']} e{agents[p['agent']].get('epoch')}"
                        f" s{agents[p['agent']].get('step')}"
                        for p in st.get("placement", [])))
    if not st or st.get("run", {}).get("state") != "running" \
            or not st.get("placement"):
        return None
    if max_step is not None and (
            st["run"]["epoch_boundary"] < min_epoch
            or st["run"]["resume"]["checkpoints_held"]
            < len(st["placement"])):
        return None
    agents = {a["name"]: a for a in st["agents"]}
    for p in st["placement"]:
        m = agents[p["agent"]].get("metrics", {})
        if m.get("epoch", 0) < min_epoch or (m.get("epoch", 0) == min_epoch
                                             and m.get("step", 0) < min_step):
            return None
        # The last report of the previous epoch (its evaluation) says
        # epoch min_epoch with a step past the training steps.
        if max_step is not None and (m.get("epoch", 0) != min_epoch
                                     or m.get("step", 0) > max_step):
            return None
    return st if dump_substream_flows() else None


def progress(st, steps_per_epoch):
    """Steps trained by each stage agent: epoch * steps + step."""
    agents = {a["name"]: a for a in st["agents"]}
    return {p["agent"]: agents[p["agent"]].get("metrics", {}).get("epoch", 0)
            * steps_per_epoch
            + agents[p["agent"]].get("metrics", {}).get("step", 0)
            for p in st["placement"]}


def run_link_down(args):
    st = wait_for(lambda: streaming(args.min_step), 120)
    if not check(st is not None, "run streaming before the fault"):
        return
    # The weighted sub-stream to cut: the first multipath stream's second
    # sub-stream; its first hop link (source edge switch -> next switch).
    path = next(p for p in st["paths"] if len(p["substreams"]) > 1)
    sub = path["substreams"][1]
    a, b = sub["hops"][0], sub["hops"][1]
    topo = json.load(open(args.topology))
    link = next(l for l in topo["links"]
                if {l["a"], l["b"]} == {a, b})
    idx = topo["links"].index(link)
    dev = f"{os.environ['EMU_PREFIX']}l{idx}a"
    swns = f"{os.environ['EMU_PREFIX']}-sw"
    port = sub["local_port"]
    say(f"cutting link {a}-{b} ({dev}) under {path['from']}->{path['to']}"
        f" sub-stream {sub['id']} (port {port}, weight {sub['weight']:.2f})")
    src_sw = a

    def out_port():
        """The output port of the sub-stream's forward flow at its first
        switch, or None."""
        for (sw, match), _ in dump_substream_flows(src_sw).items():
            if f"tp_src={port}," in match + ",":
                m = re.search(r"actions=output:(\d+)", match)
                return m.group(1) if m else "drop"
        return None

    before = out_port()
    if not check(before is not None, f"sub-stream flow at {src_sw} found"
                 f" (output port {before})"):
        return
    t0 = time.time()
    subprocess.run(["ip", "netns", "exec", swns, "ip", "link", "set", dev,
                    "down"], check=True)
    say(f"link down at {stamp(t0)} (command took"
        f" {(time.time() - t0) * 1e3:.0f} ms)")
    # Re-routed: the sub-stream's flow at its first switch no longer points
    # at the dead link (withdrawn: the base flows carry it; or re-pinned).
    new = wait_for(lambda: (lambda p: p != before and p)(out_port() or "gone"),
                   10, step=0.01)
    t_flows = time.time() - t0
    say(f"flows off the dead link seen at {stamp(time.time())}")
    check(new is not None and t_flows < 1.0,
          f"re-routed within 1 s: flows off the dead link after"
          f" {t_flows * 1e3:.0f} ms (port {before} -> {new})")
    # The controller's new plan: no sub-stream over the dead link.
    def replanned():
        s = status()
        if not s:
            return None
        for p in s["paths"]:
            if p["from"] == path["from"]:
                hops = [tuple(x["hops"][i:i + 2]) for x in p["substreams"]
                        for i in range(len(x["hops"]) - 1)]
                if (a, b) not in hops and (b, a) not in hops:
                    return s
        return None
    s = wait_for(replanned, 10, step=0.05)
    t_plan = time.time() - t0
    check(s is not None and t_plan < 1.0 + 1.0,
          f"new paths planned and assigned after {t_plan * 1e3:.0f} ms"
          " (status polled every 50 ms)")
    if s:
        for p in s["paths"]:
            if p["from"] == path["from"]:
                for x in p["substreams"]:
                    say(f"  now {p['from']}->{p['to']} sub-stream {x['id']}"
                        f" port {x['local_port']}: {','.join(x['hops'])}"
                        f" weight {x['weight']:.2f}")
    # The controller's own timestamps: port-status seen, flows installed.
    seen = synced = None
    with open(os.path.join(os.environ["EMU_RUNDIR"], "controller.log")) as f:
        for line in f:
            t = log_time(line)
            if t is None or t < t0 - 0.5:
                continue
            if seen is None and re.search(r"openflow: link \d+ .* down", line):
                seen = t
            elif seen is not None and "installed on every" in line:
                synced = t
                break
    if seen is not None and synced is not None:
        say(f"controller: port-status {1e3 * (seen - t0):.0f} ms after the"
            f" link went down, re-routed flows installed"
            f" {1e3 * (synced - t0):.0f} ms after")
        check(synced - t0 < 1.0, "re-routed flows installed within 1 s"
              f" (controller log: {1e3 * (synced - t0):.0f} ms)")
    say(f"figure: reroute_ms={t_flows * 1e3:.0f} replan_ms={t_plan * 1e3:.0f}"
        + (f" controller_install_ms={1e3 * (synced - t0):.0f}"
           if synced else ""))


def path_set(st):
    """The /status paths as comparable tuples: (from, to, id, hops,
    weight to 3 decimals)."""
    return sorted((p["from"], p["to"], x["id"], tuple(x["hops"]),
                   round(x["weight"], 3))
                  for p in st["paths"] for x in p["substreams"])


def log_lines(name):
    try:
        with open(os.path.join(os.environ["EMU_RUNDIR"], name + ".log")) as f:
            return f.read().splitlines()
    except OSError:
        return []


def link_dev(topology, a, b):
    """The emulator's device of link a-b (the a side) and its namespace."""
    topo = json.load(open(topology))
    link = next(l for l in topo["links"] if {l["a"], l["b"]} == {a, b})
    idx = topo["links"].index(link)
    return (f"{os.environ['EMU_PREFIX']}l{idx}a",
            f"{os.environ['EMU_PREFIX']}-sw")


def move_substreams(args, st):
    """Sets the first hop of a weighted sub-stream down and waits until
    the controller has moved the sub-streams off it and every stage agent
    runs that generation. Returns (link device, namespace, status) or
    None."""
    path = next(p for p in st["paths"] if len(p["substreams"]) > 1)
    sub = path["substreams"][1]
    a, b = sub["hops"][0], sub["hops"][1]
    dev, ns = link_dev(args.topology, a, b)
    gen0 = st["run"]["generation"]
    say(f"moving sub-streams: link {a}-{b} ({dev}) down under"
        f" {path['from']}->{path['to']} sub-stream {sub['id']}")
    t0 = time.time()
    subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", dev,
                    "down"], check=True)

    def moved():
        s = status()
        if not s or s["run"]["generation"] <= gen0:
            return None
        hops = {tuple(x["hops"][i:i + 2]) for p in s["paths"]
                for x in p["substreams"] for i in range(len(x["hops"]) - 1)}
        return s if (a, b) not in hops and (b, a) not in hops else None
    s = wait_for(moved, 15, step=0.05)
    if not check(s is not None, f"sub-streams moved off {a}-{b}"
                 f" ({(time.time() - t0) * 1e3:.0f} ms)"):
        return None
    gen, run_id = s["run"]["generation"], s["run"]["run_id"]
    want = f"assignment: run {run_id} generation {gen},"

    def applied():
        return all(any(want in line for line in log_lines(f"agent-{p['agent']}"))
                   for p in s["placement"])
    ok = wait_for(applied, 15, step=0.05)
    check(ok, f"every stage agent runs generation {gen} (its log)")
    # The flows of that generation installed everywhere (the agents got it
    # after the controller saw them installed: make-before-break).
    return (dev, ns, status() or s) if ok else None


def run_controller_restart(args):
    st = wait_for(lambda: streaming(args.min_step, args.min_epoch,
                                    args.max_step), 180)
    if not check(st is not None, "run streaming before the fault"
                 + (f" (epoch {args.min_epoch})" if args.min_epoch else "")):
        return
    first_paths = path_set(st)
    link = None
    if args.move:
        m = move_substreams(args, st)
        if not m:
            return
        link, st = m[:2], m[2]
        if not check(path_set(st) != first_paths, "the paths before the"
                     " kill differ from the first plan's"):
            return
    paths0 = path_set(st)
    held0 = st["run"]["resume"]["checkpoints_held"]
    boundary0 = st["run"]["epoch_boundary"]
    before = dump_substream_flows()
    placement = sorted((p["stage"], p["agent"]) for p in st["placement"])
    run_id = st["run"]["run_id"]
    prog0 = progress(st, args.steps)
    t0 = time.time()
    os.kill(int(os.environ["EMU_PID"]), signal.SIGUSR1)
    if link:
        # Back up while no controller sees it: a fresh routing would use
        # it again; the installed paths do not.
        subprocess.run(["ip", "netns", "exec", link[1], "ip", "link", "set",
                        link[0], "up"], check=True)
        say(f"link {link[0]} up again {time.time() - t0:.1f} s after the"
            " kill")
    # During the outage: the flows stay and keep counting bytes.
    samples = []
    while time.time() - t0 < args.outage:
        time.sleep(0.5)
        samples.append((time.time() - t0, dump_substream_flows()))
    os.kill(int(os.environ["EMU_PID"]), signal.SIGUSR2)
    t_down = time.time() - t0
    kept = all(set(f) == set(before) for _, f in samples)
    check(kept and samples, f"all {len(before)} sub-stream flows stayed"
          f" while the controller was down ({len(samples)} samples)")
    last = samples[-1][1] if samples else {}
    grew = [k for k in before
            if k in last and last[k]["n_bytes"] > before[k]["n_bytes"]]
    moved = sum(last[k]["n_bytes"] - before[k]["n_bytes"] for k in grew)
    check(before and len(grew) == len(before),
          f"traffic went on during the {t_down:.1f} s outage: {len(grew)} of"
          f" {len(before)} sub-stream flows counted {moved / 1e6:.1f} MB more")

    # Back: the same run, adopted, same placement.
    def adopted():
        s = status()
        if not s or s.get("run", {}).get("run_id") != run_id:
            return None
        if s["run"].get("state") not in ("running", "done"):
            return None
        agents = {a["name"]: a for a in s["agents"]}
        if not all(agents[p["agent"]].get("metrics") for p in s["placement"]):
            return None
        return s
    s = wait_for(adopted, 30)
    t_back = time.time() - t0
    check(s is not None and sorted((p["stage"], p["agent"])
                                   for p in s["placement"]) == placement,
          f"restarted controller adopted run {run_id} with the same placement"
          f" ({t_back:.1f} s after the kill)")
    if s:
        # Adopted on the installed paths, with the same weights.
        ad = s["run"].get("adopted", {})
        check(ad.get("paths") == "installed" and path_set(s) == paths0,
              f"adopted on the installed paths: {ad.get('substreams')}"
              f" sub-streams kept with their weights ({ad.get('moved')} off"
              f" a fresh routing's paths, {ad.get('extra_flows')} left-over"
              " flows)" + (f"; routed afresh: {ad.get('reason')}"
                           if ad.get("paths") != "installed" else "")
              + ("" if path_set(s) == paths0 else
                 f"; paths changed: {sorted(set(paths0) - set(path_set(s)))}"))
        if args.move:
            check((ad.get("moved") or 0) > 0, f"{ad.get('moved')} of them"
                  " where a fresh routing would not put them (the test"
                  " exercises the moved case)")
        prog1 = progress(s, args.steps)
        adv = {a: prog1[a] - prog0.get(a, 0) for a in prog1}
        check(all(v > 0 for v in adv.values()),
              "every stage agent's step counter advanced across the outage: "
              + ", ".join(f"{a} +{v}" for a, v in adv.items()))
        say(f"figure: outage_s={t_down:.1f} steps_advanced="
            + ",".join(f"{a}:{v}" for a, v in adv.items())
            + f" adopted_after_s={t_back:.1f}")
        if args.min_epoch:
            # The copies held now came from --checkpoint-dir: no epoch
            # boundary since the kill, so no agent sent a new one.
            rs = s["run"]["resume"]
            check(held0 > 0 and rs["checkpoints_held"] > 0
                  and rs.get("checkpoints_reloaded", 0) == held0
                  and s["run"]["epoch_boundary"] == boundary0,
                  f"restarted controller holds {rs['checkpoints_held']}"
                  f" checkpoints ({rs.get('checkpoints_reloaded', 0)}"
                  f" reloaded from --checkpoint-dir; {held0} held before the"
                  f" kill) at epoch boundary {s['run']['epoch_boundary']}"
                  f" (was {boundary0}: none reached since)")
            say(f"figure: checkpoints_held_before={held0}"
                f" checkpoints_reloaded={rs.get('checkpoints_reloaded', 0)}"
                f" checkpoint_bytes={rs['checkpoint_bytes']}")
    # Once the switches are back with the restarted controller: the same
    # flows, not re-added (duration went on) and still counting.
    def switches_back():
        s = status()
        return s and all(x.get("connected") for x in s.get("switches", []))
    sw = wait_for(switches_back, 20)
    check(sw is not None, f"every switch reconnected to the restarted"
          f" controller ({time.time() - t0:.1f} s after the kill)")
    time.sleep(1.0)                 # its first sync, if it had one to do
    t1 = time.time()
    after = dump_substream_flows()
    reset = [k for k in before if k not in after or after[k]["duration"]
             < before[k]["duration"] + (t1 - t0) - 2.0]
    check(not reset and after,
          f"no flow removed or re-added across the restart: {len(before)}"
          f" sub-stream flows, durations went on"
          + (f" (reset: {reset[:3]})" if reset else ""))
    more = [k for k in before if k in after
            and after[k]["n_bytes"] > before[k]["n_bytes"]]
    check(len(more) == len(before), f"byte counters kept growing on"
          f" {len(more)} of {len(before)} flows (not reset)")


def run_switch_restart(args):
    st = wait_for(lambda: streaming(args.min_step), 120)
    if not check(st is not None, "run streaming before the fault"):
        return
    before = dump_substream_flows()
    rundir = os.environ["EMU_RUNDIR"]
    with open(f"{rundir}/ovs-vswitchd.pid") as f:
        pid = int(f.read())
    t0 = time.time()
    subprocess.run(["ovs-appctl", "-t", f"{rundir}/ovs-vswitchd.ctl",
                    "exit"], check=False, capture_output=True)

    def gone():
        try:
            os.kill(pid, 0)
            return False
        except ProcessLookupError:
            return True
    check(wait_for(gone, 10, step=0.02), "ovs-vswitchd exited")
    subprocess.run(os.environ["EMU_VSWITCHD"].split(), check=True,
                   stderr=subprocess.DEVNULL)
    t_up = time.time() - t0
    say(f"ovs-vswitchd restarted in {t_up * 1e3:.0f} ms (all flows lost)")

    def all_back():
        f = dump_substream_flows()
        return f if set(before) <= set(f) else None
    after = wait_for(all_back, 30, step=0.05)
    t_back = time.time() - t0
    fresh = after and all(after[k]["duration"] < t_back + 1 for k in before)
    check(after is not None and fresh and t_back - t_up < 3.0,
          f"all {len(before)} sub-stream flows back"
          f" {(t_back - t_up) * 1e3:.0f} ms after ovs-vswitchd was up again"
          f" (bound 3 s; {t_back * 1e3:.0f} ms after it was stopped)")
    say(f"figure: resync_ms={(t_back - t_up) * 1e3:.0f}"
        f" switch_down_ms={t_back * 1e3:.0f}"
        f" vswitchd_restart_ms={t_up * 1e3:.0f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["link-down", "controller-restart",
                                         "switch-restart"])
    ap.add_argument("out")
    ap.add_argument("--topology")
    ap.add_argument("--min-step", type=int, default=20,
                    help="inject once every stage is past this step")
    ap.add_argument("--steps", type=int, default=100,
                    help="steps per epoch (training and evaluation)")
    ap.add_argument("--outage", type=float, default=2.0)
    ap.add_argument("--min-epoch", type=int, default=0,
                    help="inject in this epoch (0-based) or later")
    ap.add_argument("--move", action="store_true",
                    help="controller-restart: move sub-streams (a link"
                         " down) before the kill, the link up during it")
    ap.add_argument("--max-step", type=int, default=None,
                    help="inject at training step --min-step to this one"
                         " of --min-epoch exactly")
    args = ap.parse_args()
    try:
        {"link-down": run_link_down,
         "controller-restart": run_controller_restart,
         "switch-restart": run_switch_restart}[args.scenario](args)
    except Exception as e:          # noqa: BLE001 - reported as a failure
        check(False, f"{args.scenario}: {type(e).__name__}: {e}")
    with open(os.path.join(args.out, "during.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
