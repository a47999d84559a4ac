#!/usr/bin/python3
"""Run an edgetrain topology file in Mininet.

    topology/mininet/edgetrain_mn.py TOPOLOGY.json [options] [-- controller options]

Builds the topology with Mininet (OVSSwitch with the userspace datapath,
since this kernel may lack the OVS module; TCLink for bandwidth, and delay
and loss where the kernel has netem), attaches edgetrain-controller as the
remote controller, starts an edgetrain-agent on every host, runs a training
job, and optionally drops into the Mininet CLI (--cli).

Mininet drives the machine's Open vSwitch through ovs-vsctl. So that a run
neither needs nor disturbs a system OVS (the userspace datapath's
"ovs-netdev" device exists once per network namespace), the launcher first
starts a private ovsdb-server and ovs-vswitchd in a network namespace of its
own and re-executes itself there; everything is removed on exit.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
sys.path.insert(0, os.path.dirname(HERE))
from runwatch import RunWatch  # noqa: E402


def log(msg):
    print(f"edgetrain-mn: {msg}", file=sys.stderr, flush=True)


def parse_args():
    ap = argparse.ArgumentParser(
        prog="edgetrain_mn.py",
        description="Run an edgetrain topology in Mininet with the real"
                    " controller and agents.")
    ap.add_argument("topology")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--data", default="fashion-mnist",
                    help="dataset spec for the source agent")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=900,
                    help="give up on the training job after this long")
    ap.add_argument("--cli", action="store_true",
                    help="open the Mininet CLI once the job is started")
    ap.add_argument("--net-only", action="store_true",
                    help="build the network (switches in standalone L2 mode),"
                         " run --exec or pingall, start no edgetrain")
    ap.add_argument("--exec", dest="exec_cmd",
                    help="shell command to run in the root namespace once up"
                         " (env: MN_HOSTS='name=pid ...')")
    ap.add_argument("--after", dest="after_cmd",
                    help="shell command to run when the run is over, before"
                         " teardown (env: MN_HOSTS, MN_BR_<switch>=bridge;"
                         " final /status in --out/status.json)")
    ap.add_argument("--keep-logs", action="store_true")
    ap.add_argument("--out", help="directory for the accuracy plot and data")
    args, extra = ap.parse_known_args()
    if extra and extra[0] == "--":
        extra = extra[1:]
    return args, extra


# --- outer: private OVS in its own namespace -------------------------------

def outer(args):
    if os.geteuid() != 0:
        log("error: needs root (Mininet, Open vSwitch); run it with sudo")
        return 1
    for tool in ("mn", "ovs-vswitchd", "ovsdb-server"):
        if not shutil.which(tool):
            log(f"error: '{tool}' not found: apt-get install mininet"
                " openvswitch-switch")
            return 1
    rundir = tempfile.mkdtemp(prefix="edgetrain-mn-")
    ns = "etmn-" + os.path.basename(rundir)[-6:].replace("_", "x")
    env = dict(os.environ, OVS_RUNDIR=rundir, OVS_DBDIR=rundir,
               OVS_LOGDIR=rundir, EDGETRAIN_MN_INNER="1",
               EDGETRAIN_MN_RUNDIR=rundir)
    pids = []
    rc = 1
    log(f"namespace {ns}, run dir {rundir}")
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo",
                        "up"], check=True)
        subprocess.run(["ovsdb-tool", "create", f"{rundir}/conf.db", SCHEMA],
                       check=True)
        for cmd, name in (
                (["ovsdb-server", f"{rundir}/conf.db",
                  f"--remote=punix:{rundir}/db.sock"], "ovsdb-server"),
                (["ovs-vswitchd", f"unix:{rundir}/db.sock"], "ovs-vswitchd")):
            subprocess.run(["ip", "netns", "exec", ns] + cmd + [
                f"--pidfile={rundir}/{name}.pid",
                f"--unixctl={rundir}/{name}.ctl",
                f"--log-file={rundir}/{name}.log", "-vconsole:off",
                "--detach"], env=env, check=True, stderr=subprocess.DEVNULL)
            pids.append(f"{rundir}/{name}.pid")
            if name == "ovsdb-server":
                subprocess.run(["ovs-vsctl", f"--db=unix:{rundir}/db.sock",
                                "--no-wait", "init"], check=True, env=env)
        # Its own process group: whatever Mininet leaves (host shells) is
        # killed with it, without Mininet's machine-wide `mn -c`.
        inner = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable,
             os.path.abspath(__file__)] + sys.argv[1:], env=env,
            start_new_session=True)

        def forward(signum, frame):
            inner.send_signal(signum)
        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        rc = inner.wait()
    except (subprocess.CalledProcessError, OSError) as e:
        log(f"error: {e}")
    finally:
        for pf in reversed(pids):
            try:
                with open(pf) as f:
                    os.kill(int(f.read()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(0.3)
        try:
            os.killpg(inner.pid, signal.SIGKILL)
        except (ProcessLookupError, NameError, PermissionError):
            pass
        pids = subprocess.run(["ip", "netns", "pids", ns],
                              stdout=subprocess.PIPE, text=True).stdout
        for pid in pids.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        # Deleting the namespace deletes every link Mininet left in it.
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        if not args.keep_logs:
            shutil.rmtree(rundir, ignore_errors=True)
        else:
            log(f"logs kept in {rundir}")
    return rc


# --- inner: Mininet itself --------------------------------------------------

def netem_available():
    r = subprocess.run("ip link add etnetemq type dummy && "
                       "tc qdisc add dev etnetemq root netem delay 1ms; "
                       "rc=$?; ip link del etnetemq; exit $rc", shell=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def link_opts(spec, netem):
    opts = {}
    if spec.get("capacity_mbps"):
        opts["bw"] = float(spec["capacity_mbps"])
        # tbf as the namespace emulator does, with its 50 ms queue: Mininet's
        # default (15*8/bw ms, 2.4 ms at 50 Mbit/s) holds a few packets, so
        # every burst of a sub-stream was dropped and resent and the links
        # carried a tenth more than the agents sent.
        opts["use_tbf"] = True
        opts["latency_ms"] = 50.0
    if netem:
        if spec.get("delay_ms"):
            opts["delay"] = f"{spec['delay_ms']}ms"
        if spec.get("loss_pct"):
            opts["loss"] = float(spec["loss_pct"])
    return opts


def inner(args, extra):
    from mininet.cli import CLI
    from mininet.link import TCLink
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import OVSSwitch, RemoteController

    setLogLevel("warning")
    rundir = os.environ["EDGETRAIN_MN_RUNDIR"]
    with open(args.topology) as f:
        topo = json.load(f)
    netem = netem_available()
    if not netem:
        log("warning: this kernel has no netem: link delay and loss are NOT"
            " emulated, only bandwidth")

    of_port, mgmt_port, http_port = 6653, 7000, 8080
    net = Mininet(switch=OVSSwitch, link=TCLink, controller=None,
                  autoSetMacs=False, build=False)
    if not args.net_only:
        net.addController("c0", controller=RemoteController,
                          ip="127.0.0.1", port=of_port)
    fail_mode = "standalone" if args.net_only else "secure"
    switches = {}
    for s in topo["switches"]:
        dpid = str(s["dpid"]).replace(":", "").rjust(16, "0")
        switches[s["name"]] = net.addSwitch(
            f"s{len(switches) + 1}", dpid=dpid, datapath="user",
            failMode=fail_mode, protocols="OpenFlow13")
    hosts = {}
    for i, a in enumerate(topo["agents"]):
        ip = a["data"].rsplit(":", 1)[0]
        h = net.addHost(a["name"], ip=f"{ip}/8", mac=a.get("mac"))
        hosts[a["name"]] = h
        net.addLink(h, switches[a["switch"]], port2=int(a["port"]),
                    **link_opts(a, netem))
    for l in topo["links"]:
        net.addLink(switches[l["a"]], switches[l["b"]],
                    port1=int(l["a_port"]), port2=int(l["b_port"]),
                    **link_opts(l, netem))
    # Out-of-band management: a standalone L2 switch joining every host's
    # second interface and the root namespace (controller side).
    mg = net.addSwitch("mg0", dpid="00000000000000ff", datapath="user",
                       failMode="standalone")
    root = net.addHost("root", inNamespace=False)
    net.addLink(root, mg)
    for i, h in enumerate(hosts.values()):
        net.addLink(h, mg)
    net.build()
    root.setIP("10.253.0.254/24", intf=root.defaultIntf())
    for i, h in enumerate(hosts.values()):
        h.intfs[1].setIP(f"10.253.0.{i + 1}/24")

    # OVS resets a port's qdiscs when it takes it; QoS type linux-noop tells
    # it to leave them, then TCLink's shaping is applied again.
    net.start()
    # The management switch must not follow the remote controller (which
    # does not know its datapath): without one, standalone mode does L2.
    mg.vsctl("del-controller", mg.name)
    # Userspace datapath + veth: with tx checksum offload on, TCP stalls.
    for h in list(hosts.values()) + [root]:
        for intf in h.intfList():
            h.cmd("ethtool", "-K", intf.name, "tx", "off")
    for sw in list(switches.values()) + [mg]:
        for intf in sw.intfList():
            if intf.name == "lo":
                continue
            subprocess.run(["ethtool", "-K", intf.name, "tx", "off"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if sw is mg:
                continue
            sw.vsctl("set", "port", intf.name, "qos=@q", "--", "--id=@q",
                     "create", "qos", "type=linux-noop")
            if isinstance(intf.link, TCLink) and intf.params:
                intf.config(**intf.params)
    procs = []
    rc = 0
    try:
        if args.net_only:
            time.sleep(1)
            loss = net.ping(list(hosts.values()), timeout=2)
            print(f"pingall_loss_pct={loss}")
            rc = 0 if loss == 0 else 1
        else:
            ctl_log = open(f"{rundir}/controller.log", "w")
            procs.append(subprocess.Popen(
                [f"{args.bin}/edgetrain-controller", "--topology",
                 args.topology, "--listen", f"0.0.0.0:{mgmt_port}",
                 "--openflow", f"ptcp:{of_port}:127.0.0.1",
                 "--http", f"127.0.0.1:{http_port}",
                 "--expect-agents", str(len(hosts))] + extra,
                stdout=ctl_log, stderr=subprocess.STDOUT))
            time.sleep(0.5)
            for i, (name, h) in enumerate(hosts.items()):
                a = topo["agents"][i]
                cmd = [f"{args.bin}/edgetrain-agent", "--name", name,
                       "--controller", f"10.253.0.254:{mgmt_port}",
                       "--listen", a["data"], "--threads", str(args.threads),
                       "--state-dir", f"{rundir}/state-{name}"]
                if i == 0 and args.data:
                    cmd += ["--data", args.data]
                procs.append(h.popen(cmd, stdout=open(
                    f"{rundir}/agent-{name}.log", "w"),
                    stderr=subprocess.STDOUT))
        if args.exec_cmd:
            env = dict(os.environ, MN_HOSTS=" ".join(
                f"{n}={h.pid}" for n, h in hosts.items()))
            rc = subprocess.run(args.exec_cmd, shell=True, env=env).returncode
        elif args.cli:
            CLI(net)
        elif not args.net_only:
            watch = RunWatch(f"http://127.0.0.1:{http_port}", out_dir=args.out)
            finished = watch.follow(
                args.seconds, lambda: all(p.poll() is None for p in procs))
            watch.final()
            rc = 0 if finished else 1
            if not finished:
                log(f"run did not finish; logs in {rundir}")
        if args.after_cmd:
            env = dict(os.environ, MN_HOSTS=" ".join(
                f"{n}={h.pid}" for n, h in hosts.items()),
                MN_OUT=args.out or "")
            for name, sw in switches.items():
                env[f"MN_BR_{name}"] = sw.name
            after = subprocess.run(args.after_cmd, shell=True, env=env)
            rc = rc or after.returncode
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        net.stop()
    return rc


def main():
    args, extra = parse_args()
    if os.environ.get("EDGETRAIN_MN_INNER") == "1":
        return inner(args, extra)
    return outer(args)


if __name__ == "__main__":
    sys.exit(main())
