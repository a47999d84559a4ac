# Shared by the fault scenarios (sourced by sh): one emulated diamond-4pi
# run with a fault injected beside it by tests/lib/faults.py.
#
#   faults_setup NAME        SKIP without root/OVS; run id, output dir
#   faults_run SCENARIO ...  the run, faults.py SCENARIO ... beside it
#   faults_finish            faults.py's lines, check_run.py, teardown
#                            check; exits with the verdict
#
# FAULTS_CTL_OPTS: more controller options for one scenario.
# FAULTS_EPOCHS: epochs of the run (2), for a scenario whose checks need
# the run to go on longer after the fault.
#
# The run: 3 stages on 4 agents, $FAULTS_EPOCHS epochs of $FAULTS_STEPS steps, batch
# 128 in micro-batches of 32 (4 chunks per step), 2000 test images.
BUILD=${BUILD:-build}
FAULTS_STEPS=${FAULTS_STEPS:-120}
FAULTS_EPOCHS=${FAULTS_EPOCHS:-2}
fail=0
pass() { echo "PASS: $1"; }
failc() { echo "FAIL: $1"; fail=1; }

faults_setup() {
    if [ "$(id -u)" != 0 ] || ! command -v ovs-vswitchd >/dev/null; then
        echo "SKIP: $1 needs root and openvswitch-switch"
        exit 0
    fi
    # A run id of our own: concurrent runs never share object names.
    id=$(printf "%03x" $(( ($$ + 0x$(printf %s "$1" | cksum | cut -c1-2)) % 4096 )))
    out=$(mktemp -d "/tmp/et-faults-$1-XXXXXX")
    log=$out/emulate.log
}

faults_run() {
    scenario=$1
    shift
    # Before teardown: every bridge's flows, and the logs (resends).
    after='for b in $(env | sed -n "s/^EMU_BR_\([^=]*\)=\(.*\)/\1=\2/p"); do
        ovs-ofctl -O OpenFlow13 dump-flows "${b#*=}" > "$EMU_OUT/flows-${b%%=*}.txt"; done
        cp "$EMU_RUNDIR"/*.log "$EMU_OUT/" 2>/dev/null; true'
    during="/usr/bin/python3 tests/lib/faults.py $scenario $out \
        --topology topology/diamond-4pi.json --steps $((FAULTS_STEPS + 16)) $*"
    of_port=$((20000 + ($$ * 7) % 20000))
    mgmt_port=$((of_port + 1))
    timeout 400 topology/emulate topology/diamond-4pi.json --bin "$BUILD/bin" \
        --id "$id" --out "$out" --threads 1 --seconds 300 \
        --openflow-port "$of_port" --mgmt-port "$mgmt_port" \
        --during "$during" --after "$after" \
        --data 'fashion-mnist?test-limit=2000' -- \
        --alpha 0.5 --input 32 --channels 1 --classes 10 --head-pool 4 \
        --batch 128 --micro-batch 32 --epochs "$FAULTS_EPOCHS" \
        --steps-per-epoch "$FAULTS_STEPS" --stages 3 \
        --lr 0.004 --seed 3 --data 'fashion-mnist?test-limit=2000' \
        --exit-when-done ${FAULTS_CTL_OPTS:-} >"$log" 2>&1
    rc=$?
    [ $rc -eq 0 ] && pass "emulated run finished" ||
        { failc "emulated run finished (rc $rc)"; tail -n 30 "$log"; }
    grep '^test_accuracy=' "$log"
}

faults_finish() {
    if [ -f "$out/during.txt" ]; then
        grep -E '^(PASS|FAIL): ' "$out/during.txt"
        grep -vE '^(PASS|FAIL): ' "$out/during.txt" | sed 's/^/  /'
        grep -q '^FAIL: ' "$out/during.txt" && fail=1
    else
        failc "fault injected and measured (no $out/during.txt)"
    fi
    # Every stream carries the same chunks: per epoch FAULTS_STEPS steps x
    # 4 micro-batches of training, then the 2000 test images in steps of
    # 128 (15 x 4 + 3).
    /usr/bin/python3 tests/lib/check_run.py "$out" \
        $((FAULTS_EPOCHS * (FAULTS_STEPS * 4 + 15 * 4 + 3))) ${CHECK_RUN_OPTS:-} || fail=1
    left=$(ip netns list | grep -c "^et$id"; ip -o link | grep -c "et$id"; pgrep -fc "edgetrain-et$id")
    if [ "$(echo $left | tr -d ' 0')" = "" ]; then
        pass "teardown left no namespace, link or process"
    else
        failc "teardown left objects behind: $left"
    fi
    if [ $fail -eq 0 ] && [ -z "${FAULTS_KEEP:-}" ]; then rm -rf "$out"; else echo "  logs: $out"; fi
    exit $fail
}
