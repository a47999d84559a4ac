#!/bin/sh
# The Mininet launcher's network alone: a topology file built by Mininet
# (OVSSwitch, userspace datapath, TCLink) inside a private OVS namespace.
# Checks pingall, the shaped rate, and that nothing is left behind.
set -u
cd "$(dirname "$0")/../.."
fail=0
pass() { echo "PASS: $1"; }
failc() { echo "FAIL: $1"; fail=1; }
if [ "$(id -u)" != 0 ] || ! command -v mn >/dev/null; then
    echo "SKIP: needs root and mininet"
    exit 0
fi
script=$(mktemp)
cat >"$script" <<'EOS'
pid() { for kv in $MN_HOSTS; do [ "${kv%%=*}" = "$1" ] && echo "${kv#*=}"; done; }
mnexec -a $(pid pi4) sh -c 'iperf3 -s -1 -p 5303 >/dev/null 2>&1 &'
sleep 1
mnexec -a $(pid pi1) iperf3 -c 10.0.1.4 -p 5303 -t 3 -J |
    python3 -c "import json,sys; print('rate_mbps=%.1f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e6))"
EOS
out=$(timeout 180 topology/mininet/edgetrain_mn.py topology/linear-4pi.json \
      --net-only --exec "sh $script" 2>&1)
rc=$?
[ $rc -eq 0 ] && pass "launcher exits 0" || { failc "launcher exits 0 (rc $rc)"; echo "$out" | tail -20; }
echo "$out" | grep -q '^pingall_loss_pct=0.0' && pass "pingall without loss" || failc "pingall without loss"
rate=$(echo "$out" | sed -n 's/^rate_mbps=//p')
echo "measured: ${rate:-none} Mbit/s over 100 Mbit/s TCLinks"
if [ -n "$rate" ] && python3 -c "import sys; r=float('$rate'); sys.exit(0 if 5 <= r <= 105 else 1)"; then
    pass "TCLink shaping holds the chain under its capacity (${rate})"
else
    failc "TCLink shaping holds the chain under its capacity (${rate:-none})"
fi
# The launcher names its namespace and run dir; both must be gone.
ns=$(echo "$out" | sed -n 's/^edgetrain-mn: namespace \([^,]*\), run dir \(.*\)/\1/p')
dir=$(echo "$out" | sed -n 's/^edgetrain-mn: namespace \([^,]*\), run dir \(.*\)/\2/p')
[ -n "$ns" ] && ! ip netns list | grep -q "^$ns" && [ ! -e "$dir" ] &&
    pass "no namespace or run dir left ($ns)" || failc "no namespace or run dir left ($ns)"
rm -f "$script"
exit $fail
