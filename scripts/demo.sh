#!/bin/sh
# `make demo`: the main job. Brings up the emulated 4-Pi diamond (real Open
# vSwitch, one network namespace per Pi, 100/50 Mbit/s links, out-of-band
# management), trains MobileNet block-wise on Fashion-MNIST for a short run,
# shows the placement and paths the controller chose and the progress, then
# prints the final table and `test_accuracy=...`, writes the accuracy plot
# and tears everything down.
#
# Without root or Open vSwitch it runs the same controller and agents as
# plain processes on 127.0.0.1 (topology/loopback-3.json) and says so.
#
# DEMO_EPOCHS, DEMO_STEPS (steps per epoch), DEMO_OUT override the defaults;
# DEMO_LOOPBACK=1 forces the loopback mode.
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
bin=$BUILD/bin
out=${DEMO_OUT:-runs/demo}
epochs=${DEMO_EPOCHS:-2}
steps=${DEMO_STEPS:-60}
mkdir -p "$out"

# The run: MobileNet v1 (alpha 0.5) on 32x32 Fashion-MNIST, 10 classes.
run_opts="--alpha 0.5 --input 32 --channels 1 --classes 10 --head-pool 4
  --batch 128 --micro-batch 32 --epochs $epochs --steps-per-epoch $steps
  --optimizer adam --lr 0.004 --schedule onecycle --seed 1
  --data fashion-mnist --exit-when-done"

if [ "${DEMO_LOOPBACK:-0}" != 1 ] && [ "$(id -u)" = 0 ] &&
   command -v ovs-vswitchd >/dev/null 2>&1; then
    echo "demo: emulated 4-Pi diamond (Open vSwitch userspace datapath," \
         "namespaces, tbf-shaped links)"
    # shellcheck disable=SC2086
    exec topology/emulate topology/diamond-4pi.json --bin "$bin" --out "$out" \
        --threads 1 --seconds 900 -- $run_opts --stages 4
fi

echo "demo: not root or no Open vSwitch: running controller and 3 agents" \
     "on 127.0.0.1 without OpenFlow (topology/loopback-3.json)"
tmp=$(mktemp -d)
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM
# shellcheck disable=SC2086
"$bin/edgetrain-controller" --topology topology/loopback-3.json \
    --listen 127.0.0.1:7000 --http 127.0.0.1:7080 --expect-agents 3 \
    $run_opts --stages 3 >"$tmp/controller.log" 2>&1 &
pids="$pids $!"
sleep 0.3
for a in a1 a2 a3; do
    port=$(sed -n "s/.*\"name\": \"$a\", \"data\": \"127.0.0.1:\([0-9]*\)\".*/\1/p" topology/loopback-3.json)
    "$bin/edgetrain-agent" --name "$a" --controller 127.0.0.1:7000 \
        --listen "127.0.0.1:$port" --threads 1 --state-dir "$tmp/$a" \
        >"$tmp/agent-$a.log" 2>&1 &
    pids="$pids $!"
done
if /usr/bin/python3 - "$out" "${DEMO_SECONDS:-900}" <<'PY'
import sys
sys.path.insert(0, "topology")
from runwatch import RunWatch
w = RunWatch("http://127.0.0.1:7080", out_dir=sys.argv[1])
ok = w.follow(int(sys.argv[2]))
w.final()
sys.exit(0 if ok else 1)
PY
then :; else
    echo "demo: the run did not finish; last lines of the logs:"
    for f in "$tmp"/*.log; do echo "== $f"; tail -n 5 "$f"; done
    exit 1
fi
