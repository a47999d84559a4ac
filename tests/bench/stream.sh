#!/bin/sh
# Activation-stream goodput (edgetrain bench-stream) beside iperf3 TCP
# goodput between the same loopback endpoints, same number of parallel
# TCP connections, same duration, in the same run. Prints both and the
# ratio; the goal is ratio >= 0.90.
#
#   tests/bench/stream.sh [path/to/edgetrain]
# Environment: SECONDS_EACH (default 4), SUBSTREAMS (default "1 2"),
#   HOST (default 127.0.0.1), PORT (default 17400).
set -u
ET=${1:-build/bin/edgetrain}
SECS=${SECONDS_EACH:-4}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-17400}
KS=${SUBSTREAMS:-1 2}
command -v iperf3 >/dev/null || { echo "bench-stream: iperf3 missing (apt-get install iperf3)"; exit 1; }
tmp=$(mktemp -d)
trap 'kill $rx 2>/dev/null; rm -rf "$tmp"' EXIT INT TERM
rx=

for k in $KS; do
    # iperf3: receiver-side goodput of k parallel streams.
    iperf3 -s -1 -p $((PORT + 1)) >/dev/null 2>&1 &
    sleep 0.3
    iperf3 -c "$HOST" -p $((PORT + 1)) -P "$k" -t "$SECS" -J >"$tmp/iperf.json" 2>/dev/null
    wait
    ip=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f" % (d["end"]["sum_received"]["bits_per_second"]/1e6))' "$tmp/iperf.json")

    "$ET" bench-stream --listen "$HOST:$PORT" >"$tmp/rx.log" 2>&1 &
    rx=$!
    sleep 0.3
    "$ET" bench-stream --to "$HOST:$PORT" --substreams "$k" --seconds "$SECS" >"$tmp/tx.log" 2>&1
    kill -INT $rx; wait $rx 2>/dev/null; rx=
    et=$(sed -n 's/^goodput_mbps=//p' "$tmp/tx.log" | tail -n 1)
    if [ -z "$et" ]; then
        echo "bench-stream: sender failed:"; cat "$tmp/tx.log" "$tmp/rx.log"; exit 1
    fi
    ratio=$(awk -v a="$et" -v b="$ip" 'BEGIN { printf "%.2f", a / b }')
    echo "stream k=$k: edgetrain ${et} Mbit/s, iperf3 ${ip} Mbit/s, ratio ${ratio} (goal >= 0.90)"
    grep -E 'received' "$tmp/rx.log" | sed 's/^/  receiver: /'
done
