#!/bin/sh
# Activation-stream goodput (edgetrain bench-stream) beside iperf3 TCP
# goodput between the same loopback endpoints, with the same number of
# parallel TCP connections and the same duration. The two alternate for
# ROUNDS rounds so load from other processes hits both alike; the medians
# and their ratio are printed (goal: ratio >= 0.90).
#
#   tests/bench/stream.sh [path/to/edgetrain]
# Environment: SECONDS_EACH (2), ROUNDS (3), SUBSTREAMS ("1 2"),
#   HOST (127.0.0.1), PORT (17400), ARGS (extra sender options, e.g.
#   "--dtype f16 --shape 16,32,32,64").
set -u
ET=${1:-build/bin/edgetrain}
SECS=${SECONDS_EACH:-2}
ROUNDS=${ROUNDS:-3}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-17400}
KS=${SUBSTREAMS:-1 2}
ARGS=${ARGS:-}
command -v iperf3 >/dev/null || { echo "bench-stream: iperf3 missing (apt-get install iperf3)"; exit 1; }
tmp=$(mktemp -d)
rx=
trap 'kill $rx 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for k in $KS; do
    # One receiver for all rounds: each new sender continues its stream.
    "$ET" bench-stream --listen "$HOST:$PORT" >"$tmp/rx.log" 2>&1 &
    rx=$!
    sleep 0.3
    : >"$tmp/ip"; : >"$tmp/et"
    r=0
    while [ $r -lt "$ROUNDS" ]; do
        iperf3 -s -1 -p $((PORT + 1)) >/dev/null 2>&1 &
        sleep 0.3
        iperf3 -c "$HOST" -p $((PORT + 1)) -P "$k" -t "$SECS" -J >"$tmp/iperf.json" 2>/dev/null
        wait $!
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' "$tmp/iperf.json" >>"$tmp/ip"
        # shellcheck disable=SC2086
        "$ET" bench-stream --to "$HOST:$PORT" --substreams "$k" --seconds "$SECS" $ARGS >"$tmp/tx.log" 2>&1
        v=$(sed -n 's/^goodput_mbps=//p' "$tmp/tx.log" | tail -n 1)
        [ -n "$v" ] || { echo "bench-stream: sender failed:"; cat "$tmp/tx.log" "$tmp/rx.log"; exit 1; }
        echo "$v" >>"$tmp/et"
        r=$((r + 1))
    done
    kill -INT $rx; wait $rx 2>/dev/null; rx=
    ip=$(median <"$tmp/ip"); et=$(median <"$tmp/et")
    ratio=$(awk -v a="$et" -v b="$ip" 'BEGIN { printf "%.2f", a / b }')
    echo "stream k=$k: edgetrain ${et} Mbit/s, iperf3 ${ip} Mbit/s (medians of $ROUNDS x ${SECS}s), ratio ${ratio} (goal >= 0.90)"
    echo "  rounds: edgetrain $(paste -sd' ' "$tmp/et"); iperf3 $(paste -sd' ' "$tmp/ip")"
    sed -n 's/^received/  receiver: received/p' "$tmp/rx.log"
done
