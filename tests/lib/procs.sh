# Shared by the agent integration scripts (sourced after they set T, the
# run's temp dir): PASS/FAIL lines, a failure count, the processes to stop
# on exit, and waiting for a line in a log.
fails=0
pids=""
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# Stops every process in $pids; keeps $T for inspection if a check failed.
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ $fails -eq 0 ] && rm -rf "$T"
}
trap cleanup EXIT INT TERM

# Waits up to $2 seconds for file $1 to contain pattern $3.
wait_for() {
    i=0
    while [ $i -lt $(($2 * 10)) ]; do
        grep -q -- "$3" "$1" 2>/dev/null && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}
