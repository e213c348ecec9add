#!/bin/sh
# SPDX-License-Identifier: MIT
# dashboard.sh: runs the dashboard's end-to-end test (dashboard.mjs) under node for `make check`.
# Exit status: dashboard.mjs's (0 pass, 1 fail, 77 skip); 77 when node itself is missing.
here=$(dirname "$0")
if ! command -v node >/dev/null 2>&1; then
        echo "dashboard: SKIP: node is not installed (Debian's nodejs package)"
        exit 77
fi
exec node "$here/dashboard.mjs" "${RINGFLOW_BUILDDIR:-.}"
