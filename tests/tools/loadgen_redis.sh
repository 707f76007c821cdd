#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# loadgen over RESP against a real redis-server (Debian package redis-server): one server is
# trivially linearizable, so the recorded history must check clean, with DEL in the mix.
. "$(dirname "$0")/lib.sh"

command -v redis-server >/dev/null || skip "redis-server not installed (apt-get install redis-server)"
port=$(( $(pick_base 1) + 1 ))
bg "$work/redis.log" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work"
wait_port "$port"

step "closed loop, pipelined, with history"
"$LOADGEN" --protocol resp --targets "127.0.0.1:$port" --threads 2 --connections 16 --depth 8 --keys 200 \
    --read-ratio 0.5 --delete-ratio 0.2 --duration 1 --history "$work/h.jsonl" \
    --json "$work/j.json" --plot "$work/p.svg"
expect_ge "ops" "$(json_num "$work/j.json" ops)" 1000
expect_eq "errors" "$(json_num "$work/j.json" errors)" 0
expect_eq "indeterminate writes" "$(json_num "$work/j.json" indeterminate_writes)" 0
expect_unique_writes "$work/h.jsonl"
grep -q '"op":"delete"' "$work/h.jsonl" || fail "no DEL recorded"
expect_lincheck "$work/h.jsonl" 0 "linearizable"
grep -q '</svg>' "$work/p.svg" || fail "plot not written"

step "values written without --history are plain filler and read back intact"
"$LOADGEN" --protocol resp --targets "127.0.0.1:$port" --connections 4 --depth 4 --keys 50 \
    --value-size 300 --duration 0.5 --json "$work/j2.json" --quiet
expect_eq "errors" "$(json_num "$work/j2.json" errors)" 0
echo "PASS"
