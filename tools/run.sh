#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: installs what is needed, builds ringflow and runs the whole pipeline
# on this machine: ringflow-gen writes sample events (1% of them invalid) into
# ringflowd, which runs ingest, process, store and api with the windows of
# tools/run.conf, SQLite files in build/run-data and the dashboard on
# http://127.0.0.1:8080/. ringstat shows the rings until Ctrl-C.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
instance=${RINGFLOW_INSTANCE:-demo}
rate=${RINGFLOW_RATE:-20000}
listen=${RINGFLOW_LISTEN:-127.0.0.1:8080}
builddir="$top/build"

"$top/tools/setup.sh"
cd "$top"
[ -x configure ] || autoreconf -fi
mkdir -p "$builddir"
cd "$builddir"
[ -f Makefile ] || "$top/configure" >configure.out || { cat configure.out; exit 1; }
make -j"$(nproc)" >/dev/null

data="$builddir/run-data"
log="$builddir/run.log"
pid=""
stop() {
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
        wait 2>/dev/null || true
}
trap stop EXIT INT TERM

# The stages log to stderr (rejected lines: at most 10 per 10 s): into a file, not over ringstat.
tools/ringflow-gen --rate "$rate" --now --invalid-ratio 0.01 |
        stages/supervise/ringflowd --config "$top/tools/run.conf" --instance "$instance" \
                --data-dir "$data" --listen "$listen" --ui-dir "$top/ui" 2>"$log" &
pid=$!
# ringflowd creates the instance and starts the stages: wait for the api (at most 10 s).
for _ in $(seq 200); do
        grep -q "listening on" "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { echo "run: ringflowd exited:" >&2; cat "$log" >&2; exit 1; }
        sleep 0.05
done
cat <<MSG
run: instance "$instance": $rate sample events/s through ringflowd (its log: $log)
run:   dashboard     http://$listen/
run:   API           curl 'http://$listen/api/events?limit=5'   curl http://$listen/api/metrics
run:   SQLite files  $data
run:   every counter tools/ringstat --instance $instance -s   (from $builddir)
run: ringstat below; Ctrl-C stops everything.
MSG
tools/ringstat --instance "$instance" -w 1
