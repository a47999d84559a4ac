#!/bin/sh
# Installs the Debian packages edgetrain needs to build and test.
#
#   scripts/deps.sh check     exit 0 when everything is installed
#   scripts/deps.sh install   install what is missing (apt-get as root;
#                             otherwise print the exact command to run)
#
# Works on Debian 12 and Raspberry Pi OS bookworm (arm64).
set -eu

# Build and run-time libraries.
PKGS="build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev
libevent-dev libopenblas-dev libcmocka-dev libcjson-dev zlib1g-dev libpng-dev
libssl-dev openvswitch-switch openvswitch-source autoconf automake libtool
ethtool iputils-ping xxd
python3 dataset-fashion-mnist iproute2 gnuplot-nox"

# Test-only extras: clang/libFuzzer and sanitizers, iperf3 as the streaming
# peer, Mininet for the emulation tests, Chromium (headless) for the
# dashboard test.
if [ "${EDGETRAIN_MINIMAL:-0}" != 1 ]; then
    PKGS="$PKGS clang libclang-rt-14-dev iperf3 mininet chromium"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

case "${1:-check}" in
check)
    if [ -n "$missing" ]; then
        echo "deps: missing Debian packages:$missing" >&2
        exit 1
    fi
    exit 0 ;;
install)
    [ -z "$missing" ] && exit 0
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing Debian packages:$missing" >&2
        echo "deps: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
        exit 1
    fi
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || apt-get update
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing ;;
*)
    echo "usage: $0 check|install" >&2
    exit 2 ;;
esac
