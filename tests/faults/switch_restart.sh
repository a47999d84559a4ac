#!/bin/sh
# Switch restart under a running multipath run on the emulated 4-Pi
# diamond: mid-epoch, the run's ovs-vswitchd (all six switches) exits and
# starts again from its database, with empty flow tables. Checks
# (tests/lib/faults.py switch-restart): every switch reconnects and the
# controller puts every sub-stream flow back (read from the empty tables,
# then added), within a bound that is measured and printed; then
# (check_run.py --faults) the run completes, every head beats chance and
# every stream delivered each chunk exactly once (the packets lost while
# the switches were down are TCP's to resend; chunks resent by the agents
# are dropped by sequence number).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/faults.sh
faults_setup switch_restart
# Paths stay as planned (no re-plan for measured link load): the check is
# that the flows the switch lost come back as they were; a load re-plan
# around the restart would move sub-streams by itself.
FAULTS_CTL_OPTS="--replan-threshold 1"
faults_run switch-restart
CHECK_RUN_OPTS=--faults
faults_finish
