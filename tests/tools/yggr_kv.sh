#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# yggr-kv end to end: a 3-node cluster of real yggr-kv processes (durable, loopback TCP)
# driven through both client protocols, loadgen and lincheck; leader kill, restart and
# catch-up; malformed client input. Needs YGGR_KV (the real server) besides lib.sh's tools.
source "$(dirname "$0")/lib.sh"
[ -x "${YGGR_KV:-}" ] || fail "YGGR_KV is not set to the yggr-kv binary"
[ -x "${YGGR_CLUSTER:-}" ] || fail "YGGR_CLUSTER is not set"

base=$(pick_base 110)
dir="$work/cluster"
cluster() {
    local cmd=$1
    shift
    "$YGGR_CLUSTER" "$cmd" --dir "$dir" --base-port "$base" --bin "$YGGR_KV" "$@"
}
client_port() { echo $((base + 100 + $1)); }
targets="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"
cleanup_cluster() { cluster stop >/dev/null 2>&1 || true; }
trap 'cleanup_cluster; cleanup' EXIT

# One request/response exchange on a fresh connection: line protocol.
line() { # port request...
    local port=$1 reply
    shift
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf '%s\n' "$*" >&3
    IFS= read -r -t 5 reply <&3 || reply="(no reply)"
    exec 3<&-
    echo "${reply%$'\r'}"
}

# The agreed leader; waits for one (a loaded machine can leave a node silent for a moment,
# and a bare status then names no leader).
leader_of() { cluster status --wait-leader 20 | sed -nE 's/^leader: node ([0-9]+).*/\1/p'; }
info_field() { # node field
    local line
    line=$(line "$(client_port "$1")" INFO)
    sed -nE "s/.*$2:([0-9a-z-]+).*/\\1/p" <<<"$line"
}

step "start 3 yggr-kv nodes"
# Sanitizer builds run much slower: YGGR_TEST_TICK_MS stretches time (default 10 ms).
cluster start 3 -- --tick-ms "${YGGR_TEST_TICK_MS:-10}" --snapshot-entries 20000
L=$(leader_of)
[ -n "$L" ] || fail "no leader agreed on"
F=$(( L % 3 + 1 ))
echo "leader $L, follower $F"

step "line protocol round trips"
expect_eq "SET on leader" "$(line "$(client_port "$L")" SET greeting hello world)" OK
expect_eq "GET on leader" "$(line "$(client_port "$L")" GET greeting)" "hello world"
expect_eq "GET missing" "$(line "$(client_port "$L")" GET nope)" "<nil>"
expect_eq "DEL returns the old value" "$(line "$(client_port "$L")" DEL greeting)" "hello world"
expect_eq "DEL again" "$(line "$(client_port "$L")" DEL greeting)" "<nil>"
expect_eq "SET on a follower redirects" "$(line "$(client_port "$F")" SET k v)" "REDIRECT node:$L"
expect_eq "linearizable GET on a follower redirects" "$(line "$(client_port "$F")" GET k)" \
    "REDIRECT node:$L"

step "RESP round trips"
resp() { # port args...
    local port=$1 out="" reply
    shift
    out="*$#\r\n"
    for a in "$@"; do out+="\$${#a}\r\n$a\r\n"; done
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf "$out" >&3
    IFS= read -r -t 5 reply <&3 || reply="(no reply)"
    reply=${reply%$'\r'}
    if [[ "$reply" == \$* && "$reply" != '$-1' ]]; then
        IFS= read -r -t 5 reply <&3
        reply=${reply%$'\r'}
    fi
    exec 3<&-
    echo "$reply"
}
expect_eq "PING" "$(resp "$(client_port "$L")" PING)" "+PONG"
expect_eq "SET" "$(resp "$(client_port "$L")" SET rk rv)" "+OK"
expect_eq "GET" "$(resp "$(client_port "$L")" GET rk)" "rv"
expect_eq "GET missing" "$(resp "$(client_port "$L")" GET none)" '$-1'
expect_eq "DEL" "$(resp "$(client_port "$L")" DEL rk)" ":1"
expect_eq "SET on a follower" "$(resp "$(client_port "$F")" SET a b)" "-REDIRECT node:$L"
if command -v redis-cli >/dev/null 2>&1; then
    expect_eq "redis-cli SET" "$(redis-cli -p "$(client_port "$L")" SET cli works)" OK
    expect_eq "redis-cli GET" "$(redis-cli -p "$(client_port "$L")" GET cli)" works
    redis-cli -p "$(client_port "$L")" INFO | grep -q "role:leader" || fail "INFO via redis-cli"
    echo "ok: redis-cli"
else
    echo "note: redis-cli not installed; RESP checked with a built-in client only"
fi

step "malformed client input: clear errors, connections and node survive"
reply=$(line "$(client_port "$L")" FROB x)
[[ "$reply" == PARSE_ERROR* ]] || fail "unknown command got: $reply"
reply=$(line "$(client_port "$L")" SET onlykey)
[[ "$reply" == PARSE_ERROR* ]] || fail "SET without value got: $reply"
exec 3<>"/dev/tcp/127.0.0.1/$(client_port "$L")"
printf '*2\r\n$3\r\nGET\r\n$x\r\n' >&3
IFS= read -r -t 5 reply <&3 || reply="(closed)"
exec 3<&-
[[ "$reply" == -ERR* ]] || fail "bad RESP got: $reply"
head -c 1200000 /dev/zero | tr '\0' 'a' > "$work/long"
exec 3<>"/dev/tcp/127.0.0.1/$(client_port "$L")"
cat "$work/long" >&3 2>/dev/null || true
IFS= read -r -t 5 reply <&3 || reply="(closed)"
exec 3<&- 2>/dev/null || true
[[ "$reply" == PARSE_ERROR* || "$reply" == "(closed)" ]] || fail "oversized line got: $reply"
expect_eq "node still serves" "$(line "$(client_port "$L")" SET after bad)" OK

step "DIGEST, REMOVE and the member lists in INFO"
# DIGEST: every replica answers for itself; equal applied index means equal digest.
expect_eq "SET before DIGEST" "$(line "$(client_port "$L")" SET dg 1)" OK
d1=""
for _ in $(seq 50); do
    d1=$(line "$(client_port "$L")" DIGEST)
    d2=$(line "$(client_port "$F")" DIGEST)
    [ "$d1" = "$d2" ] && break
    sleep 0.1
done
[[ "$d1" =~ ^applied:[0-9]+\ digest:[0-9a-f]{16}$ ]] || fail "DIGEST got: $d1"
expect_eq "leader and follower digests" "$d2" "$d1"
expect_eq "RESP DIGEST" "$(resp "$(client_port "$F")" DIGEST)" "+$d1"
[[ "$(line "$(client_port "$L")" INFO)" == *" voter_ids:1,2,3 learner_ids:"* ]] ||
    fail "INFO has no voter_ids: $(line "$(client_port "$L")" INFO)"
expect_eq "REMOVE on a follower redirects" "$(line "$(client_port "$F")" REMOVE 9)" \
    "REDIRECT node:$L"
reply=$(line "$(client_port "$L")" REMOVE x)
[[ "$reply" == ERROR* || "$reply" == PARSE_ERROR* ]] || fail "REMOVE x got: $reply"

step "loadgen with history, then lincheck"
"$LOADGEN" --targets "$targets" --connections 16 --depth 4 --keys 50 --read-ratio 0.3 \
    --duration 3 --history "$work/h1.jsonl" --json "$work/r1.json" --quiet
expect_eq "errors" "$(json_num "$work/r1.json" errors)" 0
expect_ge "operations in the history" "$(wc -l < "$work/h1.jsonl")" 1000
expect_lincheck "$work/h1.jsonl" 0

step "kill the leader under load: writes resume on the new leader, history stays linearizable"
"$LOADGEN" --targets "$targets" --connections 16 --depth 4 --keys 50 --key-offset 1000 \
    --read-ratio 0.3 --duration 6 --timeout-ms 1000 --history "$work/h2.jsonl" --json "$work/r2.json" \
    --quiet &
lg=$!
sleep 2
cluster kill "$L"
wait "$lg" || fail "loadgen failed during the leader kill"
L2=$(leader_of)
[ "$L2" != "$L" ] || fail "leader did not change"
expect_lincheck "$work/h2.jsonl" 0
ok_after=$(awk -v t=0 '/"result":"ok"/ && /"op":"write"/ {n++} END {print n+0}' "$work/h2.jsonl")
expect_ge "acknowledged writes across the kill" "$ok_after" 1000

step "restart the old leader: it recovers and catches up"
cluster restart "$L"
target=$(info_field "$L2" commit)
for _ in $(seq 100); do
    applied=$(info_field "$L" applied || echo 0)
    [ "${applied:-0}" -ge "$target" ] && break
    sleep 0.1
done
expect_ge "restarted node's applied index" "${applied:-0}" "$target"
expect_eq "data survived the restart" "$(line "$(client_port "$L2")" GET after)" bad
echo "PASS"
