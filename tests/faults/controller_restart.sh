#!/bin/sh
# Controller restart under a running multipath run on the emulated 4-Pi
# diamond (real OVS, fail_mode secure): the controller is killed with
# SIGKILL mid-epoch (in the second epoch, so that it holds checkpoints of
# the first boundary) and started again 2 s later with the same arguments.
# Checks (tests/lib/faults.py controller-restart): every sub-stream flow
# stays while it is down and keeps counting bytes (no data-plane gap); the
# restarted controller adopts the run (same run id, same placement) from
# the agents' Hello and reads the switches' flows instead of clearing
# them: no flow is removed or re-added (OVS durations go on); every stage
# advanced across the outage; the restarted controller holds the
# checkpoints it held before, read back from --checkpoint-dir before any
# new epoch boundary. Then (check_run.py) the run completes,
# every head beats chance and every chunk was delivered exactly once.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/faults.sh
faults_setup controller_restart
# Paths stay as planned (no re-plan for measured link load): the check is
# that the restart itself changes no flow. A load re-plan before the kill
# (or just after the adoption) moves sub-streams on its own, and the
# adopted run is routed from the plan without the measured load (its own
# streams' load cannot be told from other traffic), so either one would
# show up here as re-added flows that the restart did not cause.
FAULTS_CTL_OPTS="--replan-threshold 1"
# Time after the kill: the adoption waits for the switches, which took
# 7 s on a loaded machine (the agents went on 107 steps meanwhile). The
# checkpoint check needs the adoption before the next epoch boundary (the
# kill comes early in epoch 1: at least 200 steps before it), and the
# flow checks after the adoption need the run still streaming (epoch 2).
FAULTS_STEPS=240
FAULTS_EPOCHS=3
faults_run controller-restart --outage 2 --min-epoch 1 --min-step 5 \
    --max-step $((FAULTS_STEPS / 6))
faults_finish
