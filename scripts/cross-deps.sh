#!/bin/sh
# Installs what `make CROSS=aarch64-linux-gnu- cross-test` needs on Debian 12
# amd64: the cross compiler, qemu-user, and the arm64 multiarch libraries.
set -eu
PKGS="gcc-aarch64-linux-gnu qemu-user libopenblas-dev:arm64 libcmocka-dev:arm64
zlib1g-dev:arm64 libgomp1:arm64"
if [ "$(id -u)" != 0 ]; then
    echo "cross-deps: run as root: dpkg --add-architecture arm64 && apt-get update && apt-get install" $PKGS >&2
    exit 1
fi
dpkg --print-foreign-architectures | grep -qx arm64 || {
    dpkg --add-architecture arm64
    apt-get update
}
DEBIAN_FRONTEND=noninteractive apt-get install -y $PKGS
