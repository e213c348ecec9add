#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: installs what is needed, builds ringflow and runs it on this machine.
# Today that is the ring layer: ringdemo feeds the ring gen->sink of the
# instance "demo" and ringstat shows it live, until Ctrl-C.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
instance=${RINGFLOW_INSTANCE:-demo}
builddir="$top/build"

"$top/tools/setup.sh"
cd "$top"
[ -x configure ] || autoreconf -fi
mkdir -p "$builddir"
cd "$builddir"
[ -f Makefile ] || "$top/configure" >configure.out || { cat configure.out; exit 1; }
make -j"$(nproc)" >/dev/null

tools/ringdemo --instance "$instance" --rate 200000 --consumer-rate 150000 --remove &
demo=$!
trap 'kill -TERM "$demo" 2>/dev/null; wait "$demo" 2>/dev/null' EXIT INT TERM
# ringdemo creates the instance: poll for its ring (at most 10 s).
for _ in $(seq 200); do
        [ -e "/dev/shm/ringflow/$instance/gen-sink.ring" ] && break
        kill -0 "$demo" 2>/dev/null || { echo "run: ringdemo exited" >&2; exit 1; }
        sleep 0.05
done
echo "run: instance \"$instance\" is up; ringstat below (Ctrl-C stops)."
tools/ringstat --instance "$instance" -w 1
