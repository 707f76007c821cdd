# SPDX-License-Identifier: MIT
"""Chaos harness, part 2: the nemeses. Each one injects a fault, holds it, heals it.

Design notes
------------
- A nemesis is a function inject(ctx) -> Fault, where the Fault carries its own heal()
  and says whether it hit the leader in a way that stops it from committing
  (`leader_affecting`: killed, paused, power cut, cut off from the others, or unable to
  send or to receive). Only those faults are used for failover times: failover = the time
  from the injection to the first acknowledged write invoked after it (docs/chaos.md).
- Targets are drawn from the *members* of the current configuration that are running; the
  leader is found by asking every reachable node INFO (highest term wins). Draws come from
  one seeded random.Random, so a failing run names its seed.
- Faults on one node at a time, except kill-all and the whole-cluster power cut, which hit
  every node at once and restart them all.
"""
import random
import time

from cluster import KvClient, now_us, parse_info


class Fault:
    """Made right AFTER the fault took effect (process reaped, nft rule in place), so t_us
    is never earlier than the fault: a write invoked after t_us met the fault."""

    def __init__(self, ctx, kind, detail, nodes, leader_affecting, heal):
        self.kind = kind
        self.detail = detail
        self.nodes = [n.id for n in nodes]
        self.leader_affecting = leader_affecting
        self.heal = heal
        self.t_us = now_us(ctx.t0_ns)
        self.heal_us = None

    def record(self):
        return {"kind": self.kind, "detail": self.detail, "nodes": self.nodes,
                "leader_affecting": self.leader_affecting, "t_us": self.t_us,
                "heal_us": self.heal_us}


class Context:
    def __init__(self, cluster, net, rng, t0_ns, members_fn, log):
        self.cluster = cluster
        self.net = net
        self.rng = rng
        self.t0_ns = t0_ns
        self.members_fn = members_fn      # ids of the configuration's members
        self.log = log
        self.client = KvClient(timeout=0.3)

    def members(self):
        return [self.cluster.nodes[i] for i in self.members_fn()]

    def running(self):
        return [n for n in self.members() if n.alive() and not n.paused]

    def leader(self, wait_s=3.0):
        """The member claiming leadership with the highest term, or None."""
        deadline = time.monotonic() + wait_s
        while True:
            best, best_term = None, -1
            for n in self.running():
                info = parse_info(self.client.request(n, "INFO"))
                if info and info.get("role") == "leader" and int(info["term"]) > best_term:
                    best, best_term = n, int(info["term"])
            if best is not None or time.monotonic() >= deadline:
                return best
            time.sleep(0.05)

    def pick(self, prefer_leader=0.5):
        """A running member; the leader with probability prefer_leader."""
        leader = self.leader(wait_s=1.0)
        nodes = self.running()
        if not nodes:
            return None, leader
        if leader is not None and self.rng.random() < prefer_leader:
            return leader, leader
        return self.rng.choice(nodes), leader

    def restart(self, node):
        if not node.alive():
            self.cluster.start(node)
            self.cluster.wait_port(node)


def _kill(ctx, node, leader):
    ctx.cluster.kill(node)
    return Fault(ctx, "kill", f"SIGKILL node {node.id}", [node],
                 leader is not None and node.id == leader.id, lambda: ctx.restart(node))


def kill_leader(ctx):
    leader = ctx.leader()
    node = leader if leader is not None else ctx.rng.choice(ctx.running())
    return _kill(ctx, node, leader)


def kill_random(ctx):
    node, leader = ctx.pick(prefer_leader=0.0)
    return _kill(ctx, node, leader)


def kill_all(ctx):
    nodes = [n for n in ctx.members() if n.alive()]
    for n in nodes:
        ctx.cluster.kill(n)

    def heal():
        for n in nodes:
            ctx.cluster.start(n)
        for n in nodes:
            ctx.cluster.wait_port(n)
    return Fault(ctx, "kill-all", "SIGKILL every node", nodes, True, heal)


def pause(ctx):
    node, leader = ctx.pick(prefer_leader=0.5)
    ctx.cluster.pause(node)
    return Fault(ctx, "pause", f"SIGSTOP node {node.id}", [node],
                 leader is not None and node.id == leader.id,
                 lambda: ctx.cluster.resume(node))


def _isolate(ctx, node, leader, kind):
    ctx.net.isolate(node, ctx.members())
    return Fault(ctx, kind, f"node {node.id} cut off from the others", [node],
                 leader is not None and node.id == leader.id, ctx.net.heal)


def partition_leader(ctx):
    leader = ctx.leader()
    node = leader if leader is not None else ctx.rng.choice(ctx.running())
    return _isolate(ctx, node, leader, "partition-leader")


def partition_majority(ctx):
    """A random node alone (minority) against the others (majority)."""
    node, leader = ctx.pick(prefer_leader=0.0)
    return _isolate(ctx, node, leader, "partition-majority")


def partition_bridge(ctx):
    """Two halves that only the bridge node connects: {a, b} and {b, c}."""
    members = ctx.members()
    ctx.rng.shuffle(members)
    a, bridge, c = members[0], members[1], members[2]
    ctx.net.block([(a, c), (c, a)])
    return Fault(ctx, "partition-bridge", f"node {bridge.id} bridges {a.id} and {c.id}",
                 [a, c], False, ctx.net.heal)


def partition_oneway(ctx):
    """The leader cannot send, or cannot receive, or one random link loses a direction."""
    leader = ctx.leader()
    others = [n for n in ctx.members() if leader is None or n.id != leader.id]
    variant = ctx.rng.choice(["leader-mute", "leader-deaf", "one-link"])
    if leader is None or variant == "one-link":
        src, dst = ctx.rng.sample(ctx.members(), 2)
        ctx.net.block([(src, dst)])
        return Fault(ctx, "partition-oneway", f"{src.id} -> {dst.id} dropped", [src, dst],
                     False, ctx.net.heal)
    mute = variant == "leader-mute"
    ctx.net.block([(leader, o) if mute else (o, leader) for o in others])
    what = "cannot send" if mute else "cannot receive"
    return Fault(ctx, "partition-oneway", f"leader {leader.id} {what}", [leader], True,
                 ctx.net.heal)


def packet_loss(ctx):
    percent = ctx.rng.choice([10, 20, 30, 40])
    ctx.net.loss(percent)
    return Fault(ctx, "packet-loss", f"{percent}% of Raft packets dropped", ctx.members(),
                 False, ctx.net.heal)


def power_cut(ctx):
    """One node (the leader half the time), or every node at once one time in four."""
    if ctx.rng.random() < 0.25:
        nodes = [n for n in ctx.members() if n.alive()]
        statuses = [ctx.cluster.power_cut(n) for n in nodes]
        detail = f"power cut of every node (exit {statuses})"
        affecting = True
    else:
        node, leader = ctx.pick(prefer_leader=0.5)
        nodes = [node]
        detail = f"power cut of node {node.id} (exit {ctx.cluster.power_cut(node)})"
        affecting = leader is not None and node.id == leader.id

    def heal():
        for n in nodes:
            ctx.cluster.start(n)
        for n in nodes:
            ctx.cluster.wait_port(n)
    return Fault(ctx, "power-cut", detail, nodes, affecting, heal)


def mixed_single(ctx):
    """Membership runs: one node killed, paused or cut off (a majority stays up)."""
    return ctx.rng.choice([kill_random, pause, partition_majority])(ctx)


NEMESES = {
    "kill-leader": kill_leader,
    "kill-random": kill_random,
    "kill-all": kill_all,
    "pause": pause,
    "partition-leader": partition_leader,
    "partition-majority": partition_majority,
    "partition-bridge": partition_bridge,
    "partition-oneway": partition_oneway,
    "packet-loss": packet_loss,
    "power-cut": power_cut,
    "mixed": mixed_single,
}


def run(ctx, inject, seconds, hold=(1.0, 3.0), quiet=(1.0, 2.5), stop=None):
    """Inject, hold, heal, rest; repeat for `seconds`. Returns the Faults."""
    faults = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop and stop.is_set()):
        fault = inject(ctx)
        ctx.log(f"[{fault.t_us / 1e6:7.2f}s] fault: {fault.detail}"
                f"{' (leader)' if fault.leader_affecting else ''}")
        time.sleep(min(ctx.rng.uniform(*hold), max(0.0, end - time.monotonic()) + 0.5))
        fault.heal()
        fault.heal_us = now_us(ctx.t0_ns)
        ctx.log(f"[{fault.heal_us / 1e6:7.2f}s] healed")
        faults.append(fault)
        time.sleep(min(ctx.rng.uniform(*quiet), max(0.0, end - time.monotonic())))
    return faults
