#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: run the most complete real thing this build has, and say what it ran.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
if [ -x "$build/tools/yggr-kv" ] && [ -x "$build/tools/loadgen" ] && [ -x tools/cluster-demo.sh ]; then
    exec tools/cluster-demo.sh "$build"
fi
if [ -x "$build/tools/yggr-sim" ]; then
    echo "demo: the cluster tools are not built yet; running the deterministic simulator:"
    echo "demo: $build/tools/yggr-sim --seeds 200 --steps 3000 --nodes 5"
    exec "$build/tools/yggr-sim" --seeds 200 --steps 3000 --nodes 5
fi
echo "demo: nothing runnable is built yet (no yggr-kv, no yggr-sim)" >&2
exit 1
