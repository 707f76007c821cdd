#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Helpers for the scripted tool tests (sourced). Binaries come from meson through the
# environment: LOADGEN, LINCHECK, KV_STUB, YGGR_CLUSTER; YGGR_IO_TESTS=0 skips socket tests.
# Exit 77 = skipped (meson convention).
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
step() { echo; echo "--- $*"; }

[ "${YGGR_IO_TESTS:-1}" = 1 ] || skip "socket tests disabled at build time (-Dio_tests=disabled)"
for v in LOADGEN LINCHECK KV_STUB; do
    [ -x "${!v:-}" ] || fail "$v is not set to an executable (run through 'meson test')"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/yggr-tools-test.XXXXXX")
started_pids=()
cleanup() {
    local rc=$? pid f
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        # Show what the servers said: the work dir is deleted below.
        while IFS= read -r f; do
            echo "=== last lines of $f" >&2
            tail -n 20 "$f" >&2
        done < <(find "$work" -name '*.log' 2>/dev/null)
    fi
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Start a background process and remember its PID for cleanup: bg LOG cmd args...
bg() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    started_pids+=($!)
    last_pid=$!
}

port_in_use() { ( exec 3<>"/dev/tcp/127.0.0.1/$1" ) 2>/dev/null; }

# A base port P such that P+1..P+span are free (best effort; tests run in parallel), below
# the ephemeral range: outgoing connections take ephemeral ports, and a server that wants
# one of those later cannot bind it.
pick_base() { # span
    local base i busy low slots
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    slots=$(( (low - 10000 - 300) / 100 ))
    [ "$slots" -ge 10 ] || skip "ephemeral port range starts at $low: no room for test ports below it"
    for _ in $(seq 50); do
        base=$((10000 + (RANDOM % slots) * 100))
        busy=0
        for ((i = 1; i <= $1; i++)); do
            if port_in_use $((base + i)); then busy=1; break; fi
        done
        [ $busy -eq 0 ] && { echo "$base"; return 0; }
    done
    fail "no free port range found"
}

wait_port() { # port [seconds]
    local t
    for ((t = 0; t < ${2:-5} * 20; t++)); do
        port_in_use "$1" && return 0
        sleep 0.05
    done
    fail "nothing listens on 127.0.0.1:$1"
}

# A top-level number from loadgen's --json file.
json_num() { # file key
    local v
    v=$(sed -n "s/^  \"$2\": \\([0-9.]*\\),*\$/\\1/p" "$1")
    [ -n "$v" ] || fail "key $2 missing in $1"
    echo "${v%%.*}"
}

expect_ge() { # what value minimum
    [ "$2" -ge "$3" ] || fail "$1 is $2, expected >= $3"
    echo "ok: $1 = $2 (>= $3)"
}

expect_eq() { # what value wanted
    [ "$2" = "$3" ] || fail "$1 is $2, expected $3"
    echo "ok: $1 = $2"
}

# Run lincheck and require exit status $2 (0 linearizable, 1 violation).
expect_lincheck() { # history status [pattern]
    local rc=0 out
    out=$("$LINCHECK" "$1" 2>&1) || rc=$?
    echo "$out" | cut -c1-400
    [ "$rc" -eq "$2" ] || fail "lincheck exit status $rc, expected $2"
    if [ -n "${3:-}" ]; then
        grep -Eq "$3" <<<"$out" || fail "lincheck output does not match /$3/"
    fi
}

# Every write attempt in a history carries a value no other attempt used.
expect_unique_writes() { # history
    local dups
    dups=$(grep -o '"op":"write","key":"[^"]*","value":"[^"]*"' "$1" | sed 's/.*"value":"//' |
        sort | uniq -d | head -3)
    [ -z "$dups" ] || fail "write values used twice in $1: $dups"
    echo "ok: every write value in $(basename "$1") is unique"
}
