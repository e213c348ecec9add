#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: installs what is needed, builds ringflow and runs it on this machine.
# Today that is the front of the pipeline: ringflow-gen writes sample events
# (1% of them invalid) into ringflow-ingest, which validates them into the
# ring ingest->process of the instance "demo"; until the process stage exists
# ringdemo drains that ring in its place. ringstat shows it live until Ctrl-C.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
instance=${RINGFLOW_INSTANCE:-demo}
rate=${RINGFLOW_RATE:-20000}
builddir="$top/build"

"$top/tools/setup.sh"
cd "$top"
[ -x configure ] || autoreconf -fi
mkdir -p "$builddir"
cd "$builddir"
[ -f Makefile ] || "$top/configure" >configure.out || { cat configure.out; exit 1; }
make -j"$(nproc)" >/dev/null

pids=()
stop() {
        for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
}
trap stop EXIT INT TERM

# ingest logs each rejected line (at most 10 per 10 s): into a file, not over ringstat.
log="$builddir/run-ingest.log"
tools/ringflow-gen --rate "$rate" --now --invalid-ratio 0.01 |
        stages/ingest/ringflow-ingest --instance "$instance" --create 2>"$log" &
pids+=($!)
# ingest creates the instance and its ring: poll for it (at most 10 s).
for _ in $(seq 200); do
        [ -e "/dev/shm/ringflow/$instance/ingest-process.ring" ] && break
        kill -0 "${pids[0]}" 2>/dev/null || { echo "run: ringflow-ingest exited:" >&2; cat "$log" >&2; exit 1; }
        sleep 0.05
done
tools/ringdemo --instance "$instance" --drain ingest-process &
pids+=($!)
echo "run: instance \"$instance\": $rate events/s through ringflow-ingest (its log: $log);"
echo "run: ringstat below, ringstat -s for every counter (Ctrl-C stops)."
tools/ringstat --instance "$instance" -w 1
