#!/bin/sh
# Builds the static libopenvswitch from Debian's openvswitch-source tarball.
#
#   scripts/build-ovs.sh OUTDIR
#
# Debian ships no libopenvswitch-dev, only the source. We configure it once
# into OUTDIR, build lib/libopenvswitch.la and the built headers the public
# ones include, and leave a stamp so later builds reuse it. The controller
# then compiles with -I OUTDIR/src/{include,lib} and links
# OUTDIR/src/lib/.libs/libopenvswitch.a.
set -eu
out=${1:?usage: build-ovs.sh OUTDIR}
mkdir -p "$out" && out=$(cd "$out" && pwd)
tarball=$(ls /usr/src/openvswitch/openvswitch.tar.* 2>/dev/null | head -n 1)
if [ -z "$tarball" ]; then
    echo "build-ovs: /usr/src/openvswitch/openvswitch.tar.* not found;" \
         "install the openvswitch-source package" >&2
    exit 1
fi
stamp=$out/.built
if [ -f "$stamp" ] && [ "$stamp" -nt "$tarball" ]; then
    exit 0
fi
rm -rf "$out"
mkdir -p "$out/src"
echo "build-ovs: unpacking $tarball"
tar -xf "$tarball" -C "$out/src" --strip-components=1
cd "$out/src"
[ -x configure ] || ./boot.sh >/dev/null
echo "build-ovs: configuring (log: $out/configure.log)"
# Python and DPDK are not needed for the library; OpenSSL gives ssl: vconns.
./configure --enable-static --disable-shared --with-pic \
    --disable-libcapng CFLAGS="-O2 -g" >"$out/configure.log" 2>&1 || {
    tail -n 30 "$out/configure.log" >&2; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
# Run as its own make, not a child of ours (no jobserver to share).
unset MAKEFLAGS MFLAGS MAKELEVEL
echo "build-ovs: building lib/libopenvswitch.la (log: $out/make.log)"
# `make lib/libopenvswitch.la` alone skips automake's BUILT_SOURCES; generate
# the ones the library and its public headers need first.
built=$(printf 'et-print-built:\n\t@echo $(BUILT_SOURCES)\n' |
        make -s -f Makefile -f - et-print-built | tr ' ' '\n' |
        grep -E '^(include|lib)/' | grep -v ovsidl || true)
# shellcheck disable=SC2086
{ make -j"$jobs" $built && make -j"$jobs" lib/libopenvswitch.la; } >"$out/make.log" 2>&1 || {
    tail -n 30 "$out/make.log" >&2; exit 1; }
# Libraries configure decided the static archive needs at link time.
{ sed -n "s/^SSL_LIBS = //p" Makefile; sed -n "s/^LIBS = //p" Makefile; } | tr "\n" " " >"$out/libs.txt"
touch "$stamp"
echo "build-ovs: done ($(cat "$out/libs.txt"))"
