#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The standard workloads of docs/BENCHMARKS.md, each one command, next to the raw disk and
# loopback limits of this machine measured in the same run.
#   tools/bench-workloads.sh [builddir] [seconds per workload] [W1,W2,...]
# Prints one table; also writes it (markdown) to $OUT (default: build/bench-workloads.md).
set -euo pipefail
build=${1:-build}
secs=${2:-10}
only=${3:-RAW,W1,W2,W3,W4}
cd "$(dirname "$0")/.."
kv="$build/tools/yggr-kv"
lg="$build/tools/loadgen"
out=${OUT:-$build/bench-workloads.md}
for b in "$kv" "$lg" "$build/tools/bench-storage" "$build/tools/bench-transport"; do
    [ -x "$b" ] || { echo "bench-workloads: $b is not built (meson compile -C $build)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/yggr-bench-XXXXXX")
base=$((17000 + RANDOM % 8000))
cluster() {
    local cmd=$1
    shift
    tools/yggr-cluster "$cmd" --dir "$work/c" --base-port "$base" --bin "$kv" "$@"
}
cleanup() {
    cluster stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
rows=()
num() { sed -n "s/^  \"$2\": \\([0-9.]*\\),*\$/\\1/p" "$1" | cut -d. -f1; }
want() { [[ ",$only," == *",$1,"* ]]; }
row() { rows+=("$(printf '| %-4s | %-52s | %12s | %9s | %9s | %6s |' "$@")"); }

raw_limits() {
    echo "== raw limits of this machine (same run)"
    # One synchronous 4 KiB write at a time (O_DSYNC): the floor of a durable commit.
    local n=2000 t0 t1 us
    # Overwrite an allocated, synced file (as yggr writes into pre-zeroed segments).
    dd if=/dev/zero of="$work/dd" bs=4096 count=$n conv=fsync 2>/dev/null
    t0=$(date +%s%N)
    dd if=/dev/zero of="$work/dd" bs=4096 count=$n oflag=dsync conv=notrunc 2>/dev/null
    t1=$(date +%s%N)
    us=$(( (t1 - t0) / 1000 / n ))
    echo "disk: $n O_DSYNC 4 KiB writes, ${us} us each"
    row RAW "disk: one O_DSYNC 4 KiB overwrite at a time (dd)" "$((1000000 / (us > 0 ? us : 1)))" \
        "$us" - -
    "$build/tools/bench-transport" --seconds 2 | tee "$work/net.txt" | grep -iE "baseline|ratio" || true
    local msgs
    msgs=$(grep -m1 -E "blocking baseline +[0-9]+ msgs/s" "$work/net.txt" | awk '{print $3}')
    row RAW "loopback: blocking TCP, 64-entry x 64 B messages" "$((${msgs:-0} * 64))" - - -
}

rss_rows=()
# Resident memory of each yggr-kv process right after a workload (MiB).
record_rss() { # id
    local pid f rss list=""
    for f in "$work"/c/n*.pid; do
        [ -f "$f" ] || continue
        pid=$(cut -d' ' -f1 "$f")
        rss=$(awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status" 2>/dev/null || echo "?")
        list+="${list:+, }$(basename "$f" .pid) ${rss} MiB"
    done
    rss_rows+=("$1: $list")
}

run_load() { # id label loadgen-args...
    local id=$1 label=$2
    shift 2
    echo "== $id: $label"
    "$lg" --targets "$targets" --duration "$secs" --warmup 1 --json "$work/$id.json" "$@"
    row "$id" "$label" "$(num "$work/$id.json" ops_per_sec)" "$(num "$work/$id.json" p50_us)" \
        "$(num "$work/$id.json" p99_us)" "$(num "$work/$id.json" errors)"
    record_rss "$id"
}

start_cluster() { # nodes
    cluster stop >/dev/null 2>&1 || true
    rm -rf "$work/c"
    cluster start "$1" -- --tick-ms 10 >/dev/null
    cluster status --wait-leader 20 >/dev/null
    targets=""
    for ((i = 1; i <= $1; i++)); do targets+="${targets:+,}127.0.0.1:$((base + 100 + i))"; done
}

want RAW && raw_limits
if want W1 || want W2 || want W3; then
    start_cluster 3
    want W1 && run_load W1 "3 nodes, 64 B writes, 64 conns x depth 16" \
        --connections 64 --depth 16 --value-size 64 --read-ratio 0 --keys 100000 --quiet
    want W2 && run_load W2 "3 nodes, 64 B writes, 1 conn x depth 1 (latency)" \
        --connections 1 --depth 1 --value-size 64 --read-ratio 0 --quiet
    want W3 && run_load W3 "3 nodes, 1 KiB writes, 64 conns x depth 16" \
        --connections 64 --depth 16 --value-size 1024 --read-ratio 0 --keys 100000 --quiet
fi
if want W4; then
    start_cluster 1
    run_load W4 "1 node, 64 B writes, 64 conns x depth 16" \
        --connections 64 --depth 16 --value-size 64 --read-ratio 0 --keys 100000 --quiet
fi
cluster stop >/dev/null 2>&1 || true
{
    echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cpus, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "RAW rows: disk = writes/s and latency of single synchronous 4 KiB writes; loopback ="
    echo "64-byte entries/s moved by a plain blocking send/recv loop."
    echo
    printf '| %-4s | %-52s | %12s | %9s | %9s | %6s |\n' id workload "ops/s" "p50 us" "p99 us" errors
    echo "|------|------------------------------------------------------|--------------|-----------|-----------|--------|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Resident memory (VmRSS) of each yggr-kv process after each workload (log cache:"
    echo "65536 entries; the key-value map itself holds up to 100,000 keys):"
    echo
    for r in "${rss_rows[@]}"; do echo "- $r"; done
} | tee "$out"
echo "bench-workloads: table written to $out"
