#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# yggr-cluster for real, with kv-stub as the yggr-kv binary (it takes the reference kv flags
# and answers INFO over RESP): start, status, kill, restart, pause, resume, stop; loadgen
# follows the leader through a kill; a recorded PID that was recycled is never signalled.
. "$(dirname "$0")/lib.sh"

[ -x "${YGGR_CLUSTER:-}" ] || fail "YGGR_CLUSTER is not set to an executable"
base=$(pick_base 103)
dir="$work/cluster"
yc() { "$YGGR_CLUSTER" "$@" --dir "$dir"; }
status_of() { # node -> its status row
    yc status | awk -v n="$1" '$1 == n'
}
wait_leader_is() { # id
    local t
    for ((t = 0; t < 50; t++)); do
        yc status | grep -q "^leader: node $1 " && return 0
        sleep 0.1
    done
    yc status
    fail "node $1 did not become leader"
}

step "start 3 nodes"
"$YGGR_CLUSTER" start 3 --dir "$dir" --base-port "$base" --bin "$KV_STUB"
for i in 1 2 3; do
    [ -d "$dir/n$i" ] && [ -f "$dir/n$i.log" ] && [ -f "$dir/n$i.pid" ] || fail "node $i files missing"
    grep -q -- "--client-addr 127.0.0.1:$((base + 100 + i))" "$dir/n$i.log" ||
        fail "node $i was not given its client address"
    grep -q -- "--peer-addr 127.0.0.1:$((base + i))" "$dir/n$i.log" || fail "node $i peer address"
done
yc status --wait-leader 10
wait_leader_is 1
status_of 2 | grep -q "running.*follower" || fail "node 2 is not a running follower"

step "loadgen starts at a follower, is redirected, and follows the leader through a kill"
targets="127.0.0.1:$((base + 102)),127.0.0.1:$((base + 101)),127.0.0.1:$((base + 103))"
bg "$work/lg.out" "$LOADGEN" --targets "$targets" --node-map \
    "1=127.0.0.1:$((base + 101)),2=127.0.0.1:$((base + 102)),3=127.0.0.1:$((base + 103))" \
    --read-ratio 0 --connections 4 --depth 2 --duration 3 --timeout-ms 500 --json "$work/lg.json"
lg_pid=$last_pid
sleep 1
yc kill 1
status_of 1 | grep -q "down" || fail "killed node 1 is not reported down"
wait_leader_is 2
wait "$lg_pid" || fail "loadgen failed: $(cat "$work/lg.out")"
cat "$work/lg.out"
expect_ge "redirects" "$(json_num "$work/lg.json" redirects)" 1
expect_ge "leader changes" "$(json_num "$work/lg.json" leader_changes)" 1
tail -n 2 "$work/lg.out" | grep -q "leader now node 2" || fail "loadgen did not end on node 2"

step "restart, pause, resume"
yc restart 1
wait_leader_is 1
yc pause 2
status_of 2 | grep -q "paused" || fail "node 2 not reported paused"
wait_leader_is 1
grep -q "^State:.*stopped" "/proc/$(cut -d' ' -f1 "$dir/n2.pid")/status" || fail "node 2 not stopped"
yc resume 2
status_of 2 | grep -q "running" || fail "node 2 not running after resume"

step "stop"
pids=$(cut -d' ' -f1 "$dir"/n*.pid)
yc stop
for p in $pids; do
    [ ! -e "/proc/$p" ] || grep -q '^State:.*zombie' "/proc/$p/status" || fail "pid $p survived stop"
done
yc status | grep -q "^leader: none" || fail "a stopped cluster still reports a leader"

step "a recycled PID is never signalled"
sleep 60 &
victim=$!
started_pids+=("$victim")
echo "$victim 12345" >"$dir/n1.pid" # right PID, wrong start time: not ours
rc=0; yc kill 1 2>"$work/err" || rc=$?
[ "$rc" -ne 0 ] || fail "kill of a foreign process succeeded"
grep -q "another process" "$work/err" || fail "no explanation: $(cat "$work/err")"
yc stop >/dev/null 2>&1 || true
kill -0 "$victim" || fail "yggr-cluster killed a process it did not start"
echo "ok: pid $victim (not ours) survived kill and stop"

step "usage errors"
rc=0; "$YGGR_CLUSTER" frobnicate 2>/dev/null || rc=$?
expect_eq "exit status for an unknown command" "$rc" 2
rc=0; yc kill 9 2>/dev/null || rc=$?
expect_eq "exit status for a node id out of range" "$rc" 2
echo "PASS"
