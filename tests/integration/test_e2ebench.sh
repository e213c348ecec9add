#!/bin/sh
# SPDX-License-Identifier: MIT
# test_e2ebench.sh: tools/e2ebench runs the real pipeline, counts every committed row and reports a latency for each, fails loudly when ringflowd does, and leaves nothing behind.
#
# Run by `make check` with small counts (a few seconds); the figures
# themselves are not judged here (the machine is shared), only that the
# tool measured what it says. Exits 0 when every check passes, 1 on the
# first that fails, 77 when run outside `make check`.
set -u

if [ -z "${RINGFLOW_BUILDDIR:-}" ]; then
        echo "SKIP: run by make check (RINGFLOW_BUILDDIR unset)"
        exit 77
fi
B=$RINGFLOW_BUILDDIR
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rf-e2ebench.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
checks=0

fail() {
        echo "FAIL: $*" >&2
        echo "--- e2ebench stderr:" >&2
        cat "$tmp/err" >&2 2>/dev/null
        exit 1
}
ok() {
        checks=$((checks + 1))
        echo "ok $checks - $*"
}
# The instance and data directory the last run named on stderr are removed.
gone() {
        inst=$(sed -n 's/.*instance \(e2ebench-[0-9]*\), data \([^,]*\),.*/\1/p' "$tmp/err" | head -n 1)
        data=$(sed -n 's/.*instance \(e2ebench-[0-9]*\), data \([^,]*\),.*/\2/p' "$tmp/err" | head -n 1)
        [ -n "$inst" ] && [ -n "$data" ] || fail "no instance and data directory named on stderr"
        [ ! -e "/dev/shm/ringflow/$inst" ] || fail "instance $inst left behind"
        [ ! -e "$data" ] || fail "data directory $data left behind"
}
# The number after "key": in the JSON of $tmp/out (the first one).
num() {
        sed -n "s/.*\"$1\":\([0-9][0-9]*\).*/\1/p" "$tmp/out" | head -n 1
}

# Unpaced, one window, rows in batches of at most 1000 (a ringflowd setting after --).
"$B/tools/e2ebench" --count 20000 --runs 1 --json -- --store-batch 1000 >"$tmp/out" 2>"$tmp/err" ||
        fail "unpaced run exited $?"
grep -q '"events":20000,' "$tmp/out" || fail "no \"events\":20000 in $(cat "$tmp/out")"
[ "$(num stored)" = 20000 ] || fail "stored $(num stored), expected 20000"
grep -q '"latency_commit_ns":{"count":20000,' "$tmp/out" || fail "latency count is not 20000: $(cat "$tmp/out")"
[ "$(num events_per_s)" -gt 0 ] || fail "events_per_s $(num events_per_s)"
[ "$(num commits)" -ge 20 ] || fail "$(num commits) commits of at most 1000 rows for 20000 events"
grep -q '"cpu_s":{"ingest":[0-9]' "$tmp/out" || fail "no CPU time for ingest: $(cat "$tmp/out")"
grep -q 'events/s end to end' "$tmp/err" || fail "no human line on stderr"
gone
ok "unpaced: 20000 rows committed, 20000 latencies, settings after -- reach ringflowd"

# Paced, durability full, no window: the writer keeps a schedule, no window results.
"$B/tools/e2ebench" --count 10000 --rate 20000 --durability full --windows 0 --runs 1 --json \
        >"$tmp/out" 2>"$tmp/err" || fail "paced run exited $?"
[ "$(num stored)" = 10000 ] || fail "stored $(num stored), expected 10000"
[ "$(num window_results)" = 0 ] || fail "window results $(num window_results) without a window"
grep -q '"rate":20000,"durability":"full","windows":0' "$tmp/out" || fail "settings not echoed: $(cat "$tmp/out")"
secs=$(sed -n 's/.*"seconds":\([0-9.]*\),.*/\1/p' "$tmp/out" | head -n 1)
awk "BEGIN { exit !(${secs:-0} >= 0.45) }" || fail "10000 events at 20000/s took $secs s"
gone
ok "paced at 20000/s with durability full: 10000 rows, no window results, at least 0.45 s"

# A ringflowd that fails: exit 1, the reason in the JSON.
"$B/tools/e2ebench" --count 1000 --runs 1 --json -- --no-such-setting 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "exit $rc when ringflowd refuses its settings, expected 1"
grep -q '"error":"ringflowd exited with status 100 before its stages were up"' "$tmp/out" ||
        fail "no error in $(cat "$tmp/out")"
gone
ok "a ringflowd that exits 100 fails the run (exit 1) and says why"

# Bad usage: exit 100.
"$B/tools/e2ebench" --windows 2 >/dev/null 2>"$tmp/err"
rc=$?
[ $rc = 100 ] || fail "exit $rc for --windows 2, expected 100"
ok "bad usage exits 100"

echo "1..$checks"
exit 0
