#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the default test suite of a meson build dir and print what Criterion ran.
#   tools/run-tests.sh [builddir] [extra meson test args...]
set -uo pipefail
build=${1:-build}
shift || true
cd "$(dirname "$0")/.."
start=$(date +%s)
meson test -C "$build" --print-errorlogs "$@"
rc=$?
log="$build/meson-logs/testlog.txt"
if [ -f "$log" ]; then
    echo
    echo "== Criterion synthesis per suite =="
    grep -E '^\[====\] Synthesis' "$log" | sed 's/^/  /'
    awk '/^\[====\] Synthesis/ {
            for (i = 1; i <= NF; i++) {
                if ($i == "Tested:") t += $(i+1); if ($i == "Passing:") p += $(i+1);
                if ($i == "Failing:") f += $(i+1); if ($i == "Crashing:") c += $(i+1);
            } }
         END { printf "== Criterion total: %d tests, %d passing, %d failing, %d crashing ==\n", t, p, f, c }' "$log"
fi
echo "== test run took $(( $(date +%s) - start ))s, exit code $rc =="
exit $rc
