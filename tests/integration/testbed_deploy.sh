#!/bin/sh
# The Pi testbed deploy script, run against local directories instead of
# ssh: every device gets its binaries, environment file and systemd unit;
# bad inventories are refused naming the line.
set -u
cd "$(dirname "$0")/../.."
fail=0
pass() { echo "PASS: $1"; }
failc() { echo "FAIL: $1"; fail=1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
BUILD=${BUILD:-build}

out=$(topology/testbed/deploy topology/testbed/inventory.example \
      --target "dir:$root" --bin "$BUILD/bin" 2>&1)
[ $? -eq 0 ] && pass "deploy to 5 local device roots" || { failc "deploy to 5 local device roots"; echo "$out"; }

ok=1
for n in pi1 pi2 pi3 pi4; do
    env=$root/$n/etc/edgetrain/agent.env
    grep -q "^ET_NAME=$n\$" "$env" && grep -q '^ET_CONTROLLER=192.168.1.10:7000$' "$env" &&
        grep -q '^ET_LISTEN=10.0.0.[1-4]:7100$' "$env" || ok=0
    "$root/$n/opt/edgetrain/bin/edgetrain-agent" --version >/dev/null || ok=0
    [ -f "$root/$n/etc/systemd/system/edgetrain-agent.service" ] || ok=0
done
grep -q 'ET_OPTS="--data fashion-mnist --threads 4"' "$root/pi1/etc/edgetrain/agent.env" || ok=0
[ $ok = 1 ] && pass "agents: env, binary and unit installed" || failc "agents: env, binary and unit installed"

cmp -s topology/diamond-4pi.json "$root/ctl/etc/edgetrain/topology.json" &&
    grep -q -- '--expect-agents 4' "$root/ctl/etc/edgetrain/controller.env" &&
    "$root/ctl/opt/edgetrain/bin/edgetrain-controller" --version >/dev/null &&
    pass "controller: topology, env, binary installed" || failc "controller: topology, env, binary installed"

if command -v systemd-analyze >/dev/null; then
    for u in agent controller; do
        f=$root/$( [ $u = agent ] && echo pi1 || echo ctl )/etc/systemd/system/edgetrain-$u.service
        # Outside the device root the binary is absent; that is the only
        # complaint allowed.
        msg=$(systemd-analyze verify "$f" 2>&1 | grep -v 'is not executable' || true)
        [ -z "$msg" ] && pass "edgetrain-$u.service passes systemd-analyze verify" ||
            failc "edgetrain-$u.service passes systemd-analyze verify: $msg"
    done
fi

dry=$(topology/testbed/deploy topology/testbed/inventory.example --dry-run 2>&1)
echo "$dry" | grep -q '\[pi2\] .*systemctl enable edgetrain-agent.service' &&
    echo "$dry" | grep -q '\[ctl\] .*make -j' &&
    pass "ssh dry run builds on the device and enables the units" ||
    failc "ssh dry run builds on the device and enables the units"

bad=$root/bad.inv
printf 'ctl h controller topology=topology/diamond-4pi.json\npi1 h agnet listen=1.2.3.4:5\n' >"$bad"
msg=$(topology/testbed/deploy "$bad" --target "dir:$root/x" 2>&1)
case "$msg" in *"bad.inv:2: role must be controller or agent, not 'agnet'"*) pass "bad role refused with file:line" ;;
*) failc "bad role refused with file:line: $msg" ;; esac
printf 'ctl h controller topology=topology/diamond-4pi.json\npi1 h agent colour=red\n' >"$bad"
msg=$(topology/testbed/deploy "$bad" --target "dir:$root/x" 2>&1)
case "$msg" in *"bad.inv:2: unknown key 'colour'"*) pass "unknown key refused with file:line" ;;
*) failc "unknown key refused with file:line: $msg" ;; esac
printf 'ctl h controller topology=topology/diamond-4pi.json\npi1 h agent\n' >"$bad"
msg=$(topology/testbed/deploy "$bad" --target "dir:$root/x" 2>&1)
case "$msg" in *"bad.inv:2: agent needs listen=ADDR:PORT"*) pass "agent without listen refused" ;;
*) failc "agent without listen refused: $msg" ;; esac
exit $fail
