#!/usr/bin/env python3
"""Fault driver for tests/faults/agent_loss.sh, run by `topology/emulate
--exec` (its environment names the namespaces, ports and run dir).

Waits until the stage-2 agent is training epoch 2 (mid-epoch), SIGKILLs
it (MODE kill: the kernel closes its sockets) or SIGSTOPs it (MODE stop: a
Pi losing power, no FIN, heartbeats just stop; it is SIGKILLed once the
controller re-placed the run), waits for the controller to re-place the
run without it, restarts the agent with the same name, and follows /status
until the run is done. MODE back: SIGKILL and restart at once, before the
failover (the run keeps its placement and resumes). MODE gone: SIGKILL and
never restart (with no spare agent the run goes on with fewer stages).
MODE return: as gone, then restarted once the failover placement is out;
waits for the placement before the failover to come back (the merged
stage split again at a boundary).
Writes OUT/result.json (times, placements seen) and OUT/status.json (the
final /status), and copies the controller and agent logs into OUT.

usage: agent_loss.py OUT TOPOLOGY BIN STEPS_PER_EPOCH kill|stop|back|gone|return"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request


def status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def placement(st):
    return [p["agent"] for p in sorted(st.get("placement", []),
                                       key=lambda p: p["stage"])]


def ranges(st):
    return [[p["first_block"], p["last_block"]]
            for p in sorted(st.get("placement", []), key=lambda p: p["stage"])]


def agent(st, name):
    return next((a for a in st.get("agents", []) if a["name"] == name), {})


def agent_pid(name, controller):
    """Pid of our edgetrain-agent named 'name' (its command line names this
    run's controller address: other runs' agents share names)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if (args and args[0].endswith("edgetrain-agent")
                and name in args and controller in args):
            return int(pid)
    return None


def main():
    out, topo_path, bindir, steps, mode = sys.argv[1], sys.argv[2], \
        sys.argv[3], int(sys.argv[4]), sys.argv[5]
    os.makedirs(out, exist_ok=True)
    url = f"http://127.0.0.1:{os.environ['EMU_HTTP_PORT']}/status"
    res = {"ok": False, "snapshots": []}
    restarted = None

    def save():
        with open(f"{out}/result.json", "w") as f:
            json.dump(res, f, indent=1)
        rundir = os.environ["EMU_RUNDIR"]
        for name in os.listdir(rundir):
            if name.endswith(".log"):
                shutil.copy(f"{rundir}/{name}", out)

    def wait(cond, seconds, what):
        end = time.time() + seconds
        while time.time() < end:
            st = status(url)
            if st:
                snap = (st["run"].get("generation"), placement(st))
                if not res["snapshots"] or res["snapshots"][-1][1:3] != \
                        list(snap):
                    res["snapshots"].append(
                        [round(time.time() * 1000), snap[0], snap[1],
                         st["run"].get("epoch_boundary")])
                if cond(st):
                    return st
            time.sleep(0.1)
        res["error"] = f"timed out waiting for {what}"
        # What the controller showed last: why it did not get there.
        st = status(url)
        if st:
            res["last_status"] = {
                "run": st.get("run"),
                "agents": [{k: a.get(k) for k in ("name", "alive", "registrations",
                                                  "metrics")}
                           for a in st.get("agents", [])]}
        return None

    def finish():
        st = wait(lambda s: s["run"].get("state") == "done", 200,
                  "the run to finish")
        if not st:
            return 1
        with open(f"{out}/status.json", "w") as f:
            json.dump(st, f, indent=1)
        res["placement_final"] = placement(st)
        res["ranges_final"] = ranges(st)
        res["ok"] = True
        return 0

    try:
        # Mid-epoch 2: every stage finished epoch 1 and the victim trains
        # a step of the second one.
        def mid_epoch2(st):
            pl = placement(st)
            if st["run"].get("state") != "running" or len(pl) < 3:
                return False
            m = agent(st, pl[1]).get("metrics", {})
            return (st["run"].get("epoch_boundary", 0) >= 1
                    and m.get("epoch") == 1 and 2 <= m.get("step", 0) < steps)
        st = wait(mid_epoch2, 150, "the middle stage training epoch 2")
        if not st:
            return 1
        victim = placement(st)[1]
        res["victim"] = victim
        res["placement_before"] = placement(st)
        res["ranges_before"] = ranges(st)
        res["boundary_at_kill"] = st["run"].get("epoch_boundary")
        res["generation_before"] = st["run"]["generation"]
        res["victim_step"] = agent(st, victim)["metrics"]["step"]
        ctl_addr = f"{os.environ['EMU_MGMT_GW']}:{os.environ['EMU_MGMT_PORT']}"
        pid = agent_pid(victim, ctl_addr)
        if not pid:
            res["error"] = f"no agent process for {victim}"
            return 1
        os.kill(pid, signal.SIGSTOP if mode == "stop" else signal.SIGKILL)
        res["kill_ms"] = round(time.time() * 1000)
        res["mode"] = mode

        st = wait(lambda s: not agent(s, victim).get("alive", True), 30,
                  "the victim declared dead")
        if not st:
            return 1
        res["dead_seen_ms"] = round(time.time() * 1000)
        st = st if mode == "back" else wait(lambda s: victim not in placement(s)
                  and s["run"]["generation"] > res["generation_before"]
                  and s["run"].get("state") == "running", 60,
                  "a placement without the victim")
        if not st:
            return 1
        res["failover_ms"] = round(time.time() * 1000) if mode != "back" \
            else None
        res["placement_failover"] = placement(st)
        res["ranges_failover"] = ranges(st)
        res["resume_failover"] = st["run"].get("resume")
        res["start_epoch_failover"] = st["run"].get("start_epoch")
        if mode == "stop":
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

        if mode == "gone":
            return finish()

        # The agent comes back (same name, same address, empty state dir).
        with open(topo_path) as f:
            topo = json.load(f)
        data = next(a["data"] for a in topo["agents"] if a["name"] == victim)
        cmd = ["ip", "netns", "exec", os.environ[f"EMU_NS_{victim}"],
               f"{bindir}/edgetrain-agent", "--name", victim, "--controller",
               ctl_addr,
               "--listen", data, "--threads", "1", "--state-dir",
               f"{os.environ['EMU_RUNDIR']}/state-{victim}-again"]
        log = open(f"{out}/agent-{victim}-again.log", "w")
        restarted = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        res["restart_ms"] = round(time.time() * 1000)
        res["boundary_at_restart"] = st["run"].get("epoch_boundary")
        # "Used again from the next epoch" counts from its registration:
        # its start-up (self-benchmark) may straddle a boundary on a busy
        # machine.
        st = wait(lambda s: agent(s, victim).get("alive"), 60,
                  "the restarted agent registered")
        if not st:
            return 1
        res["boundary_at_register"] = st["run"].get("epoch_boundary")
        if mode == "back":
            st = wait(lambda s: victim in placement(s)
                      and s["run"]["generation"] > res["generation_before"]
                      and s["run"].get("state") == "running", 60,
                      "the run resumed with the agent back")
            if not st:
                return 1
            res["start_epoch_failover"] = st["run"].get("start_epoch")
        if mode == "return":
            # The placement before the failover again (same agents, same
            # ranges), at a boundary after the agent registered.
            st = wait(lambda s: placement(s) == res["placement_before"]
                      and ranges(s) == res["ranges_before"]
                      and s["run"].get("state") == "running", 120,
                      "the placement before the failover back")
            if not st:
                return 1
            res["home_ms"] = round(time.time() * 1000)
            res["boundary_at_home"] = st["run"].get("epoch_boundary")
            res["start_epoch_home"] = st["run"].get("start_epoch")
            res["generation_home"] = st["run"].get("generation")

        return finish()
    finally:
        time.sleep(0.5)
        if restarted:
            restarted.terminate()
            try:
                restarted.wait(5)
            except subprocess.TimeoutExpired:
                restarted.kill()
        save()


if __name__ == "__main__":
    sys.exit(main())
