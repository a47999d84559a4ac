#!/bin/sh
# `make demo`: the main job. Until the emulated cluster lands this runs what
# exists: the three binaries and the wire benchmark.
set -eu
BUILD=${1:-build}
"$BUILD/bin/edgetrain" --version
"$BUILD/bin/edgetrain-agent" --version
"$BUILD/bin/edgetrain-controller" --version
"$BUILD/bin/edgetrain" bench-wire --size-mb 16 --iters 10
