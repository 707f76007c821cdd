#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Chaos tests (docs/chaos.md): check the prerequisites, then run tests/chaos/chaos.py in a
# private network namespace (unshare -n) where node i owns 127.0.0.i and nftables can cut
# links without touching the host. Arguments go to chaos.py (--scenario NAME, --seconds S,
# --seed N, --results FILE, ...). Binaries come from the environment (meson sets them):
# YGGR_KV, LOADGEN, LINCHECK, CHAOS_LOGDUMP; YGGR_IO_TESTS=0 skips. Exit 77 = skipped.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }

[ "${YGGR_IO_TESTS:-1}" = 1 ] || skip "socket tests disabled at build time (-Dio_tests=disabled)"
[ "$(id -u)" = 0 ] || skip "needs root (network namespace and nftables); run as root"
for tool in unshare nft ip setpriv python3; do
    command -v "$tool" >/dev/null 2>&1 ||
        skip "'$tool' not found (tools/deps.sh installs iproute2 nftables util-linux python3)"
done
unshare -n true 2>/dev/null || skip "cannot create a network namespace (unshare -n failed)"
unshare -n nft list ruleset >/dev/null 2>&1 || skip "nft does not work inside a network namespace"

# Opt-in long mode: every scenario, 5 minutes of faults each, figures in a summary.
if [ "${1:-}" = "--long" ]; then
    shift
    out=${CHAOS_RESULTS:-$PWD/chaos-long-results.jsonl}
    : >"$out"
    rc=0
    unshare -n -- python3 "$here/chaos.py" --scenario all --seconds "${CHAOS_LONG_SECONDS:-300}" \
        --rate "${CHAOS_RATE:-4000}" --hostile-rounds 4 --results "$out" "$@" || rc=$?
    python3 "$here/summary.py" "$out" || true
    exit $rc
fi
exec unshare -n -- python3 "$here/chaos.py" "$@"
