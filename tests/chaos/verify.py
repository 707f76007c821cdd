# SPDX-License-Identifier: MIT
"""Chaos harness, part 3: what a run must satisfy once the faults are healed.

Design notes
------------
- History: loadgen's JSON lines (docs/loadgen.md) plus the harness's own operations (the
  probe and the final reads), merged into one file for lincheck. The harness's operations
  use keys loadgen never touches, except the final reads, which run seconds after loadgen
  stopped; so the small offset between the two clocks (loadgen starts its clock a few ms
  after the harness takes t0) cannot reorder two operations on one key.
- Lost acknowledged writes, counted directly (lincheck would also reject them): after the
  final read of a key returned value v, an acknowledged write w of that key is lost when v
  is nil, or when v was written by an acknowledged write that completed before w was
  invoked (so w must have overwritten it). A v from a write of unknown outcome proves
  nothing (it may have applied late), so it is not counted.
- Failover: for each leader-affecting fault at time t, the first acknowledged write
  invoked at or after t; failover = its completion - t. It includes the client's detection
  time (loadgen's --timeout-ms for a silent leader) and, for kill-all and whole-cluster
  power cuts, the time the nodes are down.
- Replicas: DIGEST on every node until all report the same applied index (twice in a row),
  then the digests must be equal. Logs: each node is stopped, a copy of its data directory
  is dumped with chaos-logdump, and every pair of nodes must hold identical entries (term,
  type, payload CRC and length) at every index both hold up to the lower of their two
  commit indexes (checked against one canonical entry per index, so memory stays at one
  entry per committed index); each log must also reach its own commit index with no hole
  after its snapshot.
"""
import bisect
import collections
import json
import os
import shutil
import subprocess
import time

from cluster import parse_info, value_id


# One history operation, compact (long runs hold millions of them).
Op = collections.namedtuple("Op", "op key value result invoke_us complete_us")


def to_op(d):
    return Op(d["op"], d["key"], d["value"], d["result"], d["invoke_us"], d["complete_us"])


def load_history(path):
    ops = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                ops.append(to_op(json.loads(line)))
    return ops


def write_history(path, base, extra):
    """`base` (a history file) followed by the operations `extra` (dicts)."""
    with open(path, "w") as out:
        with open(base) as f:
            shutil.copyfileobj(f, out)
        for op in extra:
            out.write(json.dumps(op, separators=(",", ":")) + "\n")


def count_results(ops):
    out = {"ok": 0, "fail": 0, "unknown": 0}
    writes = {"ok": 0, "fail": 0, "unknown": 0}
    for op in ops:
        out[op.result] = out.get(op.result, 0) + 1
        if op.op != "read":
            writes[op.result] = writes.get(op.result, 0) + 1
    return out, writes


def acked_writes_before(ops, t_us):
    return sum(1 for op in ops if op.op != "read" and op.result == "ok"
               and op.complete_us < t_us)


def acked_writes_after(ops, t_us):
    return sum(1 for op in ops if op.op != "read" and op.result == "ok"
               and op.invoke_us >= t_us)


def failovers(ops, faults):
    """Milliseconds from each leader-affecting fault to the first acknowledged write
    invoked after it (None when there was none)."""
    writes = sorted((op.invoke_us, op.complete_us) for op in ops
                    if op.op != "read" and op.result == "ok")
    out = []
    for f in faults:
        if not f["leader_affecting"]:
            continue
        best = None
        for inv, comp in writes[bisect.bisect_left(writes, (f["t_us"], -1)):]:
            if best is not None and inv > best:
                break
            if best is None or comp < best:
                best = comp
        out.append(None if best is None else (best - f["t_us"]) / 1000.0)
    return out


def percentile(values, p):
    vals = sorted(v for v in values if v is not None)
    if not vals:
        return None
    k = min(len(vals) - 1, max(0, int(round(p / 100.0 * len(vals) + 0.5)) - 1))
    return vals[k]


def lost_writes(ops, final):
    """(keys with a lost acknowledged write, acknowledged writes lost): see the notes."""
    by_key = {}
    for op in ops:
        if op.op == "write":
            by_key.setdefault(op.key, []).append(op)
    lost_keys, lost = 0, 0
    for key, value in final.items():
        writes = by_key.get(key, [])
        acked = [w for w in writes if w.result == "ok"]
        if value is None:
            n = len(acked)
        else:
            src = [w for w in writes if w.value == value]
            if not src or src[0].result != "ok":
                continue
            n = sum(1 for w in acked if w.invoke_us > src[0].complete_us)
        if n:
            lost_keys += 1
            lost += n
    return lost_keys, lost


def run_lincheck(lincheck, path, log):
    r = subprocess.run([lincheck, path], capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    log("lincheck: exit %d: %s" % (r.returncode, out[:600].replace("\n", " | ")))
    return r.returncode, out


def digests(cluster, client, nodes, log, timeout=30.0):
    """Wait until every node reports the same applied index; returns (ok, {id: reply})."""
    deadline = time.monotonic() + timeout
    last, stable = None, 0
    while time.monotonic() < deadline:
        replies = {n.id: client.request(n, "DIGEST", timeout=2.0) for n in nodes}
        parsed = {i: parse_info("role:x " + r) if r and r.startswith("applied:") else None
                  for i, r in replies.items()}
        if all(parsed.values()):
            applied = {p["applied"] for p in parsed.values()}
            if len(applied) == 1:
                stable = stable + 1 if last == replies else 1
                last = replies
                if stable >= 2:
                    ds = {p["digest"] for p in parsed.values()}
                    log(f"digests at applied {applied.pop()}: "
                        f"{sorted(replies.values())[0] if len(ds) == 1 else replies}")
                    return len(ds) == 1, replies
        time.sleep(0.2)
    log(f"digests: no common applied index within {timeout:.0f}s: {last or replies}")
    return False, last or replies


def dump_log(logdump, node, workdir):
    """Run chaos-logdump on a copy of the node's data directory; yields its lines."""
    copy = os.path.join(workdir, f"dump-n{node.id}")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(node.dir, copy)
    r = subprocess.run([logdump, copy], capture_output=True, text=True)
    shutil.rmtree(copy, ignore_errors=True)
    if r.returncode != 0:
        raise RuntimeError(f"chaos-logdump n{node.id}: {r.stderr.strip()}")
    return r.stdout.splitlines()


def check_logs(logdump, nodes, commits, workdir, log):
    """Stopped nodes' logs agree up to the commit index. Returns (problems, compared).

    Pairwise agreement up to min(commit_a, commit_b) is checked against one canonical
    entry per index: the first node holding index i with commit >= i sets it, every later
    such node must match it. Memory: one small entry per committed index."""
    problems, canon, compared = [], {}, 0
    for n in nodes:
        head, first_bad = {}, None
        for line in dump_log(logdump, n, workdir):
            parts = line.split(" ", 1)
            if parts[0] in ("range", "snapshot", "hardstate"):
                a, b = parts[1].split()
                head[parts[0]] = (int(a), int(b))
                continue
            idx = int(parts[0])
            if idx > commits[n.id]:
                continue
            held = canon.get(idx)
            if held is None:
                canon[idx] = (n.id, parts[1])
            else:
                compared += 1
                if held[1] != parts[1] and first_bad is None:
                    first_bad = (f"index {idx}: n{held[0]} has ({held[1]}), "
                                 f"n{n.id} has ({parts[1]})")
        if first_bad:
            problems.append(first_bad)
        first, last = head["range"]
        snap = head["snapshot"][0]
        if last < commits[n.id]:
            problems.append(f"n{n.id}: log ends at {last}, below its commit index "
                            f"{commits[n.id]}")
        if first > snap + 1:
            problems.append(f"n{n.id}: hole between snapshot {snap} and log start {first}")
        log(f"log n{n.id}: entries [{first}, {last}], snapshot {snap}, "
            f"commit {commits[n.id]}")
    log(f"logs: {compared} entries compared with another node's, {len(problems)} problems")
    return problems, compared


def final_reads(client, leader_fn, keys, t_fn, log, client_id=9000):
    """Linearizable GET of every key through the leader; returns (history ops, {key: id})."""
    ops, final = [], {}
    deadline = time.monotonic() + 60.0
    for key in keys:
        while time.monotonic() < deadline:
            leader = leader_fn()
            if leader is None:
                time.sleep(0.1)
                continue
            inv = t_fn()
            reply = client.request(leader, f"GET {key}", timeout=2.0)
            comp = t_fn()
            if reply is None or reply.startswith(("REDIRECT", "ERROR", "PARSE_ERROR")):
                time.sleep(0.05)
                continue
            v = None if reply == "<nil>" else value_id(reply)
            final[key] = v
            ops.append({"client": client_id, "node": leader.id, "op": "read", "key": key,
                        "value": None, "invoke_us": inv, "complete_us": comp,
                        "result": "ok", "read_value": v})
            break
        else:
            log(f"final read of {key} failed")
            return ops, None
    return ops, final
