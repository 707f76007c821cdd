# SPDX-License-Identifier: MIT
"""yggr chaos harness: a 3-node yggr-kv cluster under loadgen and a nemesis, then proof
that every acknowledged write survived (docs/chaos.md). Run it through run.sh, which
checks the prerequisites and enters a private network namespace.

Design notes
------------
- A scenario = fresh cluster + loadgen recording a history + a probe client + one nemesis
  for --seconds, then heal everything, keep the load running a few seconds (the cluster
  must serve again), stop the load, read every key back, and verify (verify.py): lincheck
  over the whole history, lost acknowledged writes, digests at equal applied indexes, logs
  equal up to the commit index, a minimum of acknowledged writes before the first fault.
- The probe writes its own keys through the leader and reads them back from EVERY node
  (no redirect following for reads): with linearizable reads a non-leader answers REDIRECT
  (a failed read, ignored by lincheck); with --read-mode local a partitioned node serves
  stale values, which is what the broken-mode scenario must catch.
- Scenarios: the nemeses of nemesis.py, `membership` (add, remove, replace every founder
  while single-node faults run), `hostile` (malformed input, 100,000 unread pipelined
  requests, thousands of idle connections, with RSS bounds and an error-free loadgen) and
  `broken-local-reads` (expects lincheck to report a violation).
- Exit status: 0 every scenario passed, 1 a check failed, 77 prerequisites missing.
"""
import argparse
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hostile  # noqa: E402
import nemesis  # noqa: E402
import verify  # noqa: E402
from cluster import Cluster, KvClient, Net, now_us, parse_ids, parse_info, value_id  # noqa

NEMESIS_SCENARIOS = ["kill-leader", "kill-random", "kill-all", "pause", "partition-leader",
                     "partition-majority", "partition-bridge", "partition-oneway",
                     "packet-loss", "power-cut"]
SCENARIOS = NEMESIS_SCENARIOS + ["membership", "hostile", "broken-local-reads"]
KEYS = 100
PROBE_KEYS = [f"k{9000000 + i}" for i in range(8)]
MIN_ACKED_BEFORE_FAULT = 500
MIN_ACKED_AFTER_HEAL = 50


def log(msg):
    print(msg, flush=True)


class Probe(threading.Thread):
    """Writes PROBE_KEYS through the leader, reads them from every member."""

    def __init__(self, ctx, client_id=9001, period=0.05):
        super().__init__(daemon=True)
        self.ctx = ctx
        self.client_id = client_id
        self.period = period
        self.ops = []
        self.stop_flag = threading.Event()
        self.leader = None

    def t(self):
        return now_us(self.ctx.t0_ns)

    def record(self, node, op, key, value, inv, result, read_value=None):
        self.ops.append({"client": self.client_id, "node": node.id, "op": op, "key": key,
                         "value": value, "invoke_us": inv, "complete_us": self.t(),
                         "result": result, "read_value": read_value})

    def write(self, client, key, seq):
        members = self.ctx.members()
        node = self.leader if self.leader in members else random.choice(members)
        value = f"c{self.client_id}-s{seq}"
        inv = self.t()
        reply = client.request(node, f"SET {key} {value}-probe")
        if reply == "OK":
            result = "ok"
        elif reply is None or "outcome unknown" in reply or not reply.startswith(
                ("REDIRECT", "PARSE_ERROR")) and "(not applied)" not in reply:
            result = "unknown"
        else:
            result = "fail"
        self.record(node, "write", key, value, inv, result)
        if reply is not None and reply.startswith("REDIRECT node:"):
            hint = int(reply.split(":")[1])
            self.leader = self.ctx.cluster.nodes.get(hint) if hint else None
        elif result != "ok":
            self.leader = None

    def read_all(self, client, key):
        for node in self.ctx.members():
            inv = self.t()
            reply = client.request(node, f"GET {key}", timeout=0.2)
            if reply is None:
                self.record(node, "read", key, None, inv, "unknown")
            elif reply.startswith(("REDIRECT", "ERROR", "PARSE_ERROR")):
                self.record(node, "read", key, None, inv, "fail")
            else:
                v = None if reply == "<nil>" else value_id(reply)
                self.record(node, "read", key, None, inv, "ok", v)

    def run(self):
        client = KvClient(timeout=0.5)
        seq = 0
        while not self.stop_flag.is_set():
            seq += 1
            key = PROBE_KEYS[seq % len(PROBE_KEYS)]
            self.write(client, key, seq)
            self.read_all(client, key)
            time.sleep(self.period)
        client.close()

    def stop(self):
        self.stop_flag.set()
        self.join()


class Run:
    """One scenario's cluster, load and verification."""

    def __init__(self, opts, name, kv_args=(), ids=(1, 2, 3), spares=()):
        self.opts = opts
        self.name = name
        self.rng = random.Random(opts.seed)
        self.dir = os.path.join(opts.workdir, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        args = ["--tick-ms", str(opts.tick_ms), "--snapshot-entries", "20000"] + list(kv_args)
        self.cluster = Cluster(opts.kv, self.dir, args, log)
        for i in ids:
            self.cluster.add(i, founder=True)
        for i in spares:
            self.cluster.add(i, founder=False)
        self.members = list(ids)
        self.net = Net()
        self.net.heal()
        self.t0_ns = time.monotonic_ns()
        self.ctx = nemesis.Context(self.cluster, self.net, self.rng, self.t0_ns,
                                   lambda: list(self.members), log)
        self.loadgen = None
        self.probe = None
        self.checks = {}
        self.result = {"scenario": name, "seed": opts.seed}

    def check(self, name, ok, detail):
        """Record a check; every failed check fails the scenario."""
        self.checks[name] = {"ok": bool(ok), "detail": detail}
        log(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")

    def start_cluster(self):
        for n in self.cluster.nodes.values():
            self.cluster.start(n)
        for n in self.cluster.nodes.values():
            self.cluster.wait_port(n)
        leader = self.ctx.leader(wait_s=20.0)
        if leader is None:
            raise RuntimeError("no leader within 20 s of starting the cluster")
        # A new leader answers reads "not ready" until an entry of its term commits: wait
        # for that, so that the load starts on a cluster that serves.
        client = KvClient(timeout=2.0)
        for _ in range(100):
            if client.request(leader, f"GET {PROBE_KEYS[0]}") == "<nil>":
                break
            time.sleep(0.05)
        client.close()

    def start_load(self, timeout_ms=1000, connections=8, depth=4):
        """loadgen, open loop at --rate (0: closed loop), recording a history."""
        nodes = list(self.cluster.nodes.values())
        targets = ",".join(n.client_addr for n in nodes)
        node_map = ",".join(f"{n.id}={n.client_addr}" for n in nodes)
        self.history = os.path.join(self.dir, "history.jsonl")
        self.json = os.path.join(self.dir, "loadgen.json")
        cmd = [self.opts.loadgen, "--targets", targets, "--node-map", node_map,
               "--connections", str(connections), "--depth", str(depth),
               "--keys", str(KEYS), "--read-ratio", "0.5", "--duration", "100000",
               "--timeout-ms", str(timeout_ms), "--history", self.history,
               "--json", self.json, "--quiet", "--seed", str(self.opts.seed)]
        if self.opts.rate > 0:
            cmd += ["--rate", str(self.opts.rate)]
        self.t0_ns = time.monotonic_ns()
        self.ctx.t0_ns = self.t0_ns
        self.loadgen = subprocess.Popen(cmd, stdout=open(os.path.join(self.dir, "loadgen.out"),
                                                         "w"), stderr=subprocess.STDOUT)
        self.probe = Probe(self.ctx)
        self.probe.start()

    def stop_load(self):
        self.probe.stop()
        self.loadgen.send_signal(signal.SIGINT)
        try:
            rc = self.loadgen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.loadgen.kill()
            rc = self.loadgen.wait()
        self.check("loadgen exit status", rc == 0, rc)
        with open(self.json) as f:
            self.loadgen_json = json.load(f)
        self.result["loadgen"] = {k: self.loadgen_json.get(k) for k in (
            "ops_per_sec", "errors", "errors_by_kind", "indeterminate_writes", "redirects",
            "leader_changes", "p50_us", "p99_us")}

    def heal_all(self):
        self.net.heal()
        for n in self.cluster.nodes.values():
            if n.paused:
                self.cluster.resume(n)
        for i in self.members:
            self.ctx.restart(self.cluster.nodes[i])
        return now_us(self.t0_ns)

    def member_nodes(self):
        return [self.cluster.nodes[i] for i in self.members]

    def wait_answers(self, timeout=20.0):
        client = KvClient(timeout=1.0)
        deadline = time.monotonic() + timeout
        pending = self.member_nodes()
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if parse_info(client.request(n, "INFO")) is None]
            time.sleep(0.1 if pending else 0)
        client.close()
        self.check("every node answers after healing", not pending,
                   f"{len(self.members) - len(pending)}/{len(self.members)} answer INFO")

    def verify(self, faults, heal_us, expect_violation=False):
        ops = verify.load_history(self.history)
        t = lambda: now_us(self.t0_ns)  # noqa: E731
        client = KvClient(timeout=2.0)
        keys = [f"k{i}" for i in range(KEYS)] + PROBE_KEYS
        reads, final = verify.final_reads(client, lambda: self.ctx.leader(wait_s=5.0), keys,
                                          t, log)
        self.check("final reads", final is not None, f"{len(reads)}/{len(keys)} keys read")
        extra = self.probe.ops + reads
        combined = os.path.join(self.dir, "combined.jsonl")
        verify.write_history(combined, self.history, extra)
        probe_ops = [verify.to_op(d) for d in self.probe.ops]
        self.figures(ops, ops + probe_ops + [verify.to_op(d) for d in reads], faults, heal_us)
        rc, out = verify.run_lincheck(self.opts.lincheck, combined, log)
        self.result["lincheck_exit"] = rc
        self.result["lincheck"] = out.splitlines()[0][:200] if out else ""
        if expect_violation:
            self.check("lincheck reports a violation (exit 1)", rc == 1, f"exit {rc}")
        else:
            self.check("linearizable (lincheck exit 0)", rc == 0, f"exit {rc}")
            lost_keys, lost = verify.lost_writes(ops + probe_ops, final or {})
            self.result["lost_acked_writes"] = lost
            self.check("no acknowledged write lost", lost == 0 and final is not None,
                       f"{lost} lost on {lost_keys} keys")
        self.verify_replicas(client)
        client.close()

    def figures(self, ops, allops, faults, heal_us):
        counts, writes = verify.count_results(allops)
        self.result.update({"ops": counts, "writes": writes, "faults": len(faults),
                            "history_ops": len(allops)})
        log(f"  ops: {counts}; writes: {writes}; faults: {len(faults)}")
        # Failover seen by any client (loadgen or the probe, which tries every node), and
        # by loadgen alone (it follows redirects and stays on a node that answers errors).
        records = [f.record() for f in faults]
        for key, hist in (("failover_ms", allops), ("failover_loadgen_ms", ops)):
            fo = verify.failovers(hist, records)
            if fo:
                got = [v for v in fo if v is not None]
                self.result[key] = {
                    "count": len(fo), "no_write_after": len(fo) - len(got),
                    "p50": verify.percentile(got, 50), "p99": verify.percentile(got, 99),
                    "max": max(got) if got else None}
                log(f"  {key}: {self.result[key]}")
        if faults:
            first = faults[0].t_us
            before = verify.acked_writes_before(ops, first)
            self.result["acked_before_first_fault"] = before
            self.check("real work before the first fault", before >= MIN_ACKED_BEFORE_FAULT,
                       f"{before} acknowledged writes in the first {first / 1e6:.1f}s "
                       f"(minimum {MIN_ACKED_BEFORE_FAULT})")
        if heal_us is not None:
            after = verify.acked_writes_after(ops, heal_us)
            self.check("writes acknowledged after healing", after >= MIN_ACKED_AFTER_HEAL,
                       f"{after} (minimum {MIN_ACKED_AFTER_HEAL})")

    def verify_replicas(self, client):
        nodes = self.member_nodes()
        same, replies = verify.digests(self.cluster, client, nodes, log)
        self.result["digests"] = replies
        self.check("state digests equal at equal applied index", same,
                   "; ".join(f"n{i} {r}" for i, r in sorted(replies.items())))
        commits = {n.id: commit_of(n) for n in self.cluster.nodes.values()}
        for n in self.cluster.nodes.values():
            self.cluster.stop(n)
        dumped = [n for n in self.cluster.nodes.values() if os.path.exists(
            os.path.join(n.dir, "meta"))]
        problems, compared = verify.check_logs(self.opts.logdump, dumped, commits, self.dir,
                                               log)
        self.result["log_entries_compared"] = compared
        self.check("logs agree up to the commit index", not problems and compared > 0,
                   f"{compared} entries compared; " + ("; ".join(problems[:3]) or "equal"))

    def recoveries(self):
        """From the node logs: recoveries, and those that dropped a torn tail (bytes)."""
        count, torn = 0, []
        for n in self.cluster.nodes.values():
            try:
                text = open(n.log, errors="replace").read()
            except OSError:
                continue
            for m in re.finditer(r"recovered: .*?; torn (\d+) bytes", text):
                count += 1
                if int(m.group(1)) > 0:
                    torn.append(int(m.group(1)))
        return count, torn

    def finish(self):
        count, torn = self.recoveries()
        if count:
            self.result["recoveries"] = {"count": count, "torn_tails": len(torn),
                                         "torn_bytes": sum(torn)}
            log(f"  recoveries logged: {count}, {len(torn)} dropped a torn tail "
                f"({sum(torn)} bytes)")
        for n in self.cluster.nodes.values():
            self.cluster.note_exit(n)
        self.check("no node exited by itself", not self.cluster.crashes,
                   f"unexpected exits (node, status): {self.cluster.crashes}" if
                   self.cluster.crashes else "every exit was a fault or a stop")
        self.cluster.kill_all_processes()
        try:
            self.net.heal()
        except RuntimeError:
            pass
        self.result["checks"] = self.checks
        self.result["pass"] = all(c["ok"] for c in self.checks.values())
        if self.opts.results:
            with open(self.opts.results, "a") as f:
                f.write(json.dumps(self.result) + "\n")
        log(f"=== {self.name}: {'PASS' if self.result['pass'] else 'FAIL'}")
        return self.result["pass"]


def scenario_nemesis(opts, name, kv_args=(), inject=None, expect_violation=False):
    run = Run(opts, name, kv_args=kv_args)
    try:
        run.start_cluster()
        run.start_load()
        time.sleep(opts.warmup)
        faults = nemesis.run(run.ctx, inject or nemesis.NEMESES[name], opts.seconds)
        heal_us = run.heal_all()
        log(f"[{heal_us / 1e6:7.2f}s] healed everything; load continues {opts.recovery}s")
        run.wait_answers()
        time.sleep(opts.recovery)
        run.stop_load()
        run.verify(faults, heal_us, expect_violation=expect_violation)
    except Exception as e:  # a crash of the harness is a failed run, with its reason
        run.check("harness completed", False, repr(e))
    return run.finish()


def membership_op(run, op, node_id, stop):
    """Retry one change on the current leader until it is acknowledged."""
    node = run.cluster.nodes[node_id]
    line = f"JOIN {node_id} {node.raft_addr}" if op == "add" else f"REMOVE {node_id}"
    client = KvClient(timeout=45.0)
    while not stop.is_set():
        leader = run.ctx.leader(wait_s=2.0)
        reply = client.request(leader, line) if leader is not None else None
        if reply == "OK":
            log(f"[{now_us(run.t0_ns) / 1e6:7.2f}s] membership: {line} -> OK")
            client.close()
            return True
        time.sleep(0.3)
    client.close()
    return False


def commit_of(node):
    client = KvClient(timeout=1.0)
    info = parse_info(client.request(node, "INFO")) if node.alive() else None
    client.close()
    return int(info["commit"]) if info else getattr(node, "last_commit", 0)


def rolling_plan(seconds):
    """Replace the oldest member with a fresh node, again and again: 3 replacements in a
    short run (every founder), up to 12 in a long one. Returns (plan, final voters)."""
    count = max(3, min(12, int(seconds // 25)))
    plan, members = [], [1, 2, 3]
    for k in range(count):
        plan += [("add", 4 + k), ("remove", members.pop(0))]
        members.append(4 + k)
    return plan, members


def membership_plan(run, plan, done, stop, gap):
    for op, node_id in plan:
        if op == "add":
            run.members.append(node_id)
        if not membership_op(run, op, node_id, stop):
            return
        if op == "remove":
            run.members.remove(node_id)
            node = run.cluster.nodes[node_id]
            node.removed = True
            # Decommission it, as an operator would, after a short while. Until then it
            # answers "this node was removed from the cluster" (finding F1) and loadgen
            # moves on to another node.
            time.sleep(run.rng.uniform(0.5, 1.5))
            node.last_commit = commit_of(node)
            run.cluster.stop(node)
            log(f"[{now_us(run.t0_ns) / 1e6:7.2f}s] membership: node {node_id} stopped")
        time.sleep(run.rng.uniform(gap / 2, gap))
    done.set()


def converged(run, want, timeout=30.0):
    client = KvClient(timeout=1.0)
    deadline = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < deadline:
        seen = {}
        for n in run.member_nodes():
            info = parse_info(client.request(n, "INFO"))
            seen[n.id] = parse_ids(info.get("voter_ids")) if info else None
        if all(v == want for v in seen.values()):
            break
        time.sleep(0.2)
    client.close()
    return all(v == want for v in seen.values()), seen


def scenario_membership(opts):
    plan, want = rolling_plan(opts.seconds)
    spares = sorted({i for op, i in plan if op == "add"})
    gap = max(1.0, opts.seconds / len(plan))
    run = Run(opts, "membership", spares=spares)
    try:
        run.start_cluster()
        run.start_load()
        time.sleep(opts.warmup)
        done, stop = threading.Event(), threading.Event()
        worker = threading.Thread(target=membership_plan, args=(run, plan, done, stop, gap))
        worker.start()
        faults = nemesis.run(run.ctx, nemesis.mixed_single, opts.seconds, stop=None)
        heal_us = run.heal_all()
        worker.join(timeout=60)
        stop.set()
        worker.join()
        run.check("every membership change acknowledged", done.is_set(),
                  f"{len(plan)} changes {plan}, members now {sorted(run.members)}")
        ok, seen = converged(run, want)
        run.result["configuration"] = seen
        run.check("configuration converged", ok, f"want voters {want}, saw {seen}")
        run.wait_answers()
        time.sleep(opts.recovery)
        run.stop_load()
        run.verify(faults, heal_us)
    except Exception as e:
        run.check("harness completed", False, repr(e))
    return run.finish()


def hostile_round(run, opts, nodes, leader, sampler, r):
    """One attack; returns its figures: RSS before / peak / after, fds, loadgen window."""
    before = {n.id: n.rss_kib() for n in nodes}
    sampler.reset()
    t_start = now_us(run.t0_ns)
    failures, figures = hostile.attack(nodes, leader, run.rng, log, opts.idle_per_node)
    time.sleep(3.0)
    after = {n.id: n.rss_kib() for n in nodes}
    fds = {n.id: len(os.listdir(f"/proc/{n.proc.pid}/fd")) for n in nodes}
    log(f"hostile: round {r} RSS KiB before {before}, peak {sampler.peak}, after {after}; "
        f"open fds {fds}")
    return {"round": r, "failures": failures, "figures": figures, "before_kib": before,
            "peak_kib": dict(sampler.peak), "after_kib": after, "fds": fds,
            "window_us": (t_start, now_us(run.t0_ns))}


def hostile_checks(run, opts, rounds):
    """Every round must pass: later rounds repeat the attack on the same processes, so
    memory that an attack leaves behind (docs/chaos.md, finding F2) shows up there."""
    ops = verify.load_history(run.history)
    run.result["rss"] = [{k: r[k] for k in ("round", "before_kib", "peak_kib", "after_kib",
                                             "fds")} for r in rounds]
    run.result["hostile"] = rounds[0]["figures"]
    base = rounds[0]["before_kib"]
    for r in rounds:
        tag = f"round {r['round']}: "
        lo, hi = r["window_us"]
        errs = sum(1 for op in ops if lo <= op.invoke_us <= hi and op.result != "ok")
        r["loadgen_errors"] = errs
        run.check(tag + "malformed requests get an error or a closed connection",
                  not r["failures"], "; ".join(r["failures"][:5]) or "every case, every node")
        peak = max(r["peak_kib"][i] - r["before_kib"][i] for i in base) // 1024
        after = max(r["after_kib"][i] - base[i] for i in base) // 1024
        run.check(tag + "memory bounded during the attack", peak <= opts.rss_peak_mib,
                  f"largest RSS growth {peak} MiB (bound {opts.rss_peak_mib})")
        run.check(tag + "memory bounded after the attack", after <= opts.rss_after_mib,
                  f"largest RSS growth since the first attack {after} MiB "
                  f"(bound {opts.rss_after_mib})")
        run.check(tag + "parallel loadgen saw no errors", errs == 0,
                  f"{errs} loadgen operations not ok during the round")


def scenario_hostile(opts):
    # The attack shares the cluster's two cores (thousands of connections, unread 400 MB
    # of replies, the attacker itself): with 100-200 ms election timeouts a starved leader
    # was occasionally elected away (seen in CI), which is a scheduling artefact of running
    # attacker and cluster on one small machine, not the client-input handling under test.
    # The cluster runs with etcd-like timeouts here: elections after 500-1000 ms.
    lo = max(1, 500 // opts.tick_ms)
    run = Run(opts, "hostile", kv_args=["--election-ticks", f"{lo}:{2 * lo}",
                                        "--heartbeat-ticks", str(max(1, lo // 10)), "--verbose"])
    try:
        run.start_cluster()
        run.start_load(timeout_ms=2000)
        time.sleep(max(opts.warmup, 3.0))
        nodes = run.member_nodes()
        leader = run.ctx.leader()
        client = KvClient(timeout=5.0)
        if client.request(leader, f"SET {hostile.BIG_KEY} {'x' * 4096}") != "OK":
            raise RuntimeError("cannot write the hostile test's 4 KiB value")
        client.close()
        sampler = hostile.RssSampler(nodes)
        sampler.start()
        rounds = [hostile_round(run, opts, nodes, leader, sampler, r + 1)
                  for r in range(opts.hostile_rounds)]
        sampler.stop()
        run.stop_load()
        hostile_checks(run, opts, rounds)
        run.verify([], None)
    except Exception as e:
        run.check("harness completed", False, repr(e))
    return run.finish()


def scenario_broken(opts):
    return scenario_nemesis(opts, "broken-local-reads", kv_args=["--read-mode", "local"],
                            inject=nemesis.partition_leader, expect_violation=True)


def run_scenario(opts, name):
    log(f"=== {name}: {opts.seconds}s of faults, seed {opts.seed}, work dir "
        f"{os.path.join(opts.workdir, name)}")
    if name in NEMESIS_SCENARIOS:
        # --verbose logs each recovery's summary, which counts the torn bytes dropped.
        kv_args = ["--test-power-cut-signal", "--verbose"] if name == "power-cut" else []
        return scenario_nemesis(opts, name, kv_args=kv_args)
    return {"membership": scenario_membership, "hostile": scenario_hostile,
            "broken-local-reads": scenario_broken}[name](opts)


def setup_namespace():
    """Inside the namespace made by run.sh: loopback up, nft usable, fds raised."""
    if subprocess.run(["ip", "link", "set", "lo", "up"]).returncode != 0:
        log("SKIP: cannot bring lo up in the network namespace")
        sys.exit(77)
    try:
        Net().heal()
    except (RuntimeError, OSError) as e:
        log(f"SKIP: nft does not work inside the network namespace: {e}")
        sys.exit(77)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_args(argv):
    p = argparse.ArgumentParser(description="yggr chaos harness (docs/chaos.md)")
    p.add_argument("--scenario", action="append", required=True,
                   help="one of %s, or all (repeatable)" % ", ".join(SCENARIOS))
    env = os.environ.get
    p.add_argument("--seconds", type=float, default=float(env("CHAOS_SECONDS", 10)),
                   help="seconds of faults per scenario (default $CHAOS_SECONDS, else 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="load before the first fault")
    p.add_argument("--recovery", type=float, default=3.0, help="load after healing")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--tick-ms", type=int, default=int(os.environ.get("YGGR_TEST_TICK_MS", 10)))
    p.add_argument("--rate", type=int, default=int(env("CHAOS_RATE", 2500)),
                   help="loadgen requests/s, open loop (0 = closed loop, as fast as it "
                   "goes; default $CHAOS_RATE, else 2500)")
    p.add_argument("--idle-per-node", type=int, default=2000)
    p.add_argument("--rss-peak-mib", type=int, default=256)
    p.add_argument("--rss-after-mib", type=int, default=128)
    p.add_argument("--hostile-rounds", type=int, default=2)
    p.add_argument("--workdir", default=None)
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--results", default=None, help="append one JSON line per scenario")
    opts = p.parse_args(argv)
    names = []
    for s in opts.scenario:
        names += SCENARIOS if s == "all" else [s]
    for s in names:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s}")
    opts.names = names
    if opts.seed is None:
        opts.seed = random.SystemRandom().randrange(1, 1 << 31)
    for var, attr in [("YGGR_KV", "kv"), ("LOADGEN", "loadgen"), ("LINCHECK", "lincheck"),
                      ("CHAOS_LOGDUMP", "logdump")]:
        setattr(opts, attr, os.environ.get(var))
        if not opts.__dict__[attr] or not os.access(opts.__dict__[attr], os.X_OK):
            p.error(f"{var} must name an executable")
    return opts


def main(argv):
    opts = parse_args(argv)
    setup_namespace()
    made = opts.workdir is None
    if made:
        opts.workdir = tempfile.mkdtemp(prefix="yggr-chaos-")
    os.makedirs(opts.workdir, exist_ok=True)
    passed = []
    for name in opts.names:
        passed.append(run_scenario(opts, name))
        opts.seed += 1
    ok = all(passed)
    if made and ok and not opts.keep:
        shutil.rmtree(opts.workdir, ignore_errors=True)
    else:
        log(f"work directory kept: {opts.workdir}")
    log(f"chaos: {sum(passed)}/{len(passed)} scenarios passed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
