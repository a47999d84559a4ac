# Shared by the integration scripts that run edgetrain processes on
# loopback (sourced from the repository root after they set T, the run's
# temp dir): PASS/FAIL lines, a failure count, the processes to stop on
# exit, waiting for a line in a log, and starting a controller or a
# simulated agent.
#
#   pass NAME / fail NAME      "PASS: NAME" / "FAIL: NAME" (counted in $fails)
#   check NAME EXPR            pass NAME if EXPR (eval'd) succeeds, else fail
#   check_within NAME SECONDS EXPR
#                              the same for a state that comes by itself:
#                              EXPR retried until it succeeds or SECONDS
#                              pass (a loaded machine is slow, not wrong)
#   now_ms                     wall clock in milliseconds
#   wait_for FILE SECONDS PATTERN
#                              until FILE contains PATTERN (status 1 if not)
#   start_controller NAME ARG...
#                              edgetrain-controller with management and HTTP
#                              on 127.0.0.1:0 (a later --listen/--http in
#                              ARGs wins), stdout in $T/NAME.out, log in
#                              $T/NAME.err; sets CTLPID, MPORT and HPORT once
#                              it prints its ports (status 1 if it does not
#                              within 5 s). Its log tail is shown on failure.
#   sim OUTFILE ARG...         `edgetrain agent-sim` toward 127.0.0.1:$MPORT
#                              in the background, output in $T/OUTFILE
#   status_json                GET /status of the controller on $HPORT
#
# On exit every process in $pids is stopped; $T is removed unless a check
# failed or KEEP is set.
BIN=${BIN:-${BUILD:-build}/bin}
fails=0
pids=""
show_logs=""
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
check_within() {
    _end=$(( $(now_ms) + $2 * 1000 ))
    until eval "$3" 2>/dev/null; do
        if [ "$(now_ms)" -ge $_end ]; then
            check "$1" "$3"         # once more, with its error output
            return
        fi
        sleep 0.1
    done
    pass "$1"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ $fails -ne 0 ]; then
        for l in $show_logs; do
            echo "--- $(basename "$l") (tail) ---"; tail -n 30 "$l"
        done
    fi
    [ $fails -eq 0 ] && [ -z "${KEEP:-}" ] && rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

wait_for() {
    i=0
    while [ $i -lt $(($2 * 10)) ]; do
        grep -q -- "$3" "$1" 2>/dev/null && return 0
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

start_controller() {
    _n=$1; shift
    "$BIN/edgetrain-controller" --listen 127.0.0.1:0 --http 127.0.0.1:0 "$@" \
        >"$T/$_n.out" 2>"$T/$_n.err" &
    CTLPID=$!
    pids="$pids $CTLPID"
    show_logs="$show_logs $T/$_n.err"
    wait_for "$T/$_n.out" 5 "^listening" || return 1
    MPORT=$(sed -n 's/^listening mgmt=\([0-9]*\) http=.*/\1/p' "$T/$_n.out")
    HPORT=$(sed -n 's/^listening mgmt=[0-9]* http=\([0-9]*\)/\1/p' "$T/$_n.out")
}

sim() {
    _o=$1; shift
    "$BIN/edgetrain" agent-sim --controller 127.0.0.1:$MPORT "$@" \
        >"$T/$_o" 2>&1 &
    pids="$pids $!"
}

status_json() {
    "$BIN/edgetrain" status --controller "http://127.0.0.1:$HPORT" --json
}
