# SPDX-License-Identifier: MIT
"""Chaos harness, part 1: yggr-kv processes, nftables faults and a small kv client.

Design notes
------------
- Everything runs inside a private network namespace made by run.sh (unshare -n), so
  node i can own 127.0.0.i with fixed ports (Raft 7000, clients 6000) and nft rules touch
  nothing outside. yggr's outgoing Raft connections bind to the node's listen IP, so a rule
  on (source, destination) address pairs cuts exactly one direction between two nodes.
  Rules match only Raft traffic (port 7000 at either end): clients (loadgen, the harness)
  always reach every node, as in Jepsen, where clients sit on the control node.
- Processes are started through `setpriv --pdeathsig KILL`, so a harness that dies
  (timeout, Ctrl-C) takes its nodes with it; spawn them only from the main thread (the
  death signal follows the thread that forked).
- Nodes get the harness's environment without MALLOC_PERTURB_ (see NODE_ENV).
- Restarts choose the bootstrap mode from the data directory: a directory holding `meta`
  recovers, an empty one bootstraps as a founder (new) or as a joiner (join).
"""
import os
import re
import signal
import socket
import subprocess
import time

# Nodes run with the allocator's production behaviour: meson sets MALLOC_PERTURB_ for
# tests, which makes glibc fill every allocation and so inflates the RSS figures.
NODE_ENV = {k: v for k, v in os.environ.items() if k != "MALLOC_PERTURB_"}

RAFT_PORT = 7000
CLIENT_PORT = 6000
NFT_TABLE = "chaos"


def now_us(t0_ns):
    """Microseconds since t0_ns on the monotonic clock (loadgen's time base)."""
    return (time.monotonic_ns() - t0_ns) // 1000


class Node:
    def __init__(self, node_id, workdir, founder):
        self.id = node_id
        self.ip = f"127.0.0.{node_id}"
        self.dir = os.path.join(workdir, f"n{node_id}")
        self.log = os.path.join(workdir, f"n{node_id}.log")
        self.founder = founder
        self.proc = None
        self.paused = False
        self.removed = False
        self.expect_exit = False   # set by whoever kills or stops it on purpose

    @property
    def client_addr(self):
        return f"{self.ip}:{CLIENT_PORT}"

    @property
    def raft_addr(self):
        return f"{self.ip}:{RAFT_PORT}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        """Resident set size from /proc (KiB), or 0 when not running."""
        if not self.alive():
            return 0
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0


class Cluster:
    def __init__(self, kv_bin, workdir, extra_args, log):
        self.kv_bin = kv_bin
        self.workdir = workdir
        self.extra_args = list(extra_args)
        self.log = log
        self.nodes = {}
        self.crashes = []          # (node id, exit status) of exits nobody caused

    def add(self, node_id, founder=True):
        node = Node(node_id, self.workdir, founder)
        self.nodes[node_id] = node
        return node

    def founders(self):
        return [n for n in self.nodes.values() if n.founder]

    def _args(self, node):
        args = ["setpriv", "--pdeathsig", "KILL", "--", self.kv_bin,
                "--node-id", str(node.id), "--peer-addr", node.raft_addr,
                "--client-addr", node.client_addr, "--data-dir", node.dir]
        initialised = os.path.exists(os.path.join(node.dir, "meta"))
        if initialised:
            mode, peers = "recover", list(self.nodes.values())
        elif node.founder:
            mode, peers = "new", self.founders()
        else:
            mode, peers = "join", list(self.nodes.values())
        args += ["--bootstrap", mode]
        for p in peers:
            if p.id != node.id:
                args += ["--peer", f"{p.id}={p.raft_addr}"]
        return args + self.extra_args

    def note_exit(self, node):
        """Remember an exit the harness did not cause (a crash, or a kill by the kernel)."""
        if node.proc is not None and node.proc.poll() is not None and not node.expect_exit:
            self.crashes.append((node.id, node.proc.returncode))
            self.log(f"node {node.id} exited by itself with status {node.proc.returncode} "
                     f"(see {node.log})")
            node.expect_exit = True

    def start(self, node):
        assert not node.alive(), f"node {node.id} already running"
        self.note_exit(node)
        os.makedirs(node.dir, exist_ok=True)
        args = self._args(node)
        with open(node.log, "a") as logf:
            logf.write(f"=== {time.strftime('%H:%M:%S')} start: {' '.join(args)}\n")
            logf.flush()
            node.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=NODE_ENV)
        node.paused = False
        node.expect_exit = False

    def wait_port(self, node, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not node.alive():
                raise RuntimeError(f"node {node.id} exited with {node.proc.returncode} "
                                   f"(see {node.log})")
            try:
                with socket.create_connection((node.ip, CLIENT_PORT), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"node {node.id} does not listen on {node.client_addr}")

    def signal(self, node, sig):
        if node.alive():
            node.proc.send_signal(sig)

    def kill(self, node):
        """SIGKILL and reap (a paused node dies too)."""
        self.note_exit(node)
        node.expect_exit = True
        if node.alive():
            node.proc.send_signal(signal.SIGKILL)
            node.proc.wait()
        node.paused = False

    def pause(self, node):
        self.signal(node, signal.SIGSTOP)
        node.paused = True

    def resume(self, node):
        self.signal(node, signal.SIGCONT)
        node.paused = False

    def power_cut(self, node):
        """SIGUSR2: yggr-kv cuts its disk's power and _exit(137)s (needs
        --test-power-cut-signal). Returns the exit status."""
        if not node.alive():
            return None
        if node.paused:
            self.resume(node)
        node.expect_exit = True
        node.proc.send_signal(signal.SIGUSR2)
        try:
            return node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill(node)
            raise RuntimeError(f"node {node.id} did not exit after SIGUSR2")

    def stop(self, node, timeout=15.0):
        """SIGTERM (clean shutdown), SIGKILL after `timeout`. Returns the exit status."""
        self.note_exit(node)
        node.expect_exit = True
        if not node.alive():
            return node.proc.returncode if node.proc else None
        self.resume(node)
        node.proc.send_signal(signal.SIGTERM)
        try:
            return node.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(node)
            return None

    def kill_all_processes(self):
        for node in self.nodes.values():
            self.note_exit(node)
            node.expect_exit = True
            try:
                self.kill(node)
            except OSError:
                pass


# ---- nftables --------------------------------------------------------------------------

def nft(script):
    r = subprocess.run(["nft", "-f", "-"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"nft failed: {r.stderr.strip()}\n{script}")


class Net:
    """Raft-traffic faults between node addresses (output hook: one place per packet)."""

    def __init__(self):
        nft(f"add table inet {NFT_TABLE}\n"
            f"add chain inet {NFT_TABLE} out "
            "{ type filter hook output priority 0; policy accept; }\n")
        self.rules = []

    def _add(self, rules):
        """Install rules in one nft transaction (all take effect at once)."""
        nft("".join(f"add rule inet {NFT_TABLE} out {r}\n" for r in rules))
        self.rules += rules

    def block(self, pairs):
        """Drop every Raft packet from src to dst, for each (src, dst) node pair."""
        self._add([f"ip saddr {src.ip} ip daddr {dst.ip} tcp {port} {RAFT_PORT} drop"
                   for src, dst in pairs for port in ("dport", "sport")])

    def isolate(self, node, others):
        """Cut `node` off from `others` in both directions."""
        self.block([p for o in others if o.id != node.id for p in ((node, o), (o, node))])

    def loss(self, percent):
        """Drop `percent` % of all Raft packets at random (nft numgen)."""
        self._add([f"tcp {port} {RAFT_PORT} numgen random mod 100 < {int(percent)} drop"
                   for port in ("dport", "sport")])

    def heal(self):
        nft(f"flush chain inet {NFT_TABLE} out\n")
        self.rules = []

    def ruleset(self):
        r = subprocess.run(["nft", "list", "table", "inet", NFT_TABLE], text=True,
                           capture_output=True)
        return r.stdout


# ---- kv client -------------------------------------------------------------------------

class KvClient:
    """Line-protocol client with one persistent connection per node; reconnects on error."""

    def __init__(self, timeout=1.0):
        self.timeout = timeout
        self.conns = {}

    def close(self):
        for s, _ in self.conns.values():
            s.close()
        self.conns = {}

    def _conn(self, node):
        entry = self.conns.get(node.id)
        if entry is None:
            s = socket.create_connection((node.ip, CLIENT_PORT), timeout=self.timeout)
            s.settimeout(self.timeout)
            entry = (s, bytearray())
            self.conns[node.id] = entry
        return entry

    def drop(self, node):
        entry = self.conns.pop(node.id, None)
        if entry is not None:
            entry[0].close()

    def request(self, node, line, timeout=None):
        """One request; returns the reply line, or None (timeout, refused, closed)."""
        try:
            s, buf = self._conn(node)
            s.settimeout(timeout or self.timeout)
            s.sendall(line.encode() + b"\n")
            while b"\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed")
                buf += chunk
            i = buf.index(b"\n")
            reply = bytes(buf[:i]).decode(errors="replace").rstrip("\r")
            del buf[:i + 1]
            return reply
        except OSError:
            self.drop(node)
            return None


def parse_info(text):
    """INFO's "k:v k:v" line into a dict (None stays None)."""
    if text is None or not text.startswith("role:"):
        return None
    return dict(kv.split(":", 1) for kv in text.split() if ":" in kv)


def parse_ids(value):
    return sorted(int(x) for x in value.split(",") if x) if value else []


def value_id(value):
    """The unique id c<client>-s<seq> that starts a value written by loadgen or the probe."""
    m = re.match(r"^(c\d+-s\d+)(-|$)", value)
    return m.group(1) if m else value
