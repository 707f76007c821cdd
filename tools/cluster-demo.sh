#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo`: a local 3-node yggr-kv cluster in a temporary directory, driven by loadgen
# for about 10 s (progress line per second, summary), then the leader is killed and
# writes resume on the new leader; the old leader restarts and catches up; all stopped.
#   tools/cluster-demo.sh [builddir] [seconds]
set -euo pipefail
build=${1:-build}
secs=${2:-10}
cd "$(dirname "$0")/.."
kv="$build/tools/yggr-kv"
lg="$build/tools/loadgen"
dir=$(mktemp -d "${TMPDIR:-/tmp}/yggr-demo-XXXXXX")
base=$((17000 + RANDOM % 8000)) # below the kernel's ephemeral port range
cluster() {
    local cmd=$1
    shift
    tools/yggr-cluster "$cmd" --dir "$dir" --base-port "$base" --bin "$kv" "$@"
}
cleanup() {
    cluster stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
say() { printf '\n== demo: %s\n' "$*"; }
targets="127.0.0.1:$((base + 101)),127.0.0.1:$((base + 102)),127.0.0.1:$((base + 103))"
leader_id() {
    cluster status | sed -nE 's/^leader: node ([0-9]+).*/\1/p'
}

say "starting 3 yggr-kv nodes (durable: data in $dir, 10 ms ticks)"
cluster start 3 -- --tick-ms 10
cluster status --wait-leader 15

say "loadgen: 64 connections x 16 in flight, 64-byte writes, ${secs} s"
"$lg" --targets "$targets" --connections 64 --depth 16 --value-size 64 --read-ratio 0 \
    --keys 100000 --duration "$secs" --warmup 1 --json "$dir/w1.json"

say "single client, one request at a time (latency), 5 s"
"$lg" --targets "$targets" --connections 1 --depth 1 --value-size 64 --read-ratio 0 \
    --duration 5 --quiet --json "$dir/w2.json"

old=$(leader_id)
say "killing the leader (node $old, SIGKILL) and writing on: loadgen follows the new leader"
cluster kill "$old"
"$lg" --targets "$targets" --connections 16 --depth 8 --value-size 64 --read-ratio 0.2 \
    --duration 5 --timeout-ms 1000
cluster status --wait-leader 10
new=$(leader_id)
echo "demo: leadership moved from node $old to node $new"

say "restarting node $old: it recovers from its data directory and catches up"
cluster restart "$old"
sleep 2
cluster status --wait-leader 10

say "summary"
num() { sed -n "s/^  \"$2\": \([0-9.]*\),*\$/\1/p" "$1" | cut -d. -f1; }
printf '%-46s %10s %9s %9s %9s\n' workload "ops/s" "p50 us" "p99 us" errors
for spec in "w1|3 durable nodes, 64 conns x 16, 64 B writes" "w2|single client, depth 1 (latency)"; do
    f="$dir/${spec%%|*}.json"
    [ -f "$f" ] && printf '%-46s %10s %9s %9s %9s\n' "${spec#*|}" "$(num "$f" ops_per_sec)" \
        "$(num "$f" p50_us)" "$(num "$f" p99_us)" "$(num "$f" errors)"
done
say "stopping the cluster"
cluster stop
