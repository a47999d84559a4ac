# Check helpers for integration tests (sourced by sh).
#
#   pass NAME / fail NAME        print "PASS: NAME" / "FAIL: NAME"; fail
#                                counts into $failures
#   now_ms                       wall clock in milliseconds
#   wait_grep FILE PATTERN SECONDS [COUNT]
#                                until PATTERN occurs COUNT (1) times in FILE
#   base_actions BRIDGE IP       actions of edgetrain's base IPv4 flow to IP
#                                (a dump-flows filter would also match the
#                                more specific sub-stream flows)

failures=0
pass() { echo "PASS: $1"; }
fail() { echo "FAIL: $1"; failures=$((failures + 1)); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

wait_grep() {
    _end=$(( $(now_ms) + $3 * 1000 ))
    while [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -lt "${4:-1}" ]; do
        [ "$(now_ms)" -ge "$_end" ] && return 1
        sleep 0.05
    done
}

base_actions() {
    ovs-ofctl -O OpenFlow13 dump-flows "$1" 2>/dev/null |
        sed -n "s/.*priority=100,ip,nw_dst=$2 actions=//p" | head -n 1
}
