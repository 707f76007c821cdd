#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# loadgen + lincheck end to end against kv-stub's fake cluster (one process, shared map):
# leader rotation with connections cut, indeterminate and dropped writes; both protocols;
# planted bugs (lost writes, stale reads) must be caught; open loop; --requests; errors.
. "$(dirname "$0")/lib.sh"

base=$(pick_base 3)
targets="127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2)),127.0.0.1:$((base + 3))"
start_stub() { # extra kv-stub flags...
    bg "$work/stub.log" "$KV_STUB" --cluster "$targets" "$@"
    stub_pid=$last_pid
    wait_port $((base + 3))
}
stop_stub() { kill "$stub_pid"; wait "$stub_pid" 2>/dev/null || true; }

step "line protocol, leader changes every 400 ms, connections cut, faults"
start_stub --leader 2 --leader-change-ms 400 --close-on-change --fault-unknown 0.02 \
    --fault-drop 0.002 --seed 3
"$LOADGEN" --targets "$targets" --connections 8 --depth 4 --keys 50 --duration 2 \
    --history "$work/h1.jsonl" --json "$work/j1.json" --plot "$work/p1.svg"
stop_stub
expect_ge "ops" "$(json_num "$work/j1.json" ops)" 1000
expect_ge "redirects" "$(json_num "$work/j1.json" redirects)" 1
expect_ge "indeterminate writes" "$(json_num "$work/j1.json" indeterminate_writes)" 1
expect_ge "leader changes" "$(json_num "$work/j1.json" leader_changes)" 2
for k in ops_per_sec p50_us p99_us p999_us errors; do json_num "$work/j1.json" $k >/dev/null; done
grep -q '"result":"unknown"' "$work/h1.jsonl" || fail "no indeterminate write recorded"
expect_unique_writes "$work/h1.jsonl"
expect_lincheck "$work/h1.jsonl" 0 "linearizable"
grep -q '^<svg' "$work/p1.svg" && grep -q '</svg>' "$work/p1.svg" && grep -q 'class=.leader.' "$work/p1.svg" ||
    fail "plot is not a complete SVG with leader-change marks"
echo "ok: SVG plot with leader changes marked"

step "RESP, same faults"
start_stub --leader 1 --leader-change-ms 300 --fault-unknown 0.02 --seed 4
"$LOADGEN" --protocol resp --targets "$targets" --connections 4 --depth 8 --keys 20 \
    --delete-ratio 0.1 --duration 1 --history "$work/h2.jsonl" --json "$work/j2.json" --quiet
stop_stub
expect_ge "ops" "$(json_num "$work/j2.json" ops)" 1000
expect_ge "redirects" "$(json_num "$work/j2.json" redirects)" 1
expect_lincheck "$work/h2.jsonl" 0 "linearizable"

step "planted bug: acknowledged writes dropped"
start_stub --fault-lose 0.01 --seed 5
"$LOADGEN" --targets "$targets" --connections 4 --depth 4 --keys 20 --requests 20000 \
    --history "$work/h3.jsonl" --quiet >/dev/null
stop_stub
expect_lincheck "$work/h3.jsonl" 1 "lost write|stale read"

step "planted bug: reads served from a 50 ms old copy"
start_stub --fault-stale 0.05 --seed 6
"$LOADGEN" --targets "$targets" --connections 4 --depth 4 --keys 20 --requests 20000 \
    --history "$work/h4.jsonl" --quiet >/dev/null
stop_stub
expect_lincheck "$work/h4.jsonl" 1 "stale read|lost write|duplicate apply"

step "open loop at 2000 requests/s, and --requests"
start_stub
"$LOADGEN" --targets "$targets" --rate 2000 --connections 4 --duration 1.5 --json "$work/j5.json" --quiet
rate=$(json_num "$work/j5.json" ops_per_sec)
[ "$rate" -ge 1700 ] && [ "$rate" -le 2300 ] || fail "open loop ran at $rate ops/s, wanted ~2000"
echo "ok: open loop ran at $rate ops/s"
"$LOADGEN" --targets "$targets" --requests 5000 --connections 4 --depth 8 --json "$work/j6.json" --quiet
expect_eq "ops with --requests 5000" "$(json_num "$work/j6.json" ops)" 5000
stop_stub

step "a redirect loop: each request gives up after 8 redirects, nothing is left unknown"
# Two stub nodes that each think "node 1" (the other one's peer port) is the leader.
a=$(( $(pick_base 4) + 1 ))
bg "$work/a.log" "$KV_STUB" --node-id 2 --client-addr "127.0.0.1:$a" --peer-addr "127.0.0.1:$((a + 1))" \
    --data-dir "$work/a" --peer "1=127.0.0.1:$((a + 3))"
bg "$work/b.log" "$KV_STUB" --node-id 3 --client-addr "127.0.0.1:$((a + 2))" --peer-addr "127.0.0.1:$((a + 3))" \
    --data-dir "$work/b" --peer "1=127.0.0.1:$((a + 1))"
wait_port $((a + 2))
sleep 0.5 # let both see "node 1" answer pings
"$LOADGEN" --targets "127.0.0.1:$a" --node-map "1=127.0.0.1:$((a + 2)),2=127.0.0.1:$a" \
    --read-ratio 0 --connections 2 --duration 1 --history "$work/h7.jsonl" --json "$work/j7.json" --quiet
grep -q '"too_many_redirects": [1-9]' "$work/j7.json" || fail "no request gave up: $(cat "$work/j7.json")"
echo "ok: requests gave up after 8 redirects"
expect_eq "ops" "$(json_num "$work/j7.json" ops)" 0
! grep -q '"result":"unknown"' "$work/h7.jsonl" || fail "a redirected write was recorded as unknown"
expect_unique_writes "$work/h7.jsonl"

step "usage and unreachable targets"
"$LOADGEN" --help | grep -q -- '--history' || fail "--help does not document --history"
rc=0; "$LOADGEN" --targets 127.0.0.1:1 --bogus 2>/dev/null || rc=$?
expect_eq "exit status for an unknown flag" "$rc" 2
rc=0
"$LOADGEN" --targets "127.0.0.1:$((base + 1))" --duration 0.5 --quiet >/dev/null 2>"$work/err" || rc=$?
expect_eq "exit status when no target answers" "$rc" 1
grep -q "check --targets" "$work/err" || fail "no hint to check --targets: $(cat "$work/err")"
rc=0; "$LINCHECK" "$work/missing.jsonl" 2>/dev/null || rc=$?
expect_eq "lincheck exit status for a missing file" "$rc" 2
echo '{"op":"write"' >"$work/bad.jsonl"
rc=0; "$LINCHECK" "$work/bad.jsonl" 2>"$work/err" || rc=$?
expect_eq "lincheck exit status for a malformed line" "$rc" 2
grep -q "bad.jsonl:1:" "$work/err" || fail "lincheck does not name the bad line"
echo "PASS"
