#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh: installs what is needed, builds ringflow and runs the whole test suite.
#   tools/test.sh            optimised build in ./build, then `make check`
#   tools/test.sh --asan     the same in ./build-asan with ASan and UBSan
#   tools/test.sh --werror   warnings are errors (CI uses it)
# Ends with one line: "check: N passed, N failed, N skipped", counting every
# Criterion test and every other test program.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir="$top/build"
flags=()
for arg in "$@"; do
        case "$arg" in
        --asan) builddir="$top/build-asan"; flags+=(--enable-asan) ;;
        --werror) flags+=(--enable-werror) ;;
        *) echo "usage: tools/test.sh [--asan] [--werror]" >&2; exit 100 ;;
        esac
done

"$top/tools/setup.sh"
cd "$top"
[ -x configure ] || autoreconf -fi
mkdir -p "$builddir"
cd "$builddir"
# Reconfigure when the flags differ from the last run in this directory.
stamp="configure-flags"
if [ ! -f Makefile ] || [ "$(cat "$stamp" 2>/dev/null)" != "${flags[*]:-}" ]; then
        "$top/configure" "${flags[@]}" >configure.out || { cat configure.out; exit 1; }
        echo "${flags[*]:-}" >"$stamp"
fi
jobs=$(nproc)
make -j"$jobs" >/dev/null

status=0
make -j"$jobs" check || status=$?

# Criterion prints "Synthesis: Tested: N | Passing: N | Failing: N | Crashing: N"
# in each program's log; programs without it count as one test each.
summary=$(find tests -name '*.log' ! -name test-suite.log -print0 2>/dev/null | sort -z |
        xargs -0 -r awk '
        FNR == 1 { if (prev != "") finish(); prev = FILENAME; crit = 0 }
        /Synthesis: Tested:/ {
                crit = 1
                for (i = 1; i <= NF; i++) {
                        if ($i == "Passing:") p += $(i + 1)
                        if ($i == "Failing:") f += $(i + 1)
                        if ($i == "Crashing:") f += $(i + 1)
                }
        }
        function finish(   t, r) {
                if (crit) return
                t = prev; sub(/\.log$/, ".trs", t)
                while ((getline r < t) > 0) {
                        if (r ~ /^:test-result: PASS/) p++
                        else if (r ~ /^:test-result: SKIP/) s++
                        else if (r ~ /^:test-result: /) f++
                }
                close(t)
        }
        END { if (prev != "") finish(); printf "%d passed, %d failed, %d skipped\n", p, f, s }')
if [ "$status" -ne 0 ]; then
        for log in $(grep -l -E '^:test-result: (FAIL|ERROR|XPASS)' tests/*/*.trs 2>/dev/null | sed 's/\.trs$/.log/'); do
                echo "==== $log"; tail -n 60 "$log"
        done
fi
echo "check: ${summary:-0 passed, 1 failed, 0 skipped}"
exit "$status"
